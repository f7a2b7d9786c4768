"""The task function and the runner, in-process, with a real Hydra config and run dir."""

import json
import os
import signal
import sys
from types import SimpleNamespace

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict

from logreg_exp import job_report
from logreg_exp.cli import main
from logreg_exp.job_report import write_results
from logreg_exp.outcomes import RunFailed
from logreg_exp.results import Monitor, Status
from logreg_exp.single_run import run_job
from logreg_exp.tracking.loggers import ConsoleLogger
from logreg_exp.training.loop import EpochMetrics
from tests.helpers import compose_config, event_records, read_metrics_json, without_timings

# Each test runs a whole job in-process (compose, train, write its files): end-to-end.
pytestmark = [pytest.mark.slow, pytest.mark.hydra_lines]


@pytest.mark.parametrize("monitor", ["val_loss", "val_acc"])
def test_run_returns_the_best_monitored_value(tmp_path, monitor):
    outcome = run_job(
        compose_config("epochs=2", "dataset.n_samples=1000", f"monitor={monitor}"), tmp_path
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["monitor"] == monitor and outcome.status is Status.COMPLETED
    assert outcome.value == metrics[f"best_{monitor}"]


def task(tmp_path, *overrides, mode=RunMode.RUN):
    """Call the Hydra task function as Hydra would, with its output dir in ``tmp_path``."""
    cfg = compose_config(*overrides, with_hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
        cfg.hydra.mode = mode
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    handler = signal.getsignal(signal.SIGINT)  # a single run ignores Ctrl-C once it has ended
    try:
        return main.__wrapped__(cfg)
    finally:
        signal.signal(signal.SIGINT, handler)


def test_task_function_returns_the_value_for_sweepers(tmp_path):
    value = task(tmp_path, "epochs=2", "dataset.n_samples=400", "monitor=val_acc")
    assert value == json.loads((tmp_path / "metrics.json").read_text())["best_val_acc"]


def test_bad_value_fails_a_single_run_before_writing_anything(tmp_path):
    with pytest.raises(RunFailed, match=r"^error: batch_size must be a positive integer, got 0$"):
        task(tmp_path, "batch_size=0")
    assert list(tmp_path.iterdir()) == []


def test_bad_value_fails_only_its_job_in_a_sweep(tmp_path):
    value = task(tmp_path, "batch_size=0", "monitor=val_acc", mode=RunMode.MULTIRUN)
    assert value == Monitor.val_acc.worst == -1.0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed"
    assert metrics["error"] == "batch_size must be a positive integer, got 0"


def test_diverged_job_returns_a_finite_value_that_ranks_last(tmp_path):
    value = task(
        tmp_path, "updater.lr=10", "updater.weight_decay=1", "epochs=3", mode=RunMode.MULTIRUN
    )
    assert value == Monitor.val_loss.worst == sys.float_info.max
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "diverged"


def test_diverged_single_run_is_an_error(tmp_path):
    with pytest.raises(RunFailed, match=r"training diverged: non-finite loss at epoch 1, step"):
        task(tmp_path, "updater.lr=10", "updater.weight_decay=1", "epochs=3")


def test_a_completed_job_saves_what_predicting_needs_and_its_test_numbers(tmp_path):
    from logreg_exp.data.preprocessing import load_preprocessing

    run_job(compose_config("dataset=breast_cancer", "epochs=1"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 < metrics["test_acc"] <= 1 and metrics["test_loss"] > 0
    prep = load_preprocessing(tmp_path)
    assert prep.features[:2] == ["mean radius", "mean texture"] and len(prep.features) == 30
    assert prep.classes == ["malignant", "benign"] and prep.scaler is not None


def test_metrics_json_is_written_after_the_files_it_vouches_for(tmp_path, monkeypatch):
    import logreg_exp.job_report
    from logreg_exp.data.preprocessing import Preprocessing
    from logreg_exp.training.loop import FitResult

    def check_then_write(job_dir, metrics):
        assert {p.name for p in job_dir.iterdir()} == {"best.pt", "preprocessing.json"}

    monkeypatch.setattr(logreg_exp.job_report, "write_metrics", check_then_write)
    result = FitResult(Monitor.val_loss, best_epoch=1, best_state={"w": torch.zeros(2, 1)})
    result.history.append(EpochMetrics(1, 0.6, 0.7, 0.5, 0.8, 1.0, 0.5))
    result.stop(Status.INTERRUPTED, 2)  # no picture: only the files metrics.json vouches for
    pipeline = SimpleNamespace(preprocessing=Preprocessing(["a", "b"], ["0", "1"], None))
    write_results(result, {}, pipeline, tmp_path, None, "events")


def interrupting(times, draw):
    """``draw``, after ``times`` Ctrl-Cs sent to this process: as if they came during the
    final writes."""

    def draw_after_ctrl_c(*args, **kwargs):
        for _ in range(times):
            os.kill(os.getpid(), signal.SIGINT)
        return draw(*args, **kwargs)

    return draw_after_ctrl_c


def test_ctrl_c_during_the_final_writes_lets_them_finish(tmp_path, monkeypatch):
    monkeypatch.setattr(
        job_report, "log_decision_boundary", interrupting(1, job_report.log_decision_boundary)
    )
    outcome = run_job(compose_config("epochs=1", "dataset.n_samples=200"), tmp_path)
    assert outcome.status is Status.COMPLETED
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"
    assert (tmp_path / "decision_boundary.png").exists()


def test_a_second_ctrl_c_during_the_final_writes_leaves_no_claim_of_success(tmp_path, monkeypatch):
    monkeypatch.setattr(
        job_report, "log_decision_boundary", interrupting(2, job_report.log_decision_boundary)
    )
    with pytest.raises(KeyboardInterrupt):
        run_job(compose_config("epochs=1", "dataset.n_samples=200"), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def signal_after_epoch(monkeypatch, epoch, sig):
    """Send ``sig`` to this process once the console has shown ``epoch``: mid-run, as a
    cluster would (the job stops in the next epoch, between minibatches)."""
    shown = ConsoleLogger.log_epoch

    def log_epoch(self, metrics, is_best):
        shown(self, metrics, is_best)
        if metrics.epoch == epoch:
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(ConsoleLogger, "log_epoch", log_epoch)


def test_a_job_stopped_by_sigterm_resumes_to_the_files_of_one_never_stopped(tmp_path, monkeypatch):
    overrides = ("epochs=4", "dataset.n_samples=400", "batch_size=16")
    run_job(compose_config(*overrides), tmp_path / "whole")
    signal_after_epoch(monkeypatch, 2, signal.SIGTERM)
    run = tmp_path / "run"
    assert run_job(compose_config(*overrides), run).status is Status.INTERRUPTED
    stopped = read_metrics_json(run)
    assert stopped["status"] == "interrupted" and stopped["interrupted_by"] == "SIGTERM"
    assert (stopped["epochs_run"], stopped["interrupted_epoch"]) == (2, 3)
    monkeypatch.undo()

    assert run_job(compose_config(*overrides), run).status is Status.COMPLETED
    whole = tmp_path / "whole"
    assert without_timings(read_metrics_json(run)) == without_timings(read_metrics_json(whole))
    assert (run / "best.pt").read_bytes() == (whole / "best.pt").read_bytes()
    last, expected = (torch.load(d / "last.pt", weights_only=True) for d in (run, whole))
    for name, tensor in expected["pipeline"]["model"].items():
        assert torch.equal(last["pipeline"]["model"][name], tensor)
    # TensorBoard: one file, with every step once, as in the run never stopped
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert event_records(run) == event_records(whole)


def test_a_full_disk_for_last_pt_warns_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    import logreg_exp.single_run

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logreg_exp.single_run, "save_progress", full)
    outcome = run_job(compose_config("epochs=2", "dataset.n_samples=400"), tmp_path)
    assert outcome.status is Status.COMPLETED
    assert read_metrics_json(tmp_path)["epochs_run"] == 2
    assert "last.pt not written after epoch 2 (No space left on device)" in caplog.text
