"""The datasets that ``dataset.name`` chooses, as numpy features and 0/1 labels."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

import numpy as np

from logreg_exp.csv_data import LabeledArrays, read_csv_dataset
from logreg_exp.errors import ConfigError
from logreg_exp.gaussian2d import make_gaussian2d

log = logging.getLogger(__name__)

DATASET_NAMES = ("gaussian2d", "breast_cancer", "csv")
BREAST_CANCER_FEATURES = 30


def features_before_loading(dataset_cfg: Any) -> int | None:
    """How many features the data will have, as far as the config tells before they are
    loaded; None where only the file can tell (a CSV without a ``features`` list)."""
    if dataset_cfg.name == "gaussian2d":
        return int(dataset_cfg.n_features)
    if dataset_cfg.name == "breast_cancer":
        return BREAST_CANCER_FEATURES
    if dataset_cfg.name == "csv" and dataset_cfg.features is not None:
        return len(dataset_cfg.features)
    return None


def import_what_loading_imports(dataset_cfg: Any) -> None:
    """Import now what ``load_dataset`` will import, so that a caller can do it with the
    garbage collector paused (``startup.long_lived_objects``): scikit-learn for
    ``breast_cancer`` (0.6 s; 0.8 s with the collector running). Without the extra this does
    nothing: ``load_dataset`` reports it."""
    if dataset_cfg.name == "breast_cancer":
        with contextlib.suppress(ImportError):
            import sklearn.datasets  # noqa: F401


def load_breast_cancer() -> LabeledArrays:
    """Wisconsin diagnostic breast cancer (569 x 30), as scikit-learn ships it: no download."""
    try:
        from sklearn.datasets import load_breast_cancer as sklearn_load
    except ImportError:
        raise ConfigError(
            "dataset=breast_cancer needs scikit-learn: pip install 'logreg-exp[sklearn]'"
        ) from None
    bunch = sklearn_load()
    return LabeledArrays(
        np.asarray(bunch.data, dtype=np.float64),
        np.asarray(bunch.target, dtype=np.float64),
        list(bunch.feature_names),
        [str(name) for name in bunch.target_names],
    )


def load_dataset(
    dataset_cfg: Any, rng: np.random.Generator, dtype: np.dtype | type = np.float64
) -> LabeledArrays:
    """Features and labels of the dataset ``dataset.name`` names, before the split.

    gaussian2d is generated directly in ``dtype`` (it can be large); the real datasets are
    small and come as float64, for exact standardization statistics.
    """
    name = dataset_cfg.name
    if name == "gaussian2d":
        x, y = make_gaussian2d(
            dataset_cfg.n_samples, dataset_cfg.n_features, dataset_cfg.label_flip, rng, dtype
        )
        return LabeledArrays(x, y, [f"x{i}" for i in range(x.shape[1])], ["0", "1"])
    if name == "breast_cancer":
        data = load_breast_cancer()
    elif name == "csv":
        features = None if dataset_cfg.features is None else list(dataset_cfg.features)
        data = read_csv_dataset(
            dataset_cfg.path, dataset_cfg.target, features, dataset_cfg.delimiter
        )
    else:
        raise ConfigError(
            f"dataset.name={name!r} is not known; allowed: {', '.join(DATASET_NAMES)}"
        )
    log.info(
        "%s: %d samples, %d features; labels %s",
        name,
        len(data.y),
        data.x.shape[1],
        ", ".join(f"{label!r} -> {k}" for k, label in enumerate(data.class_names)),
    )
    return data


def limit_samples(
    data: LabeledArrays, max_samples: int | None, rng: np.random.Generator
) -> LabeledArrays:
    """A random subset of at most ``max_samples`` samples, in their original order (for trying
    things fast: ``debug=fast``); all of them when ``max_samples`` is null or not smaller."""
    if max_samples is None or len(data.y) <= max_samples:
        return data
    keep = np.sort(rng.choice(len(data.y), size=max_samples, replace=False))
    log.info(
        "dataset.max_samples=%d: using %d of %d samples", max_samples, max_samples, len(data.y)
    )
    return dataclasses.replace(data, x=data.x[keep], y=data.y[keep])
