"""Jobs never share a dir silently, through the real CLI: a sweep whose
``hydra.sweep.subdir`` gives two jobs one dir is refused before any job runs, whatever the
launcher; a single run cannot write into the dir of a job a vectorized group is training."""

from __future__ import annotations

import pytest

from tests.helpers import assert_one_line_error, run_cli

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
