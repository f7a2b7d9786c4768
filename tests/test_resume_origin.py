"""Resume trusts only what it can check, through the real CLI: a ``last.pt`` of another
config, dtype or data, or one damaged, is refused in one line naming the file and
``resume=false``, never resumed silently and never a traceback."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import read_metrics_json, run_cli

pytestmark = pytest.mark.slow

SMALL = ("epochs=2", "batch_size=64", "tensorboard=false")


def error_line(proc) -> str:
    """The one ``error:`` line of a run that failed as a user's mistake (Hydra prints its own
    lines around it), exit status 1 and no traceback."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    return line


def unfinished(run: Path) -> None:
    """Make ``run`` an unfinished run of its config: as if killed before its metrics.json."""
    assert (run / "last.pt").is_file()
    (run / "metrics.json").unlink()


@pytest.mark.parametrize(
    ("theirs", "ours", "why"),
    [
        (("dataset.n_samples=3000",), ("dataset.n_samples=2000",), "data of other shapes"),
        (("dtype=float64",), (), "it was made in float64, this run trains in float32"),
        (("dataset.n_features=3",), (), "data of other shapes"),
        (("updater=manual", "updater.momentum=0.9"), (), "a run of another config"),
    ],
    ids=["n_samples", "dtype", "features", "optimizer"],
)
def test_a_last_pt_of_another_run_is_refused_in_one_line(tmp_path, theirs, ours, why):
    for name, args in (("theirs", theirs), ("ours", ours)):
        done = run_cli(*SMALL, *args, f"hydra.run.dir={name}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    unfinished(tmp_path / "ours")
    shutil.copy(tmp_path / "theirs" / "last.pt", tmp_path / "ours" / "last.pt")
    resumed = run_cli(*SMALL, *ours, "hydra.run.dir=ours", cwd=tmp_path)
    line = error_line(resumed)
    assert line.startswith("error: cannot resume from ours/last.pt: ") and why in line, line
    assert line.endswith("; resume=false starts the run over"), line
    assert not (tmp_path / "ours" / "metrics.json").exists()  # nothing resumed
    again = run_cli(*SMALL, *ours, "hydra.run.dir=ours", "resume=false", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert read_metrics_json(tmp_path / "ours")["status"] == "completed"


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "is not a readable checkpoint"),
        (lambda p: torch.save({"format": 2, "epoch": 1}, p), "pipeline, fit, random, wall_s"),
        (
            lambda p: torch.save({**torch.load(p, weights_only=True), "fit": 3}, p),
            "fit missing or of the wrong type",
        ),
        (lambda p: torch.save([1, 2], p), "is not a checkpoint of logreg_exp"),
    ],
    ids=["truncated", "missing-keys", "wrong-type", "foreign"],
)
def test_a_damaged_last_pt_is_refused_in_one_line(tmp_path, damage, why):
    done = run_cli(*SMALL, "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    unfinished(tmp_path / "run")
    damage(tmp_path / "run" / "last.pt")
    resumed = run_cli(*SMALL, "hydra.run.dir=run", cwd=tmp_path)
    line = error_line(resumed)
    assert "run/last.pt" in line and why in line and "resume=false starts the run over" in line


def test_a_resume_refuses_a_csv_whose_rows_changed(tmp_path):
    rows = [["f1", "f2", "label"]] + [
        [f"{(i * 37 % 101) / 10:.1f}", f"{(i * 53 % 89) / 10:.1f}", str(i % 2)] for i in range(400)
    ]
    data = tmp_path / "data.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    args = (
        *SMALL,
        "dataset=csv",
        f"dataset.path={data}",
        "dataset.target=label",
        "hydra.run.dir=run",
    )
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    unfinished(tmp_path / "run")
    changed = [rows[0], *reversed(rows[1:])]
    changed[5][0] = "9.9"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows(changed)
    resumed = run_cli(*args, cwd=tmp_path)
    line = error_line(resumed)
    assert line.startswith("error: cannot resume from run/last.pt: the data changed"), line
    assert not (tmp_path / "run" / "metrics.json").exists()
