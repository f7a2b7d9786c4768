"""The task function and the runner, in-process, with a real Hydra config and run dir."""

import json
import os
import signal
import sys

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict

from logreg_exp.cli import RunFailed, main
from logreg_exp.job import run_job
from logreg_exp.results import Monitor, Status
from logreg_exp.tracking.loggers import ConsoleLogger
from tests.helpers import compose_config, event_records, read_metrics_json, without_timings


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
    return main.__wrapped__(cfg)


def test_task_function_returns_the_value_for_sweepers(tmp_path):
    value = task(tmp_path, "epochs=2", "monitor=val_acc")
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
    import logreg_exp.job

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logreg_exp.job, "save_progress", full)
    outcome = run_job(compose_config("epochs=2", "dataset.n_samples=400"), tmp_path)
    assert outcome.status is Status.COMPLETED
    assert read_metrics_json(tmp_path)["epochs_run"] == 2
    assert "last.pt not written after epoch 2 ([Errno 28] No space left on device)" in caplog.text
