"""Waiting for a sweep's SLURM jobs without a cluster: a job has ended when the queue says so,
whatever sacct answers; the value of a job that left no result ranks it last."""

import pytest
from submitit.slurm.slurm import SlurmJob

from logreg_exp.results import Monitor
from logreg_exp.sweeps import cluster
from logreg_exp.sweeps.cluster import job_monitor, wait_for_all


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    """Two tasks of a SLURM job array, and an sacct that fails, as without accounting."""
    monkeypatch.setattr(cluster, "POLL_S", 0.0)
    monkeypatch.setattr(cluster, "QUEUE_POLL_S", 0.0)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text("#!/bin/sh\necho 'accounting storage is disabled' >&2\nexit 1\n")
    (bin_dir / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return [SlurmJob(folder=tmp_path / "submitit", job_id=f"12_{i}") for i in range(2)]


def test_a_job_has_ended_when_the_queue_no_longer_lists_it_or_lists_it_ended(jobs):
    answers = iter(
        [
            {"12_0": "RUNNING", "12_1": "PENDING"},
            None,  # squeue did not answer: nothing is decided
            {"12_0": "RUNNING", "12_1": "CANCELLED"},
            {"12_0": "REQUEUED"},  # a requeued job is waited for
            {},  # gone from the queue
        ]
    )
    asked = []

    def queue(ids):
        asked.append(ids)
        return next(answers)

    wait_for_all(jobs, lambda: False, queue)
    assert asked == [["12"]] * 5


def test_ctrl_c_stops_the_waiting(jobs):
    with pytest.raises(KeyboardInterrupt):
        wait_for_all(jobs, lambda: True, lambda ids: {"12_0": "RUNNING", "12_1": "RUNNING"})


def test_a_job_without_a_result_gets_its_monitors_worst_value(tmp_path):
    (tmp_path / "metrics.json").write_text('{"status": "interrupted", "monitor": "val_acc"}')
    assert job_monitor(tmp_path, [], "val_loss") is Monitor.val_acc
    assert job_monitor(None, ["seed=1", "monitor=val_acc"], "val_loss") is Monitor.val_acc
    assert job_monitor(None, ["seed=1"], "val_loss") is Monitor.val_loss
    assert job_monitor(None, ["monitor=nonsense"], "val_loss") is Monitor.val_loss
