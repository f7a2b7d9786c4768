"""``dry_run=true``: the plan of a sweep (or a run) printed, nothing claimed, written or run;
under the basic, the vectorized and the joblib launcher, and for a search sweeper."""

from __future__ import annotations

import pytest

from logreg_exp.sweeps.dry_run import shown_overrides
from tests.helpers import run_cli


def test_the_plan_shows_jobs_without_the_dry_run_override():
    assert shown_overrides(["updater.lr=0.1", "dry_run=true", "+x=1"]) == [
        "updater.lr=0.1",
        "+x=1",
    ]


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_a_vectorized_dry_run_prints_its_groups_and_who_runs_alone(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(
        "-m", "hydra/launcher=vectorized", "updater.lr=0.01,0.1",
        "updater.optimizer._target_=torch.optim.SGD,torch.optim.Rprop", "dry_run=true",
        f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "dry run: 4 jobs, launcher VectorizedLauncher" in out
    assert "job 1/4 (#0): updater.lr=0.01 updater.optimizer._target_=torch.optim.SGD" in out
    assert "job 4/4 (#3): updater.lr=0.1 updater.optimizer._target_=torch.optim.Rprop" in out
    assert "dry_run" not in out.split("drop dry_run")[0].replace("dry run:", "")
    assert "would train 4 jobs: 2 in 1 group trained as one, 2 alone" in out
    assert "  group 1: 2 jobs (#0,2), differing in updater.lr" in out
    assert "alone, one at a time (#1,3): updater.optimizer._target_=torch.optim.Rprop" in out
    assert "estimated memory: " in out and " at most a job" in out
    assert "4 jobs; nothing was run or written" in out
    assert not sweep_dir.exists()
    assert list(tmp_path.iterdir()) == []  # no outputs/, no log file


@pytest.mark.slow
def test_a_basic_and_a_joblib_dry_run_list_their_jobs(tmp_path):
    for launcher in ("basic", "joblib"):
        sweep_dir = tmp_path / launcher
        proc = run_cli(
            "-m", f"hydra/launcher={launcher}", "updater.lr=0.01,0.1", "batch_size=8,32",
            "dry_run=true", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "dry run: 4 jobs" in proc.stdout
        assert "job 2/4 (#1): updater.lr=0.01 batch_size=32" in proc.stdout
        assert "group" not in proc.stdout
        assert not sweep_dir.exists()


@pytest.mark.slow
def test_a_search_says_it_decides_its_jobs_as_it_goes(tmp_path):
    sweep_dir = tmp_path / "search"
    proc = run_cli(
        "-m", "hparams_search=optuna", "dry_run=true", f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "is a search: it decides its jobs as it goes" in proc.stdout
    assert "trials over: " in proc.stdout and "updater.lr=" in proc.stdout
    assert not sweep_dir.exists()


@pytest.mark.slow
def test_a_single_run_dry_run_claims_no_dir(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("epochs=3", "dry_run=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "dry run: one run, epochs=3" in proc.stdout
    assert "estimated memory: " in proc.stdout
    assert not run_dir.exists()
