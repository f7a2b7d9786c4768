"""Shared helpers: compose the real config, run the real CLI, read what a run leaves behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from logreg_exp.cli import register_configs

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


def compose_config(*overrides: str) -> DictConfig:
    """The config ``python -m logreg_exp OVERRIDES`` would run with (no hydra node)."""
    register_configs()
    with initialize_config_module(config_module="logreg_exp.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def build(*overrides: str):
    """The config and the experiment ``python -m logreg_exp OVERRIDES`` would build, on CPU."""
    import torch

    from logreg_exp.builders import build_experiment

    cfg = compose_config(*overrides)
    return cfg, build_experiment(cfg, torch.device("cpu"))


def fit_built(cfg, exp, **fit_kwargs):
    """``train.fit`` on a built experiment, as the runner calls it."""
    from logreg_exp.runner import fit_experiment

    return fit_experiment(exp, cfg, **fit_kwargs)


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m logreg_exp ARGS`` in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "logreg_exp", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in the run dir's event files, as (step, value) pairs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture
def config():
    return compose_config
