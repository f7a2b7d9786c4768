"""Helpers every test module shares: compose the real config, build and fit in-process, run
the real CLI, read what a run leaves behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from logreg_exp.cli import compose
from logreg_exp.results import Monitor
from logreg_exp.training.build import build_pipeline

REPO = Path(__file__).resolve().parents[1]

# The exercise's data, key by key: the default dataset and experiment=exercise's.
EXERCISE_DATASET = {
    "name": "gaussian2d",
    "n_samples": 5000,
    "n_features": 2,
    "label_flip": 0.1,
    "val_fraction": 0.5,
    "stratify": False,
    "standardize": False,
    "max_samples": None,
}


def compose_config(*overrides: str, with_hydra: bool = False) -> DictConfig:
    """The config ``python -m logreg_exp OVERRIDES`` would run with (see ``cli.compose``)."""
    return compose(*overrides, with_hydra=with_hydra)


def build(*overrides: str):
    """The config and the pipeline ``python -m logreg_exp OVERRIDES`` would build, on CPU."""
    cfg = compose_config(*overrides)
    return cfg, build_pipeline(cfg, torch.device("cpu"))


def fit_built(cfg, exp, **fit_kwargs):
    """``Pipeline.fit`` on a built pipeline, as a job calls it."""
    return exp.fit(cfg.epochs, Monitor(cfg.monitor), **fit_kwargs)


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m logreg_exp ARGS`` in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "logreg_exp", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def can_mount_tmpfs(tmp_path: Path) -> bool:
    """Whether this machine lets a test mount a private tmpfs (a user namespace)."""
    probe = [*UNSHARE, "sh", "-c", "mount -t tmpfs -o size=64k none ."]
    try:
        return subprocess.run(probe, cwd=tmp_path, capture_output=True).returncode == 0
    except OSError:
        return False


def run_on_tmpfs(
    tmp_path: Path, options: str, *args: str, keep: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m logreg_exp ARGS`` with a tmpfs mounted (``-o OPTIONS``: ``size=64k``,
    ``ro``) at ``tmp_path/disk``, private to the command and gone when it ends; ``disk/KEEP``
    is copied out to ``tmp_path/copy`` first."""
    (tmp_path / "disk").mkdir()
    script = f'mount -t tmpfs -o {options} none disk && "$0" -m logreg_exp "$@"; rc=$?; '
    if keep:
        script += f"cp -r disk/{keep} copy; "
    return subprocess.run(
        [*UNSHARE, "sh", "-c", script + "exit $rc", sys.executable, *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def write_csv(path, n=200, seed=0):
    """Two well-separated classes labelled 'neg' and 'pos', in a shuffled order."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3)) + 3 * y[:, None]
    lines = ["f1,f2,f3,kind"] + [
        f"{a:.5f},{b:.5f},{c:.5f},{'pos' if t else 'neg'}"
        for (a, b, c), t in zip(x, y, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


def children_of(pid: int) -> set[int]:
    """The processes whose parent is ``pid``, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


TIMINGS = {"train_s", "val_s", "wall_s", "train_samples_per_s"}


def without_timings(metrics: dict) -> dict:
    """metrics.json without its timings, which differ from run to run."""
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def read_metrics_json(job_dir: Path) -> dict:
    return json.loads((Path(job_dir) / "metrics.json").read_text())


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in the run dir's event files, as (step, value) pairs."""
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
