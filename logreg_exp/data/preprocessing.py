"""``preprocessing.json``: what turns a table's rows into a run's model input, and its
class numbers (0 .. K-1) back into class names, saved with the run so that applying the
model recomputes nothing from the training data.

As scikit-learn would keep it in a fitted pipeline: the feature columns by name, in the
model's order (``feature_names_in_``), the training split's mean and standard deviation
(``StandardScaler``), and the original class names (``LabelEncoder.classes_``). JSON, so any
tool can read it; Python's float text round-trips every float64 exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from logreg_exp.data.loaders import Standardizer
from logreg_exp.errors import ConfigError, one_line
from logreg_exp.files import atomic_write
from logreg_exp.run_files import PREPROCESSING_FILE


@dataclass
class Preprocessing:
    """The feature columns in the model's order, the standardizer fitted on the training
    split (None: the model reads raw features), and the class names: ``classes[k]`` is the
    label the model calls ``k``."""

    features: list[str]
    classes: list[str]
    scaler: Standardizer | None

    def to_json(self) -> dict[str, Any]:
        scaler = self.scaler
        return {
            "features": list(self.features),
            "classes": list(self.classes),
            "standardize": None
            if scaler is None
            else {"mean": [float(v) for v in scaler.mean], "std": [float(v) for v in scaler.std]},
        }

    @classmethod
    def from_json(cls, data: Any) -> Preprocessing:
        """Raises ValueError naming what is missing or malformed."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        features, classes = data.get("features"), data.get("classes")
        if not (features and is_list_of(features, str)):
            raise ValueError("'features' must be a non-empty list of column names")
        if not (len(classes or ()) >= 2 and is_list_of(classes, str)):
            raise ValueError("'classes' must be a list of two class names or more")
        stats = data.get("standardize")
        if stats is None:
            return cls(features, classes, None)
        arrays = [stats.get(k) if isinstance(stats, dict) else None for k in ("mean", "std")]
        if not all(is_list_of(a, float) and len(a) == len(features) for a in arrays):
            raise ValueError(
                f"'standardize' must hold a 'mean' and a 'std' of {len(features)} numbers each"
            )
        mean, std = (np.asarray(a, dtype=np.float64) for a in arrays)
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("'standardize' must hold finite means and positive stds")
        return cls(features, classes, Standardizer(mean, std))

    def same_as(self, other: Preprocessing) -> str | None:
        """None if ``other`` (rebuilt from the data) matches this one, else what differs."""
        if self.features != other.features:
            return f"feature columns {other.features} (the run had {self.features})"
        if self.classes != other.classes:
            return f"classes {other.classes} (the run had {self.classes})"
        if (self.scaler is None) != (other.scaler is None):
            return "standardization switched"
        if self.scaler is not None and other.scaler is not None:
            for name in ("mean", "std"):
                saved, rebuilt = getattr(self.scaler, name), getattr(other.scaler, name)
                if not np.allclose(saved, rebuilt, rtol=1e-9, atol=0):
                    return f"the training split's feature {name} (standardization statistics)"
        return None


def is_list_of(value: Any, kind: type) -> bool:
    """A JSON list whose items are all ``kind`` (an int counts as a float, a bool as neither)."""
    kinds = (int, float) if kind is float else (kind,)
    return isinstance(value, list) and all(
        isinstance(v, kinds) and not isinstance(v, bool) for v in value
    )


def save_preprocessing(run_dir: Path, preprocessing: Preprocessing) -> Path:
    path = Path(run_dir) / PREPROCESSING_FILE
    text = json.dumps(preprocessing.to_json(), indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def load_preprocessing(run_dir: Path) -> Preprocessing:
    """The run's preprocessing; ConfigError in one line if the file is missing or bad."""
    path = Path(run_dir) / PREPROCESSING_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; the run was made by a logreg_exp without it: run it again"
        ) from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: unreadable ({one_line(err)})") from None
    try:
        return Preprocessing.from_json(data)
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None
