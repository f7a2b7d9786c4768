"""A user's own CSV file as features and binary labels, with errors that point at the cell."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
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


@dataclass
class Table:
    """A CSV file's header and data rows (cells as text, blank lines dropped), each row with
    its line number as an editor counts it."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    line_numbers: list[int]
    delimiter: str


def read_table(path: str | Path, delimiter: str, key: str | None = None) -> Table:
    """Read ``path``: a header line of column names, then rows of as many fields. ``key``
    names the setting the path came from (``dataset.path``), for the error of a missing
    file."""
    path = Path(path)
    if not path.is_file():
        named = f"{key}={str(path)!r}" if key else str(path)
        raise ConfigError(f"{named}: no such file")
    try:
        # utf-8-sig: UTF-8, with the byte-order mark that spreadsheet programs write skipped
        with path.open(newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f, delimiter=delimiter))
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8 CSV"
        ) from None
    except csv.Error as err:
        raise ConfigError(f"{path} is not readable as CSV: {err}") from None
    if not lines or not any(cell.strip() for cell in lines[0]):
        raise ConfigError(f"{path} is empty: expected a header line of column names, then rows")
    header = [name.strip() for name in lines[0]]
    rows, line_numbers = [], []
    for line_no, row in enumerate(lines[1:], start=2):
        if not row:  # a blank line
            continue
        if len(row) != len(header):
            raise ConfigError(
                f"{path} line {line_no}: {len(row)} fields, but the header has {len(header)}"
            )
        rows.append(row)
        line_numbers.append(line_no)
    return Table(path, header, rows, line_numbers, delimiter)


def listed(names: Iterable[str], limit: int = 6) -> str:
    """``a, b, c`` or, past ``limit`` names, ``a, b, c, ... (40 in all)``; a name of more
    than 60 characters (a header read with the wrong delimiter) cut short with ``...``."""
    names = [name if len(name) <= 60 else name[:57] + "..." for name in names]
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])}, ... ({len(names)} in all)"


def delimiter_hint(table: Table, setting: str) -> str:
    """Where the header read as one column that holds another likely delimiter, a hint to
    use it, by ``setting`` (a template: ``dataset.delimiter={}``); else nothing."""
    if len(table.header) == 1:
        for candidate in (",", ";", "\t", "|"):
            if candidate != table.delimiter and candidate in table.header[0]:
                return (
                    f" (the header read as one column with delimiter {table.delimiter!r}; "
                    f"try {setting.format(repr(candidate))})"
                )
    return ""


def columns(table: Table, names: Sequence[str], role: str = "", hint: str = "") -> list[int]:
    """The index of each of ``names`` in the header, in that order, or a ConfigError naming
    the missing ones (``role``: whose columns they are, ``hint``: what to add), or one that
    appears twice."""
    missing = [name for name in names if name not in table.header]
    if missing:
        raise ConfigError(
            f"{table.path} lacks {role or 'the'} column{'s' if len(missing) > 1 else ''} "
            f"{listed(map(repr, missing))}; its columns: {listed(table.header)}{hint}"
        )
    twice = [name for name in names if table.header.count(name) > 1]
    if twice:
        raise ConfigError(f"{table.path}: column {twice[0]!r} appears more than once in the header")
    return [table.header.index(name) for name in names]


def parse_columns(table: Table, names: Sequence[str], cols: Sequence[int]) -> np.ndarray:
    """The columns ``names`` (at ``cols``) of every row as float64 (n, len(names)); a
    ConfigError names the line and column of a cell that is missing, not a number, or not
    finite."""
    x = np.empty((len(table.rows), len(cols)), dtype=np.float64)
    for i, (row, line_no) in enumerate(zip(table.rows, table.line_numbers, strict=True)):
        for j, col in enumerate(cols):
            x[i, j] = parse_number(row[col], f"{table.path} line {line_no}, column {names[j]!r}")
    return x


def read_csv_dataset(
    path: str | Path, target: str, features: Sequence[str] | None = None, delimiter: str = ","
) -> LabeledArrays:
    """Read ``path``: a header line of column names, then one row per sample.

    ``target`` names the label column; ``features`` the feature columns (default: all others).
    Every error names the file and, where it applies, the line (as an editor counts them)
    and the column.
    """
    table = read_table(path, delimiter, key="dataset.path")
    path, header = table.path, table.header
    if target not in header:
        raise ConfigError(
            f"dataset.target={target!r} is not a column of {path}; columns: "
            f"{', '.join(header)}{delimiter_hint(table, 'dataset.delimiter={}')}"
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
    if not table.rows:
        raise ConfigError(f"{path} has a header but no data rows")

    target_col = header.index(target)
    labels = []
    for row, line_no in zip(table.rows, table.line_numbers, strict=True):
        label = row[target_col].strip()
        if label.lower() in MISSING_MARKERS:
            raise ConfigError(f"{path} line {line_no}, column {target!r}: missing label")
        labels.append(label)
    x = parse_columns(table, features, columns(table, features))
    y, class_names = encode_labels(labels, path, target)
    return LabeledArrays(x, y, list(features), class_names)
