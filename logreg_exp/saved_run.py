"""A finished run read back from its output dir, for ``evaluate`` and ``predict``.

A run dir holds the job's config as Hydra saved it (``.hydra/config.yaml``, with the
directory the run was started in in ``.hydra/hydra.yaml``), ``metrics.json``, ``best.pt``
and ``preprocessing.json``. ``open_run`` reads and checks them all, and says in one line
(a ConfigError) what is wrong: not a run dir, a run that has not completed, a file that is
missing, unreadable, or of another model's shape.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from logreg_exp.config import (
    SCHEDULER_SCHEMAS,
    UPDATER_SCHEMAS,
    DeviceConfig,
    DType,
    JobConfig,
    LossConfig,
    validated,
)
from logreg_exp.data.datasets import DATASETS
from logreg_exp.data.preprocessing import Preprocessing, load_preprocessing
from logreg_exp.errors import ConfigError, one_line
from logreg_exp.files import display_path
from logreg_exp.results import Status, read_metrics
from logreg_exp.run_files import CHECKPOINT_FILE, CONFIG_YAML, HYDRA_DIR, HYDRA_YAML, METRICS_FILE
from logreg_exp.training.checkpoints import load_model
from logreg_exp.training.model import LogisticRegression

CONFIG_FILE = Path(HYDRA_DIR) / CONFIG_YAML
HYDRA_FILE = Path(HYDRA_DIR) / HYDRA_YAML


@dataclass
class SavedRun:
    """A completed run: its validated config (``settings``, a JobConfig), what its
    metrics.json says, its best model (in the dtype it was trained in) with the checkpoint's
    epoch and metric, and its preprocessing."""

    dir: Path
    settings: Any
    metrics: dict[str, Any]
    model: LogisticRegression
    checkpoint: dict[str, Any]
    preprocessing: Preprocessing

    def describe(self) -> str:
        """``outputs/.../0_seed=0: best.pt of epoch 23 (by val_loss), dataset=breast_cancer``"""
        ckpt = self.checkpoint
        return (
            f"{display_path(self.dir)}: best.pt of epoch {ckpt.get('epoch')} "
            f"(by {ckpt.get('monitor')}), dataset={self.settings.dataset.name}"
        )


def open_run(path: str | Path) -> SavedRun:
    """The completed run in ``path``, every file of it checked; ConfigError otherwise."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise ConfigError(f"{path}: no such directory")
    if not (run_dir / CONFIG_FILE).is_file():
        jobs = sorted(p.parent.parent for p in run_dir.glob(f"*/{CONFIG_FILE}"))
        if jobs:
            raise ConfigError(
                f"{path} is a sweep dir, not a run: pass one of its jobs' dirs, e.g. {jobs[0]}"
            )
        raise ConfigError(
            f"{path} is not a run dir of logreg_exp: it has no {CONFIG_FILE} "
            "(pass a run's output dir, such as outputs/DATE/TIME)"
        )
    result = read_metrics(run_dir)
    if result.status == f"no {METRICS_FILE}":
        raise ConfigError(
            f"{path} has not finished: it has no {METRICS_FILE} (still running, or stopped "
            "before it could write one)"
        )
    if result.status == Status.FAILED:
        raise ConfigError(f"{path} is a run that failed: {result.metrics.get('error')}")
    if not result.completed:
        raise ConfigError(
            f"{path} did not complete (status {result.status} in {METRICS_FILE}); evaluate "
            "and predict use completed runs"
        )
    settings = saved_settings(run_dir)
    preprocessing = load_preprocessing(run_dir)
    checkpoint_file = run_dir / CHECKPOINT_FILE
    with warnings.catch_warnings():  # torch's about a file it refuses: the error says it
        warnings.simplefilter("ignore")
        model, checkpoint = load_model(
            checkpoint_file, len(preprocessing.features), len(preprocessing.classes)
        )
    trained_in = DType(settings.dtype).value
    held = str(model.w.dtype).removeprefix("torch.")
    if held != trained_in:
        raise ConfigError(
            f"{checkpoint_file} holds {held} parameters, but the run trained in {trained_in} "
            f"(dtype in {CONFIG_FILE}): is it the checkpoint of another run?"
        )
    return SavedRun(run_dir, settings, result.metrics, model, checkpoint, preprocessing)


def saved_settings(run_dir: Path) -> Any:
    """The run's config as a validated JobConfig, rebuilt from ``.hydra/config.yaml`` on the
    schemas its ``dataset.name`` and ``updater.name`` choose (not composed again from
    ``conf/``, which may have changed since), with a relative ``dataset.path`` made relative
    to the directory the run was started in."""
    path = run_dir / CONFIG_FILE
    try:
        saved = OmegaConf.load(path)
        settings = validated(typed(saved))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except (OmegaConfBaseException, yaml.YAMLError, ValueError, OSError) as err:
        raise ConfigError(
            f"{path} is not a config this logreg_exp can read ({one_line(err)})"
        ) from None
    data_path = getattr(settings.dataset, "path", None)
    if isinstance(data_path, str) and not Path(data_path).is_absolute():
        settings.dataset.path = str(launch_dir(run_dir) / data_path)
    return settings


def typed(saved: Any) -> DictConfig:
    """``saved`` merged onto the structured schemas it names, so that it validates and
    converts as the composed config of a run does."""
    if not isinstance(saved, DictConfig):
        raise ConfigError("not a mapping of config keys")
    dataset_name = OmegaConf.select(saved, "dataset.name")
    updater_name = OmegaConf.select(saved, "updater.name")
    # a run from before schedules existed kept its learning rate: none
    scheduler_name = OmegaConf.select(saved, "scheduler.name", default="none")
    if scheduler_name not in SCHEDULER_SCHEMAS:
        raise ConfigError(
            f"scheduler.name={scheduler_name!r} is not known; allowed: "
            f"{', '.join(SCHEDULER_SCHEMAS)}"
        )
    if dataset_name not in DATASETS:
        raise ConfigError(
            f"dataset.name={dataset_name!r} is not known; allowed: {', '.join(DATASETS)}"
        )
    if updater_name not in UPDATER_SCHEMAS:
        raise ConfigError(
            f"updater.name={updater_name!r} is not known; allowed: {', '.join(UPDATER_SCHEMAS)}"
        )
    schema = OmegaConf.structured(JobConfig)
    schema.dataset = OmegaConf.structured(DATASETS[dataset_name].schema)
    schema.updater = OmegaConf.structured(UPDATER_SCHEMAS[updater_name])
    schema.device = OmegaConf.structured(DeviceConfig)
    schema.loss = OmegaConf.structured(LossConfig)
    schema.scheduler = OmegaConf.structured(SCHEDULER_SCHEMAS[scheduler_name])
    merged = OmegaConf.merge(schema, saved)
    assert isinstance(merged, DictConfig)
    return merged


def launch_dir(run_dir: Path) -> Path:
    """The directory the run was started in (Hydra's ``hydra.runtime.cwd``), which relative
    paths in its config are relative to; the current one where the run does not say."""
    try:
        cwd = OmegaConf.select(OmegaConf.load(run_dir / HYDRA_FILE), "hydra.runtime.cwd")
    except Exception:
        cwd = None
    return Path(cwd) if isinstance(cwd, str) and cwd else Path.cwd()
