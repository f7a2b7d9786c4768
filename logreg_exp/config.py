"""Structured configs: a type for every key, so a typo or a wrong type fails before training.

Each schema is stored in Hydra's ConfigStore under ``schema/`` (``schema/dataset/gaussian2d``
validates ``dataset/gaussian2d.yaml``), apart from the groups a user chooses from, so
``updater=foo`` lists only real options; each YAML file lists its schema first in its
defaults list, placed at its own package with ``@_here_``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from logreg_exp.results import Monitor


class DType(Enum):
    """Floating-point type of the data and the parameters."""

    float32 = "float32"
    float64 = "float64"


@dataclass
class DatasetConfig:
    """Keys every dataset has: the held-out share, its split, and feature scaling."""

    name: str = MISSING
    val_fraction: float = 0.5
    stratify: bool = True
    standardize: bool = True
    max_samples: Optional[int] = None  # noqa: UP045 (a random subset of at most this many)


@dataclass
class Gaussian2dConfig(DatasetConfig):
    name: str = "gaussian2d"
    n_samples: int = 5000
    n_features: int = 2
    label_flip: float = 0.1
    stratify: bool = False
    standardize: bool = False


@dataclass
class BreastCancerConfig(DatasetConfig):
    name: str = "breast_cancer"
    val_fraction: float = 0.3


@dataclass
class CsvConfig(DatasetConfig):
    name: str = "csv"
    path: str = MISSING
    target: str = MISSING
    features: Optional[list[str]] = None  # noqa: UP045 (OmegaConf needs Optional here)
    delimiter: str = ","
    val_fraction: float = 0.3


@dataclass
class OptimUpdaterConfig:
    name: str = "optim"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "torch.optim.SGD", "_partial_": True}
    )


@dataclass
class ManualUpdaterConfig:
    name: str = "manual"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass
class DeviceConfig:
    name: str = "cpu"
    data_on_device: bool = True  # move the dataset to the device once, when it fits


@dataclass
class LossConfig:
    _target_: str = "torch.nn.BCEWithLogitsLoss"


@dataclass
class ExperimentConfig:
    dataset: Any = MISSING
    updater: Any = MISSING
    device: DeviceConfig = MISSING
    loss: LossConfig = MISSING
    batch_size: int = 8
    val_batch_size: int = 32
    epochs: int = 12
    seed: int = 0
    dtype: DType = DType.float32
    monitor: Monitor = Monitor.val_loss
    threads: Optional[int] = None  # noqa: UP045 (torch's CPU threads; see threads.py)
    tensorboard: bool = True


def path_safe(text: str) -> str:
    """A directory-name-safe form of ``text``: path separators become ``_``."""
    return text.replace("/", "_").replace("\\", "_")


def register_configs() -> None:
    """Put every schema in Hydra's ConfigStore and our resolvers in OmegaConf; call before
    Hydra composes the config."""
    from logreg_exp.launchers import gpus_for_device
    from logreg_exp.threads import jobs_at_once

    resolvers = {
        "path_safe": path_safe,
        "gpus_for_device": gpus_for_device,
        "jobs_at_once": jobs_at_once,
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
    cs = ConfigStore.instance()
    cs.store(group="schema", name="experiment", node=ExperimentConfig)
    cs.store(group="schema/dataset", name="gaussian2d", node=Gaussian2dConfig)
    cs.store(group="schema/dataset", name="breast_cancer", node=BreastCancerConfig)
    cs.store(group="schema/dataset", name="csv", node=CsvConfig)
    cs.store(group="schema/updater", name="optim", node=OptimUpdaterConfig)
    cs.store(group="schema/updater", name="manual", node=ManualUpdaterConfig)
    cs.store(group="schema", name="device", node=DeviceConfig)
    cs.store(group="schema", name="loss", node=LossConfig)
