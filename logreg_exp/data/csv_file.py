"""A user's own CSV file as features and binary labels, with errors that point at the cell."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from logreg_exp.errors import ConfigError

MISSING_MARKERS = {"", "na", "n/a", "nan", "null", "none"}


@dataclass
class LabeledArrays:
    """Features ``x`` (n, d), labels ``y`` in {0, 1}, and what the columns and labels were."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    class_names: list[str]  # class_names[k] is the original label mapped to k


def parse_number(text: str, where: str) -> float:
    """A finite float from a cell, or a ConfigError saying which cell and why."""
    if text.strip().lower() in MISSING_MARKERS:
        raise ConfigError(f"{where}: missing value ({text!r}); fill or drop the row")
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {text!r} is not a finite number")
    return value


def encode_labels(values: Sequence[str], path: Path, target: str) -> tuple[np.ndarray, list[str]]:
    """Map exactly two distinct labels to 0 and 1 in sorted order (numeric order if numbers)."""
    distinct = set(values)
    try:
        ordered = sorted(distinct, key=float)
    except ValueError:
        ordered = sorted(distinct)
    if len(ordered) != 2:
        shown = ", ".join(repr(v) for v in ordered[:5]) + (", ..." if len(ordered) > 5 else "")
        raise ConfigError(
            f"dataset.target={target!r} in {path} has {len(ordered)} distinct "
            f"value{'s' if len(ordered) != 1 else ''} ({shown}); it must have exactly two classes"
        )
    index = {label: k for k, label in enumerate(ordered)}
    return np.array([index[v] for v in values], dtype=np.float64), ordered


def read_csv_dataset(
    path: str | Path, target: str, features: Sequence[str] | None = None, delimiter: str = ","
) -> LabeledArrays:
    """Read ``path``: a header line of column names, then one row per sample.

    ``target`` names the label column; ``features`` the feature columns (default: all others).
    Every error names the file and, where it applies, the line (as an editor counts them)
    and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"dataset.path={str(path)!r}: no such file")
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ConfigError(f"{path} is empty: expected a header line of column names, then rows")
    header = [name.strip() for name in rows[0]]
    if target not in header:
        raise ConfigError(
            f"dataset.target={target!r} is not a column of {path}; columns: {', '.join(header)}"
        )
    if features is None:
        features = [name for name in header if name != target]
    else:
        features = list(features)
        unknown = [name for name in features if name not in header]
        if unknown:
            raise ConfigError(
                f"dataset.features: {', '.join(map(repr, unknown))} not a column of {path}; "
                f"columns: {', '.join(header)}"
            )
        if target in features:
            raise ConfigError(f"dataset.features must not include the target column {target!r}")
    if not features:
        raise ConfigError(f"{path} has no feature columns besides the target {target!r}")

    feature_cols = [header.index(name) for name in features]
    target_col = header.index(target)
    x = np.empty((len(rows) - 1, len(features)), dtype=np.float64)
    labels: list[str] = []
    n = 0
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:  # a blank line
            continue
        if len(row) != len(header):
            raise ConfigError(
                f"{path} line {line_no}: {len(row)} fields, but the header has {len(header)}"
            )
        label = row[target_col].strip()
        if label.lower() in MISSING_MARKERS:
            raise ConfigError(f"{path} line {line_no}, column {target!r}: missing label")
        labels.append(label)
        for j, col in enumerate(feature_cols):
            where = f"{path} line {line_no}, column {features[j]!r}"
            x[n, j] = parse_number(row[col], where)
        n += 1
    if n == 0:
        raise ConfigError(f"{path} has a header but no data rows")
    y, class_names = encode_labels(labels, path, target)
    return LabeledArrays(x[:n], y, list(features), class_names)
