"""What a newcomer meets first, through the real CLI: a misspelt key added with ``+``, a run
that cannot start, a float ``range()`` sweep."""

from __future__ import annotations

import pytest

from tests.helpers import assert_one_line_error, read_metrics_json, run_cli

pytestmark = pytest.mark.slow


@pytest.mark.hydra_lines
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["epoch=3"], "Key 'epoch' not in 'JobConfig'; did you mean epochs"),
        (
            ["+epoch=3", "+dataset.val_fractio=0.9"],
            "did you mean dataset.val_fraction or dataset.test_fraction; Key 'epoch' not in "
            "'JobConfig'; did you mean epochs",
        ),
        (
            ["+dataset.val_fractio=0.9"],
            "Key 'dataset.val_fractio' not in 'Gaussian2dConfig' (dataset=gaussian2d); did you "
            "mean dataset.val_fraction",
        ),
    ],
)  # fmt: skip
def test_a_key_no_schema_declares_is_refused_with_or_without_a_plus(tmp_path, args, message):
    proc = run_cli(*args, "hydra.run.dir=runs/run", cwd=tmp_path)
    assert_one_line_error(proc, message)
    assert not (tmp_path / "runs").exists()  # and nothing is left of the run


@pytest.mark.hydra_lines
@pytest.mark.parametrize(
    "args", [["batch_size=0"], ["dataset=csv", "dataset.path=nope.csv", "dataset.target=y"]]
)
def test_a_run_that_fails_before_training_leaves_no_dir(tmp_path, args):
    """One line on stderr, on Hydra 1.3 as on 1.4 (which prints a job's exception with its
    traceback, and calls on_run_end for a run that ends by SystemExit, as 1.3 does not)."""
    proc = run_cli(*args, cwd=tmp_path)  # into outputs/DATE/TIME, as a newcomer runs it
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "outputs").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep\n")
    proc = run_cli(*args, "hydra.run.dir=mine", cwd=tmp_path)  # a dir of the user's
    assert proc.returncode == 1
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


@pytest.mark.hydra_lines
def test_a_float_range_sweep_names_its_values_as_they_are_written(tmp_path):
    proc = run_cli(
        "-m", "updater.lr=range(0.05,0.08,0.01)", "epochs=1", "dataset.n_samples=200",
        "tensorboard=false", "hydra.sweep.dir=sweep", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.name[:4].isdigit())
    assert [n.split(",")[-1] for n in names] == [f"updater.lr=0.0{k}" for k in (5, 6, 7)]
    overrides = (tmp_path / "sweep" / names[1] / ".hydra" / "overrides.yaml").read_text()
    assert "- updater.lr=0.06\n" in overrides
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert "updater.lr=0.06 " in summary and "0000000" not in summary
    assert read_metrics_json(tmp_path / "sweep" / names[1])["status"] == "completed"
