"""metrics.json: written atomically (a failed write leaves the old file whole), read back
whatever state a job left it in, and the vocabulary of how a job ends."""

import json
import math
import sys

import pytest

import logreg_exp.files
from logreg_exp.results import (
    JobResult,
    Monitor,
    Outcome,
    Status,
    read_metrics,
    recorded_outcome,
    write_metrics,
)


def test_a_crash_mid_write_keeps_the_previous_metrics(tmp_path, monkeypatch):
    write_metrics(tmp_path, {"status": "completed"})

    def crash(src, dst):
        raise OSError("power cut before rename")

    monkeypatch.setattr(logreg_exp.files.os, "replace", crash)
    with pytest.raises(OSError):
        write_metrics(tmp_path, {"status": "failed"})
    monkeypatch.undo()
    assert read_metrics(tmp_path).metrics == {"status": "completed"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_written_files_get_ordinary_permissions(tmp_path):
    path = write_metrics(tmp_path, {"a": 1})
    assert path.stat().st_mode & 0o644 == 0o644
    assert json.loads(path.read_text()) == {"a": 1}


def test_the_monitor_knows_its_direction():
    loss, acc = Monitor.val_loss, Monitor.val_acc
    assert loss.improves(0.4, None)
    assert loss.improves(0.4, 0.5) and not loss.improves(0.5, 0.5)
    assert acc.improves(0.8, 0.7) and not acc.improves(0.7, 0.7)
    assert loss.worst == sys.float_info.max and acc.worst == -1.0
    assert sorted([0.3, 0.1], key=loss.sort_key) == [0.1, 0.3]
    assert sorted([0.3, 0.1], key=acc.sort_key) == [0.3, 0.1]


@pytest.mark.parametrize(
    ("content", "status", "failure"),
    [
        (None, "no metrics.json", True),
        ('{"status": "compl', "unreadable metrics.json", True),
        ("[1, 2]", "unreadable metrics.json", True),
        ('{"best_val_loss": 0.5}', "unknown", True),
        ('{"status": "failed"}', "failed", True),
        ('{"status": "completed"}', "completed", False),
        ('{"status": "diverged"}', "diverged", False),
        ('{"status": "interrupted"}', "interrupted", False),
    ],
)
def test_whatever_a_job_left_reads_as_a_status(tmp_path, content, status, failure):
    if content is not None:
        (tmp_path / "metrics.json").write_text(content)
    result = read_metrics(tmp_path)
    assert result.status == status and result.counts_as_failure is failure
    assert result.completed is (status == Status.COMPLETED)


def test_numbers_are_finite_or_none():
    result = JobResult("completed", {"a": 0.5, "b": float("nan"), "c": True, "d": "x", "e": 3})
    assert [result.number(k) for k in "abcdef"] == [0.5, None, None, None, 3, None]


def test_metrics_hold_the_best_models_test_numbers_or_nulls():
    from logreg_exp.results import fit_metrics
    from logreg_exp.training.loop import EpochMetrics, FitResult

    result = FitResult(Monitor.val_loss, best_epoch=1)
    result.history.append(EpochMetrics(1, 0.6, 0.7, 0.5, 0.8, 1.0, 0.5, {"population_acc": 0.79}))
    test = {"loss": 0.55, "acc": 0.75, "population_acc": 0.79}
    metrics = fit_metrics(result, 2.0, 100, test)
    assert (metrics["test_loss"], metrics["test_acc"]) == (0.55, 0.75)
    assert metrics["test_population_acc"] == 0.79
    assert list(metrics).index("test_loss") == list(metrics).index("final_val_population_acc") + 1
    untested = fit_metrics(result, 2.0, 100)  # a run that did not complete
    assert untested["test_loss"] is None and untested["test_acc"] is None
    assert "test_population_acc" not in untested


def test_metrics_json_is_strict_json_with_non_finite_numbers_nulled(tmp_path):
    path = write_metrics(tmp_path, {"status": "diverged", "a": float("nan"), "b": -math.inf})

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    metrics = json.loads(path.read_text(), parse_constant=refuse)
    assert metrics == {
        "status": "diverged", "a": None, "b": None, "non_finite": {"a": "nan", "b": "-inf"},
    }  # fmt: skip


def test_nested_non_finite_numbers_are_nulled_at_any_depth(tmp_path):
    from logreg_exp.results import write_evaluation

    path = write_evaluation(tmp_path / "evaluation.json", {"splits": {"val": {"loss": math.inf}}})
    assert json.loads(path.read_text(), parse_constant=float) == {
        "splits": {"val": {"loss": None}}, "non_finite": {"splits.val.loss": "inf"},
    }  # fmt: skip


def test_the_recorded_outcome_of_a_run_that_ended(tmp_path):
    assert recorded_outcome(tmp_path, Monitor.val_acc) is None  # nothing there
    (tmp_path / "metrics.json").write_text('{"status": "interrupted", "best_val_acc": 0.7}')
    assert recorded_outcome(tmp_path, Monitor.val_acc) is None  # not ended: to resume
    (tmp_path / "metrics.json").write_text('{"status": "completed", "best_val_acc": 0.7}')
    assert recorded_outcome(tmp_path, Monitor.val_acc) == Outcome(Status.COMPLETED, 0.7)
    (tmp_path / "metrics.json").write_text(
        '{"status": "diverged", "diverged_epoch": 6, "diverged_step": 1738}'
    )
    message = "training diverged: non-finite loss at epoch 6, step 1738"
    assert recorded_outcome(tmp_path, Monitor.val_loss) == Outcome(
        Status.DIVERGED, Monitor.val_loss.worst, message
    )
