"""Learning-rate schedules through the real CLI: a scheduled run, a vectorized sweep of a
schedule equal job by job to the basic launcher's, a run stopped mid-schedule and resumed
bit for bit, and a bad value in one line."""

from __future__ import annotations

import re
import signal

import pytest
import torch

from tests.helpers import read_metrics_json, run_cli
from tests.sweeps.test_vectorized import assert_same_jobs, sweep
from tests.test_resume import SMALL, assert_same_run, signal_on_line, start_cli

pytestmark = pytest.mark.slow


def test_a_cosine_schedule_runs_from_the_command_line(tmp_path):
    proc = run_cli("scheduler=cosine", "epochs=3", *SMALL, "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    assert read_metrics_json(run)["status"] == "completed"
    assert "name: cosine" in (run / ".hydra" / "config.yaml").read_text()
    last = torch.load(run / "last.pt", weights_only=True)
    (column,) = last["pipeline"]["schedule"]["columns"]
    assert column["lr"] == last["pipeline"]["updater"]["param_groups"][0]["lr"] == 0.0  # eta_min


def test_a_vectorized_sweep_of_a_step_schedule_is_the_basic_launchers(tmp_path):
    args = ("epochs=3", "dataset.n_samples=400", "dtype=float64", "scheduler=step",
            "scheduler.step_size=1", "scheduler.gamma=0.5", "updater.lr=0.05,0.5")  # fmt: skip
    basic, basic_dir = sweep(tmp_path, "basic", *args)
    assert basic.returncode == 0, basic.stderr
    vectorized, vectorized_dir = sweep(tmp_path, "vectorized", *args, launcher="vectorized")
    assert vectorized.returncode == 0, vectorized.stderr
    assert re.search(r"group 1: 2 jobs .* differing in updater.lr", vectorized.stdout)
    assert_same_jobs(basic_dir, vectorized_dir, 1e-9)


def test_a_run_stopped_mid_schedule_resumes_bit_for_bit(tmp_path):
    args = ("epochs=5", *SMALL, "updater.momentum=0.9", "scheduler=step", "scheduler.step_size=2")
    whole = run_cli(*args, "hydra.run.dir=whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    out = signal_on_line(
        start_cli(*args, "hydra.run.dir=run", cwd=tmp_path), r"epoch 2/5", signal.SIGTERM
    )
    assert "interrupted by SIGTERM" in out and "Traceback" not in out
    resumed = run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(r"going on with the unfinished run in run at epoch [3-5] of 5", resumed.stdout)
    assert_same_run(tmp_path / "run", tmp_path / "whole")
    last, expected = (
        torch.load(tmp_path / d / "last.pt", weights_only=True) for d in ("run", "whole")
    )
    assert last["pipeline"]["schedule"] == expected["pipeline"]["schedule"]
    assert expected["pipeline"]["schedule"]["columns"][0]["lr"] == pytest.approx(0.01 * 0.1**2)


def test_a_bad_schedule_value_is_one_line_from_the_command_line(tmp_path):
    proc = run_cli("scheduler=step", "scheduler.gamma=-1", "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr == "error: scheduler.gamma must be a number in (0, 1], got -1.0\n"
    assert not (tmp_path / "run" / "metrics.json").exists()
