"""hydra/launcher=vectorized when a group cannot be set up, or a signal stops it: each job ends
as the basic launcher would end it, one line each, with its metrics.json."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import read_metrics_json, run_cli, write_csv

pytestmark = pytest.mark.slow

FAST = ("dataset.n_samples=400", "tensorboard=false")


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/hydra.yaml"))


def start_sweep(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "-m", "hydra/launcher=vectorized", *args,
         "hydra.sweep.dir=sweep"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip


def signal_at_epoch(proc: subprocess.Popen, sig: signal.Signals, epoch: int = 3) -> str:
    """Send ``sig`` to the sweep once an epoch line says ``epoch``; all it printed."""
    printed = []
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            printed.append(line)
            if re.search(rf"epoch +{epoch}/100000", line) or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, sig)
        printed.append(proc.communicate(timeout=60)[0])
    finally:
        proc.kill()
        proc.wait()
    return "".join(printed)


def test_sigterm_stops_the_group_and_each_job_says_by_what(tmp_path):
    proc = start_sweep(tmp_path, "updater.lr=0.01,0.1", "epochs=100000", *FAST)
    out = signal_at_epoch(proc, signal.SIGTERM)
    assert proc.returncode == 130 and "Traceback" not in out, out
    for job in job_dirs(tmp_path / "sweep"):
        metrics = read_metrics_json(job)
        assert (metrics["status"], metrics["interrupted_by"]) == ("interrupted", "SIGTERM")


@pytest.mark.hydra_lines
def test_ctrl_c_while_a_job_alone_trains_ends_the_grouped_jobs_set_up_before_it(tmp_path):
    """Jobs #0 and #1 form a group, set up first; #2 (Rprop: not elementwise) trains alone
    and is stopped; #3 never starts. The group's jobs end interrupted with their files."""
    proc = start_sweep(
        tmp_path, "updater.optimizer._target_=torch.optim.SGD,torch.optim.Rprop",
        "updater.lr=0.01,0.1", "epochs=100000", *FAST,
    )  # fmt: skip
    out = signal_at_epoch(proc, signal.SIGINT)
    assert proc.returncode == 130 and "Traceback" not in out, out
    jobs = job_dirs(tmp_path / "sweep")
    assert [j.name[:4] for j in jobs] == ["0000", "0001", "0002"]
    for job in jobs:
        metrics = read_metrics_json(job)
        assert (metrics["status"], metrics["interrupted_by"]) == ("interrupted", "SIGINT"), job
    assert read_metrics_json(jobs[2])["epochs_run"] >= 3
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert "not started" in summary


def bad_cell_csv(tmp_path: Path) -> Path:
    path = write_csv(tmp_path / "bad.csv", n=40)
    lines = path.read_text().splitlines()
    lines[3] = "," + lines[3].split(",", 1)[1]  # line 4's first cell empty
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.hydra_lines
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dataset=csv", "dataset.path=nope.csv", "dataset.target=kind"], "nope.csv"),
        (["dataset=csv", "dataset.path=bad.csv", "dataset.target=kind"], "bad.csv line 4"),
        (
            ["dataset.n_samples=100000000000", "dataset.n_features=100"],
            "this run needs about 73.5 TiB of memory",
        ),
        pytest.param(
            ["device=cuda"], "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with CUDA"),
        ),
    ],
    ids=["missing-csv", "bad-cell", "memory", "no-cuda"],
)  # fmt: skip
def test_a_group_that_cannot_be_set_up_fails_each_job_alone(tmp_path, args, message):
    bad_cell_csv(tmp_path)
    proc = run_cli(
        "-m", "hydra/launcher=vectorized", *args, "updater.lr=0.01,0.1,1", "epochs=2",
        "hydra.sweep.dir=sweep", cwd=tmp_path,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out[-3000:]
    jobs = job_dirs(tmp_path / "sweep")
    assert len(jobs) == 3
    for job in jobs:
        metrics = read_metrics_json(job)
        assert metrics["status"] == "failed" and message in metrics["error"], metrics
        assert message in (job / "logreg_exp.log").read_text()
    errors = [line for line in out.splitlines() if "error: " in line and message in line]
    assert len(errors) == 3, out[-3000:]  # one line a job
    assert "3 of 3 jobs failed" in out
