"""A user's own CSV file as features and class labels, with errors that point at the cell.

Every way a file can fail to be read or parsed is a ConfigError of one line naming the file
and, where it applies, the line (as an editor counts them) and the column. What is
normalised rather than refused, deliberately: a UTF-8 byte-order mark before the header
(spreadsheet exports write one); spaces around header names; numeric labels that are the
same number spelt differently (``1`` and ``1.0`` are one class). Refused: bytes that are
not UTF-8, duplicate or empty column names, a value too large for the run's dtype.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from logreg_exp.errors import ConfigError, os_reason

MISSING_MARKERS = {"", "na", "n/a", "nan", "null", "none"}
ROWS_PER_CHUNK = 1 << 16  # features are parsed into numpy blocks of this many rows
ENCODING = "utf-8-sig"  # UTF-8, with the byte-order mark of spreadsheet exports dropped


@dataclass
class LabeledArrays:
    """Features ``x`` (n, d), labels ``y`` in {0, .., K-1} (as floats), and what the columns
    and labels were."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    class_names: list[str]  # class_names[k] is the original label mapped to k
    # other spellings of a class's label, each with the name it was read as ("1.0": "1")
    label_spellings: dict[str, str] = field(default_factory=dict)


def parse_number(
    text: str, where: str, dtype: np.dtype | type = np.float64, remedy: str = ""
) -> float:
    """A finite float from a cell that ``dtype`` can hold, or a ConfigError saying which
    cell and why (``remedy``: what to do about a value beyond ``dtype``)."""
    if text.strip().lower() in MISSING_MARKERS:
        raise ConfigError(f"{where}: missing value ({text!r}); fill or drop the row")
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {text!r} is not a finite number")
    largest = float(np.finfo(dtype).max)
    if abs(value) > largest:
        raise ConfigError(
            f"{where}: {text!r} does not fit in {np.dtype(dtype).name} (largest {largest:.4g}); "
            f"{remedy or 'use dtype=float64, or rescale the column'}"
        )
    return value


def label_number(label: str) -> float | None:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def encode_labels(
    values: Sequence[str], path: Path, target: str
) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Map the K >= 2 classes to 0 .. K-1 in sorted order; labels that are all numbers sort
    as numbers, and spellings of the same number (``1``, ``1.0``) are one class, named by
    its shortest spelling. Returns the labels, the class names, and each other spelling
    with the name it was read as. Nothing here depends on set order (the hash seed)."""
    spellings = sorted(set(values))
    numbers = {label: label_number(label) for label in spellings}
    if all(number is not None for number in numbers.values()):
        shortest: dict[float | None, str] = {}
        for label in spellings:  # sorted, so among spellings of one length the first wins
            known = shortest.get(numbers[label])
            if known is None or len(label) < len(known):
                shortest[numbers[label]] = label
        classes = [shortest[v] for v in sorted(shortest, key=float)]  # type: ignore[arg-type]
        name_of = {label: shortest[numbers[label]] for label in spellings}
    else:
        classes = spellings
        name_of = {label: label for label in spellings}
    if len(classes) < 2:
        raise ConfigError(
            f"dataset.target={target!r} in {path} has 1 distinct value ({classes[0]!r}); it "
            "must have two classes or more"
        )
    index = {name: k for k, name in enumerate(classes)}
    y = np.fromiter((index[name_of[v]] for v in values), dtype=np.float64, count=len(values))
    merged = {label: name for label, name in name_of.items() if label != name}
    return y, classes, merged


def read_header(path: Path, delimiter: str) -> list[str]:
    """The column names of ``path``'s first line, checked (see ``read_csv_dataset``)."""
    with open_csv(path) as f:
        rows = csv_rows(csv.reader(f, delimiter=delimiter), path)
        first = next(rows, None)
    if first is None or not any(cell.strip() for cell in first[1]):
        raise ConfigError(f"{path} is empty: expected a header line of column names, then rows")
    header = [name.strip() for name in first[1]]
    for i, name in enumerate(header):
        if not name:
            raise ConfigError(
                f"{path} line 1: column {i + 1} has no name (a delimiter at the end of the "
                "line?); every column needs a name"
            )
        if name in header[:i]:
            raise ConfigError(
                f"{path} line 1: the column name {name!r} appears twice (columns "
                f"{header.index(name) + 1} and {i + 1}); column names must be unique"
            )
    return header


def count_lines(path: Path) -> int:
    """Lines in ``path`` (a pass over its bytes): at least as many as its rows."""
    try:
        with path.open("rb") as f:
            lines, last = 0, b"\n"
            while block := f.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
    except OSError as err:
        raise ConfigError(f"dataset.path={str(path)!r}: cannot read it: {os_reason(err)}") from None
    return lines + (last != b"\n")


def open_csv(path: Path) -> TextIO:
    """``path`` opened for the csv module, or a ConfigError saying why it cannot be."""
    try:
        return path.open(encoding=ENCODING, newline="")
    except FileNotFoundError:
        raise ConfigError(f"dataset.path={str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"dataset.path={str(path)!r} is a directory, not a CSV file") from None
    except OSError as err:
        raise ConfigError(f"dataset.path={str(path)!r}: cannot read it: {os_reason(err)}") from None


def data_rows(
    rows: Iterator[tuple[int, list[str]]], path: Path, width: int
) -> Iterator[tuple[int, list[str]]]:
    """The rows of ``csv_rows`` after the header, blank lines left out; a row whose number of
    fields is not the header's ``width`` is a ConfigError naming its line."""
    for line_no, row in rows:
        if not row:  # a blank line
            continue
        if len(row) != width:
            raise ConfigError(
                f"{path} line {line_no}: {len(row)} fields, but the header has {width}"
            )
        yield line_no, row


def csv_rows(reader: Iterator[list[str]], path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line, row)`` for each record of ``reader``, ``line`` being where it ends; each
    failure to read or decode the file as a ConfigError naming the line."""
    ended = 0  # the line the last record ended on
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            lines = f"line {ended + 1}"
            if reader.line_num > ended + 1:  # type: ignore[attr-defined]
                lines = f"lines {ended + 1}-{reader.line_num}"  # type: ignore[attr-defined]
            hint = " (an unclosed quote?)" if "field larger than field limit" in str(err) else ""
            raise ConfigError(f"{path} {lines}: not valid CSV: {err}{hint}") from None
        except UnicodeDecodeError as err:
            line, column = undecodable_at(path)
            raise ConfigError(
                f"{path} line {line}, byte {column}: {err.object[err.start : err.end]!r} is "
                "not UTF-8; save the file as UTF-8"
            ) from None
        except OSError as err:
            raise ConfigError(f"{path}: cannot read it: {os_reason(err)}") from None
        ended = reader.line_num  # type: ignore[attr-defined]
        yield ended, row


def undecodable_at(path: Path) -> tuple[int, int]:
    """Line and byte (from 1) of the first byte of ``path`` that is not UTF-8."""
    with path.open("rb") as f:
        for line, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return line, err.start + 1
    return 0, 0


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


def table_chunks(
    path: str | Path, delimiter: str, rows_per_chunk: int = ROWS_PER_CHUNK
) -> Iterator[Table]:
    """``path`` read as ``read_table`` reads it, a Table of at most ``rows_per_chunk`` rows
    at a time, so that memory holds one chunk, not the file. The first Table is the header
    alone, before any row is read; every later one has rows. An error names the file and
    the line (``csv_rows``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        f = path.open(encoding=ENCODING, newline="")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it: {os_reason(err)}") from None
    with f:
        rows = csv_rows(csv.reader(f, delimiter=delimiter), path)
        first = next(rows, None)
        if first is None or not any(cell.strip() for cell in first[1]):
            raise ConfigError(f"{path} is empty: expected a header line of column names, then rows")
        header = [name.strip() for name in first[1]]
        yield Table(path, header, [], [], delimiter)
        chunk = Table(path, header, [], [], delimiter)
        for line_no, row in data_rows(rows, path, len(header)):
            chunk.rows.append(row)
            chunk.line_numbers.append(line_no)
            if len(chunk.rows) == rows_per_chunk:
                yield chunk
                chunk = Table(path, header, [], [], delimiter)
        if chunk.rows:
            yield chunk


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
    return header_hint(table.header, table.delimiter, setting)


def header_hint(header: Sequence[str], delimiter: str, setting: str) -> str:
    """``delimiter_hint`` for a header read with ``delimiter``."""
    if len(header) == 1:
        for candidate in (",", ";", "\t", "|"):
            if candidate != delimiter and candidate in header[0]:
                return (
                    f" (the header read as one column with delimiter {delimiter!r}; "
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


def parse_columns(
    table: Table,
    names: Sequence[str],
    cols: Sequence[int],
    dtype: np.dtype | type = np.float64,
    remedy: str = "",
) -> np.ndarray:
    """The columns ``names`` (at ``cols``) of every row as float64 (n, len(names)); a
    ConfigError names the line and column of a cell that is missing, not a number, not
    finite, or beyond ``dtype`` (``remedy``: what to do then, see ``parse_number``)."""
    x = np.empty((len(table.rows), len(cols)), dtype=np.float64)
    for i, (row, line_no) in enumerate(zip(table.rows, table.line_numbers, strict=True)):
        for j, col in enumerate(cols):
            where = f"{table.path} line {line_no}, column {names[j]!r}"
            x[i, j] = parse_number(row[col], where, dtype, remedy)
    return x


def read_csv_dataset(
    path: str | Path,
    target: str,
    features: Sequence[str] | None = None,
    delimiter: str = ",",
    dtype: np.dtype | type = np.float64,
) -> LabeledArrays:
    """Read ``path``: a header line of column names, then one row per sample.

    ``target`` names the label column; ``features`` the feature columns (default: all others);
    a feature value that the run's ``dtype`` cannot hold is an error. The rows
    are parsed as they are read, into float64 blocks: the file is never held as text.
    """
    path = Path(path)
    header = read_header(path, delimiter)
    if target not in header:
        raise ConfigError(
            f"dataset.target={target!r} is not a column of {path}; columns: "
            f"{', '.join(header)}{header_hint(header, delimiter, 'dataset.delimiter={}')}"
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
    blocks: list[np.ndarray] = []
    block = np.empty((ROWS_PER_CHUNK, len(features)), dtype=np.float64)
    labels: list[str] = []
    n = 0
    with open_csv(path) as f:
        rows = csv_rows(csv.reader(f, delimiter=delimiter), path)
        next(rows)  # the header
        for line_no, row in data_rows(rows, path, len(header)):
            label = row[target_col].strip()
            if label.lower() in MISSING_MARKERS:
                raise ConfigError(f"{path} line {line_no}, column {target!r}: missing label")
            labels.append(label)
            if n == ROWS_PER_CHUNK:
                blocks.append(block)
                block = np.empty_like(block)
                n = 0
            for j, col in enumerate(feature_cols):
                where = f"{path} line {line_no}, column {features[j]!r}"
                block[n, j] = parse_number(row[col], where, dtype)
            n += 1
    if not labels:
        raise ConfigError(f"{path} has a header but no data rows")
    x = np.concatenate([*blocks, block[:n]]) if blocks else block[:n].copy()
    y, class_names, spellings = encode_labels(labels, path, target)
    return LabeledArrays(x, y, list(features), class_names, spellings)
