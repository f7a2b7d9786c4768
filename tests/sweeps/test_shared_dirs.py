"""Jobs never share a dir silently, through the real CLI: a sweep whose
``hydra.sweep.subdir`` gives two jobs one dir is refused before any job runs, whatever the
launcher; a single run cannot write into the dir of a job a vectorized group is training."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import assert_one_line_error, read_metrics_json, run_cli

pytestmark = pytest.mark.slow

LAUNCHERS = {
    "basic": (),
    "joblib": ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"),
    "vectorized": ("hydra/launcher=vectorized",),
}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_subdir_that_gives_two_jobs_one_dir_is_refused_before_any_job_runs(tmp_path, launcher):
    proc = run_cli(
        "-m", "updater.lr=0.1,0.2", "epochs=1", "dataset.n_samples=400",
        "hydra.sweep.subdir=fixed", "hydra.sweep.dir=sweep", *LAUNCHERS[launcher], cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(
        proc, "error: hydra.sweep.subdir=fixed gives jobs #0 and #1 the same dir sweep/fixed"
    )
    assert not (tmp_path / "sweep" / "fixed").exists()


def test_a_subdir_made_of_a_key_two_jobs_share_is_refused(tmp_path):
    proc = run_cli(
        "-m", "updater.lr=0.1,0.2", "seed=1,2", "epochs=1", "dataset.n_samples=400",
        "hydra.sweep.subdir=lr_${updater.lr}", "hydra.sweep.dir=sweep", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(proc, "gives jobs #0 and #1 the same dir sweep/lr_0.1")
    assert not (tmp_path / "sweep" / "lr_0.1").exists()


def test_a_single_run_into_a_training_groups_job_dir_is_refused(tmp_path):
    sweep = subprocess.Popen(
        [
            sys.executable, "-m", "logreg_exp", "-m", "hydra/launcher=vectorized",
            "updater.lr=0.01,0.1", "epochs=100000", "dataset.n_samples=400",
            "hydra.sweep.dir=sweep",
        ],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        for line in sweep.stdout:
            if re.search(r"epoch +3/100000", line) or time.monotonic() > deadline:
                break
        (job,) = [p for p in (tmp_path / "sweep").iterdir() if p.name.endswith("lr=0.1")]
        intruder = run_cli(
            "updater.lr=0.5", "epochs=1", f"hydra.run.dir='sweep/{job.name}'", cwd=tmp_path
        )
        os.killpg(sweep.pid, signal.SIGINT)
        sweep.communicate(timeout=60)
    finally:
        sweep.kill()
        sweep.wait()
    assert_one_line_error(intruder, f"the run dir sweep/{job.name} is in use by another process")
    assert sweep.returncode == 130
    metrics = read_metrics_json(job)
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] >= 3
    assert "lr: 0.1" in (job / ".hydra" / "config.yaml").read_text()


def test_a_search_whose_subdir_gives_two_trials_one_dir_refuses_the_second(tmp_path):
    proc = run_cli(
        "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "epochs=1",
        "dataset.n_samples=400", "hydra.sweep.subdir=fixed", "hydra.sweep.dir=sweep",
        cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (
        "error: the job dir sweep/fixed holds the run of job #0 of this sweep, and job #1 would "
        "write there too; hydra.sweep.subdir must give each job its own dir"
    ) in proc.stdout + proc.stderr
    assert read_metrics_json(tmp_path / "sweep" / "fixed")["status"] == "completed"
    assert (tmp_path / "sweep" / "fixed" / ".logreg_exp.lock").read_text().endswith(" job 0\n")
