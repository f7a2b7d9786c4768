"""Structured configs: a type for every key, so a typo or a wrong type fails before training.

Each schema is stored in Hydra's ConfigStore under a name different from the YAML option it
validates (``gaussian2d_schema`` for ``dataset/gaussian2d.yaml``); the YAML files list their
schema first in their defaults list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class DType(Enum):
    """Floating-point type of the data and the parameters."""

    float32 = "float32"
    float64 = "float64"


class Monitor(Enum):
    """Validation metric that picks the best epoch."""

    val_loss = "val_loss"
    val_acc = "val_acc"


@dataclass
class Gaussian2dConfig:
    name: str = "gaussian2d"
    n_samples: int = 5000
    n_features: int = 2
    label_flip: float = 0.1
    val_fraction: float = 0.5


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


def register_configs() -> None:
    """Put every schema in Hydra's ConfigStore; call before Hydra composes the config."""
    cs = ConfigStore.instance()
    cs.store(name="experiment_schema", node=ExperimentConfig)
    cs.store(group="dataset", name="gaussian2d_schema", node=Gaussian2dConfig)
    cs.store(group="updater", name="optim_updater_schema", node=OptimUpdaterConfig)
    cs.store(group="updater", name="manual_updater_schema", node=ManualUpdaterConfig)
    cs.store(group="device", name="device_schema", node=DeviceConfig)
    cs.store(group="loss", name="loss_schema", node=LossConfig)
