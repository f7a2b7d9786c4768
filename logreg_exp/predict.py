"""``python -m logreg_exp.predict RUN_DIR INPUT.csv [--out FILE] [--delimiter D]``: a finished
run's best model applied to new rows.

The input needs the run's feature columns, found by name (in any order; other columns are
carried through as they are). Each row is standardized with the run's own training
statistics from ``preprocessing.json``, so nothing is recomputed from the training data,
and gets columns more: ``p_<class>``, the probability of the class the model calls 1 (for
two classes; of each class, one column each, for K >= 3), and ``predicted``, the class
name, as in the training CSV: at a probability above 0.5, or the most probable class. The
output is CSV with the input's delimiter, on stdout or in ``--out``.
"""

from __future__ import annotations

from logreg_exp.training.interrupts import catch_stop_signals_early

if __name__ == "__main__":  # before the imports below: a Ctrl-C in them is one line
    catch_stop_signals_early()

import argparse
import csv
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import torch

from logreg_exp.data.csv_file import (
    ROWS_PER_CHUNK,
    Table,
    columns,
    delimiter_hint,
    parse_columns,
    table_chunks,
)
from logreg_exp.errors import ConfigError, run_command
from logreg_exp.files import atomic_write, display_path, writable, writing
from logreg_exp.saved_run import SavedRun, open_run
from logreg_exp.training.model import predicted_classes, probabilities

PREDICTED_COLUMN = "predicted"


def probability_columns(run: SavedRun) -> list[str]:
    """``p_<class>``: of the class the model calls 1 for two classes, of each class beyond."""
    classes = run.preprocessing.classes
    return [f"p_{name}" for name in (classes[1:] if len(classes) == 2 else classes)]


def feature_columns(run: SavedRun, table: Table) -> list[int]:
    """Where the run's features are in ``table``'s header; ConfigError for a header that
    lacks one, or has a column the predictions would add."""
    added = (*probability_columns(run), PREDICTED_COLUMN)
    taken = [name for name in added if name in table.header]
    if taken:
        raise ConfigError(
            f"{table.path} has a column {taken[0]!r} already, which the predictions would "
            "add; rename it"
        )
    hint = delimiter_hint(table, "--delimiter {}")
    return columns(table, run.preprocessing.features, role="the run's feature", hint=hint)


def predict_table(run: SavedRun, table: Table) -> tuple[np.ndarray, list[str]]:
    """The probabilities (of class 1 for two classes, (rows,); of each class beyond,
    (rows, K)), in the model's dtype, and the predicted class name of every row of
    ``table``. A value the model's dtype cannot hold, as read or standardized, is an error
    naming its line and column, not a prediction of inf or NaN."""
    prep = run.preprocessing
    cols = feature_columns(run, table)
    if not table.rows:
        raise ConfigError(f"{table.path} has a header but no data rows")
    dtype = run.model.w.dtype
    np_dtype = np.dtype(str(dtype).removeprefix("torch."))
    remedy = f"the run's model takes {np_dtype.name}; rescale the column as in the training data"
    x = parse_columns(table, prep.features, cols, np_dtype, remedy)
    if prep.scaler is not None:
        prep.scaler.transform_(x)
    beyond = np.abs(x) > np.finfo(np_dtype).max
    if beyond.any():
        i, j = np.argwhere(beyond)[0]
        raise ConfigError(
            f"{table.path} line {table.line_numbers[i]}, column {prep.features[j]!r}: "
            f"{table.rows[i][cols[j]]!r}, standardized with the run's training statistics, "
            f"is beyond {np_dtype.name}: far outside the data the model was trained on"
        )
    with torch.no_grad():
        scores = run.model(torch.as_tensor(x, dtype=dtype))
    undefined = torch.isnan(scores)
    if undefined.any():
        i = int(undefined.nonzero()[0, 0])
        raise ConfigError(
            f"{table.path} line {table.line_numbers[i]}: the model's score overflows "
            f"{np_dtype.name} (inf - inf): the row is far outside the data the model was "
            "trained on"
        )
    proba = probabilities(scores).numpy()
    predicted = [prep.classes[k] for k in predicted_classes(scores).tolist()]
    return proba, predicted


def header_csv(run: SavedRun, table: Table) -> str:
    """The output's header line: the input's, and the two columns the predictions add."""
    feature_columns(run, table)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=table.delimiter, lineterminator="\n")
    writer.writerow([*table.header, *probability_columns(run), PREDICTED_COLUMN])
    return out.getvalue()


def rows_csv(run: SavedRun, table: Table) -> str:
    """``table``'s rows as they were read, each with its probability and predicted class."""
    proba, predicted = predict_table(run, table)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=table.delimiter, lineterminator="\n")
    for row, p, label in zip(table.rows, proba.reshape(len(predicted), -1), predicted, strict=True):
        writer.writerow([*row, *map(str, p), label])  # str: the shortest text that reads back
    return out.getvalue()


def predictions_csv(run: SavedRun, table: Table) -> str:
    """The input's header and rows, each with its probability and predicted class."""
    return header_csv(run, table) + rows_csv(run, table)


def write_predictions(
    run: SavedRun,
    path: Path,
    delimiter: str,
    write: Callable[[str], object],
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> int:
    """Write the output CSV of the input ``path`` with ``write``, a chunk of rows at a time
    (``table_chunks``), the header with the first, so that memory holds one chunk, not the
    file; return the number of rows. An error in a later chunk comes after the earlier
    chunks are written."""
    count = 0
    chunks = table_chunks(path, delimiter, rows_per_chunk)
    header = header_csv(run, next(chunks))
    for table in chunks:
        count += len(table.rows)
        write(header + rows_csv(run, table))
        header = ""
        del table  # not held while the next chunk is read
    if header:
        raise ConfigError(f"{path} has a header but no data rows")
    return count


def checked_out(out: Path, input_path: Path, overwrite: bool) -> Path:
    """``--out``, where the predictions may go: a file in a dir that exists, not the input
    itself, and not a file already there unless ``overwrite``."""
    out = writable(out, "--out")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; name a file to write the predictions to")
    if out.exists():
        if input_path.exists() and os.path.samefile(out, input_path):
            raise ConfigError(
                f"--out {out} is the input file; write the predictions to another file"
            )
        if not overwrite:
            raise ConfigError(f"--out {out} exists; add --overwrite to replace it")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m logreg_exp.predict",
        description="Predict with a finished run's best model (best.pt) on the rows of a CSV "
        "file that has the run's feature columns.",
    )
    parser.add_argument("run_dir", type=Path, help="the run's output dir (outputs/DATE/TIME)")
    parser.add_argument("input", type=Path, help="a CSV file with a header line")
    parser.add_argument("--out", type=Path, help="write the predictions here (default: stdout)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the file --out names if it exists"
    )
    parser.add_argument(
        "--delimiter",
        help="the input's field delimiter (default: the run's dataset.delimiter for a CSV "
        "dataset, else ',')",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        out = None if args.out is None else checked_out(args.out, args.input, args.overwrite)
        run = open_run(args.run_dir)
        delimiter = args.delimiter or getattr(run.settings.dataset, "delimiter", ",")
        if len(delimiter) != 1:
            raise ConfigError(f"--delimiter must be one character, got {delimiter!r}")
        if out is None:
            write_predictions(run, args.input, delimiter, sys.stdout.write)
            return 0
        count = 0

        def write_file(f: IO[bytes]) -> None:
            nonlocal count
            count = write_predictions(run, args.input, delimiter, lambda t: f.write(t.encode()))

        with writing(out):  # an error names the user's file, not the temporary one beside it
            atomic_write(out, write_file)
        classes = run.preprocessing.classes
        if len(classes) == 2:
            what = (
                f"{probability_columns(run)[0]}, the probability of {classes[1]!r}, and "
                f"{PREDICTED_COLUMN}, {classes[1]!r} where it is above 0.5, else {classes[0]!r}"
            )
        else:
            what = (
                f"{', '.join(probability_columns(run))}, the probability of each class, and "
                f"{PREDICTED_COLUMN}, the most probable class"
            )
        print(f"wrote {count} predictions to {display_path(out)}: {what}")
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
