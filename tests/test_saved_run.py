"""A finished run read back from its dir: what evaluate and predict get, and the one-line
error for each kind of dir that is not a completed run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from logreg_exp.errors import ConfigError
from logreg_exp.saved_run import open_run


def test_a_completed_run_gives_its_config_model_and_preprocessing(csv_run):
    run_dir, data = csv_run
    run = open_run(run_dir)
    assert run.settings.dataset.name == "csv" and run.settings.epochs == 3
    assert run.settings.dataset.path == str(data)  # relative to where the run was started
    assert run.preprocessing.features == ["f1", "f2", "f3"]
    assert run.preprocessing.classes == ["neg", "pos"]
    assert run.checkpoint["epoch"] == run.metrics["best_epoch"]
    assert run.model.w.shape == (3, 1) and run.model.w.dtype == torch.float32
    assert run.describe().endswith(
        f"run: best.pt of epoch {run.metrics['best_epoch']} (by val_loss), dataset=csv"
    )


def broken_copy(run_dir, tmp_path, change):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    change(copy)
    return copy


def set_status(status, **more):
    def change(run):
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**metrics, "status": status, **more}))

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda run: (run / "metrics.json").unlink(), "has not finished: it has no metrics.json"),
        (set_status("interrupted"), "did not complete (status interrupted in metrics.json)"),
        (set_status("failed", error="batch_size must be"), "failed: batch_size must be"),
        (lambda run: (run / "preprocessing.json").unlink(), "preprocessing.json: no such file"),
        (lambda run: (run / "best.pt").unlink(), "best.pt: no such file"),
        (
            lambda run: (run / ".hydra" / "config.yaml").write_text("epochs: [1\n"),
            "config.yaml is not a config this logreg_exp can read",
        ),
        (
            lambda run: (run / ".hydra" / "config.yaml").write_text("dataset: {name: mnist}\n"),
            "config.yaml: dataset.name='mnist' is not known; allowed: gaussian2d",
        ),
    ],
)
def test_a_run_that_cannot_be_used_is_one_line(csv_run, tmp_path, change, message):
    run_dir = broken_copy(csv_run[0], tmp_path, change)
    with pytest.raises(ConfigError) as info:
        open_run(run_dir)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_dir_that_is_not_a_run_says_what_to_pass(csv_run, tmp_path):
    with pytest.raises(ConfigError, match="nope: no such directory"):
        open_run(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"is not a run dir of logreg_exp: it has no \.hydra"):
        open_run(tmp_path)
    shutil.copytree(csv_run[0], tmp_path / "sweep" / "0_seed=0")
    with pytest.raises(ConfigError, match=r"sweep is a sweep dir, not a run: pass one of its"):
        open_run(tmp_path / "sweep")
