"""hydra/launcher=joblib: a worker process that dies fails its own job alone; killed for real."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logreg_exp.sweeps.joblib_launcher import TARGET
from tests.helpers import alive, children_of, compose_config


def test_hydra_launcher_joblib_is_this_launcher_with_the_plugins_keys():
    launcher = compose_config("hydra/launcher=joblib", with_hydra=True).hydra.launcher
    assert launcher._target_ == TARGET
    assert launcher.n_jobs == -1 and "pre_dispatch" in launcher


def holder_of(path: Path) -> int | None:
    """The pid of a process that has ``path`` open, from /proc."""
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:  # a process that ended, or one we may not look into
            continue
    return None


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_a_worker_killed_mid_job_fails_its_job_alone(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "-m", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", "epochs=1,100000,2,3", "dataset.n_samples=400",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log = sweep / "0001_dataset.n_samples=400,epochs=100000" / "logreg_exp.log"
    try:
        deadline = time.monotonic() + 240  # a guard against hanging, not a measurement
        worker = None
        while worker is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if log.exists() and "epoch" in log.read_text():  # the long job is training
                worker = holder_of(log.resolve())
        assert worker is not None and worker != proc.pid
        os.kill(worker, signal.SIGKILL)  # as the out-of-memory killer does
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stdout + stderr and "Exception ignored" not in stderr
    assert "1 of 4 jobs failed: 0001_dataset.n_samples=400,epochs=100000" in stdout + stderr
    with (sweep / "summary.csv").open() as f:
        rows = {row["job"]: row for row in csv.DictReader(f)}
    assert {job: row["status"] for job, row in rows.items()} == {
        "0": "completed", "1": "failed", "2": "completed", "3": "completed",
    }  # fmt: skip
    metrics = json.loads((log.parent / "metrics.json").read_text())
    assert metrics["error"].startswith("its worker process died (SIGKILL(-9)")


@pytest.mark.slow
def test_kill_of_the_sweep_leaves_no_worker_behind(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "-m", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", "epochs=100000,100001", "dataset.n_samples=400",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 240  # guards against hanging; nothing is timed
        logs = [sweep / f"000{i}_dataset.n_samples=400,epochs={e}" / "logreg_exp.log"
                for i, e in ((0, 100000), (1, 100001))]  # fmt: skip
        while time.monotonic() < deadline and not all(
            log.exists() and "epoch" in log.read_text() for log in logs
        ):
            time.sleep(0.2)
        workers = children_of(proc.pid)
        assert len(workers) >= 2  # the two workers, and loky's resource trackers
        proc.terminate()  # kill PID
        proc.wait(timeout=60)
        while time.monotonic() < deadline and any(alive(pid) for pid in workers):
            time.sleep(0.2)
        assert not [pid for pid in workers if alive(pid)]
    finally:
        proc.kill()
        proc.wait()
        for pid in workers:  # what a failing run of this test would leave behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
