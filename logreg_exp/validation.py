"""Range checks on the composed config, in one place, before anything is built.

Types are checked by the structured configs when Hydra composes; this checks values, and
each message names the key, the value and what is allowed.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from logreg_exp.config import DType
from logreg_exp.errors import ConfigError

FLOAT_MAX = {"float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


def validate_config(cfg: Any) -> None:
    """Raise ConfigError on the first value out of range."""
    require(cfg.batch_size > 0, "batch_size", cfg.batch_size, "a positive integer")
    require(cfg.val_batch_size > 0, "val_batch_size", cfg.val_batch_size, "a positive integer")
    require(cfg.epochs >= 1, "epochs", cfg.epochs, "an integer >= 1")
    threads = cfg.threads
    require(threads is None or threads >= 1, "threads", threads, "a positive integer or null")

    updater = cfg.updater
    largest = FLOAT_MAX[DType(cfg.dtype).value]  # torch cannot step with a larger factor
    lr = updater.lr
    require(
        0 < lr <= largest,
        "updater.lr",
        lr,
        f"a number > 0 and <= {largest:.3g} ({cfg.dtype.value})",
    )
    for key in ("momentum", "weight_decay"):
        value = updater[key]
        require(
            0 <= value <= largest, f"updater.{key}", value, f"a number >= 0 and <= {largest:.3g}"
        )

    validate_dataset(cfg.dataset)


def validate_dataset(dataset: Any) -> None:
    vf = dataset.val_fraction
    require(0 < vf < 1, "dataset.val_fraction", vf, "in the open interval (0, 1)")
    limit = dataset.max_samples
    require(limit is None or limit >= 4, "dataset.max_samples", limit, "an integer >= 4 or null")
    for key in dataset:
        if OmegaConf.is_missing(dataset, key):
            raise ConfigError(
                f"dataset.{key} is required for dataset={dataset.name} "
                "(e.g. dataset.path=data.csv dataset.target=label)"
            )
    if dataset.name == "gaussian2d":
        flip = dataset.label_flip
        require(0 <= flip < 0.5, "dataset.label_flip", flip, "in [0, 0.5)")
        require(
            dataset.n_features >= 2, "dataset.n_features", dataset.n_features, "an integer >= 2"
        )
        n = dataset.n_samples
        n_val = round(vf * n)
        # each split needs a point of each class; fewer than 2 points cannot hold both
        minimum = f"large enough for 2 points in each split at val_fraction={vf}"
        require(n >= 4 and n_val >= 2 and n - n_val >= 2, "dataset.n_samples", n, minimum)
