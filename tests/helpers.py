"""Helpers every test module shares: compose the real config, build and fit in-process, run
the real CLI, read what a run leaves behind."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

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


TIMINGS = {"train_s", "val_s", "wall_s", "train_samples_per_s"}


def without_timings(metrics: dict) -> dict:
    """metrics.json without its timings, which differ from run to run."""
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def read_metrics_json(job_dir: Path) -> dict:
    return json.loads((Path(job_dir) / "metrics.json").read_text())


def event_records(run_dir: Path) -> list[tuple[str, int, object]]:
    """Everything the run dir's event files hold, file after file, as (tag, step, value):
    scalars' values, texts' and images' bytes, the HParams session's start and end (their
    clock times left out); what two runs that computed the same must share exactly."""
    records = []
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                records.append((value.tag, event.step, summary_value(value)))
    return records


def summary_value(value) -> object:
    if value.HasField("simple_value"):
        return value.simple_value
    if value.HasField("image"):
        return value.image.encoded_image_string
    if value.metadata.plugin_data.plugin_name == "hparams":
        data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
        data.session_start_info.start_time_secs = 0
        data.session_end_info.end_time_secs = 0
        return data.SerializeToString(deterministic=True)
    return value.tensor.SerializeToString(deterministic=True)


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in the run dir's event files, as (step, value) pairs."""
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def wait_until(found, what: str, limit_s: float = 300):
    """``found()``'s first true value, polled; a test that would hang fails instead."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"no {what} after {limit_s} s")


def job_id(job: Path) -> str | None:
    """The submitit job id Hydra recorded in a started job's dir (for the local executor,
    the job's process id), or None before then."""
    try:
        hydra_cfg = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())
        return str(hydra_cfg["hydra"]["job"]["id"])
    except (OSError, TypeError, KeyError, yaml.YAMLError):  # not there, or half written
        return None


def reached_epoch(job: Path, epoch: int) -> bool:
    log = job / "logreg_exp.log"
    return log.exists() and re.search(rf"epoch +{epoch}/", log.read_text()) is not None
