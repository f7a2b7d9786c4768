"""``python -m logreg_exp.predict RUN_DIR INPUT.csv [--out FILE] [--delimiter D]``: a finished
run's best model applied to new rows.

The input needs the run's feature columns, found by name (in any order; other columns are
carried through as they are). Each row is standardized with the run's own training
statistics from ``preprocessing.json``, so nothing is recomputed from the training data,
and gets two columns more: ``p_<class>``, the probability of the class the model calls 1,
and ``predicted``, the class name, as in the training CSV, at a probability above 0.5. The
output is CSV with the input's delimiter, on stdout or in ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from logreg_exp.data.csv_file import Table, columns, delimiter_hint, parse_columns, read_table
from logreg_exp.errors import ConfigError, run_command
from logreg_exp.files import atomic_write, display_path, writable
from logreg_exp.saved_run import SavedRun, open_run

PREDICTED_COLUMN = "predicted"


def probability_column(run: SavedRun) -> str:
    return f"p_{run.preprocessing.classes[1]}"


def predict_table(run: SavedRun, table: Table) -> tuple[np.ndarray, list[str]]:
    """The probability of class 1, in the model's dtype, and the predicted class name of
    every row of ``table``."""
    prep = run.preprocessing
    hint = delimiter_hint(table, "--delimiter {}")
    cols = columns(table, prep.features, role="the run's feature", hint=hint)
    if not table.rows:
        raise ConfigError(f"{table.path} has a header but no data rows")
    x = parse_columns(table, prep.features, cols)
    if prep.scaler is not None:
        prep.scaler.transform_(x)
    dtype = run.model.w.dtype
    with torch.no_grad():
        scores = run.model(torch.as_tensor(x, dtype=dtype))
    proba = torch.sigmoid(scores).numpy()
    predicted = [prep.classes[int(s)] for s in (scores > 0).tolist()]
    return proba, predicted


def predictions_csv(run: SavedRun, table: Table) -> str:
    """The input's header and rows, each with its probability and predicted class."""
    added = [probability_column(run), PREDICTED_COLUMN]
    taken = [name for name in added if name in table.header]
    if taken:
        raise ConfigError(
            f"{table.path} has a column {taken[0]!r} already, which the predictions would "
            "add; rename it"
        )
    proba, predicted = predict_table(run, table)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=table.delimiter, lineterminator="\n")
    writer.writerow([*table.header, *added])
    for row, p, label in zip(table.rows, proba, predicted, strict=True):
        writer.writerow([*row, str(p), label])  # str: the shortest text that reads back as p
    return out.getvalue()


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
        "--delimiter",
        help="the input's field delimiter (default: the run's dataset.delimiter for a CSV "
        "dataset, else ',')",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        out = None if args.out is None else writable(args.out, "--out")
        run = open_run(args.run_dir)
        delimiter = args.delimiter or getattr(run.settings.dataset, "delimiter", ",")
        if len(delimiter) != 1:
            raise ConfigError(f"--delimiter must be one character, got {delimiter!r}")
        table = read_table(args.input, delimiter)
        text = predictions_csv(run, table)
        if out is None:
            sys.stdout.write(text)
            return 0
        atomic_write(out, lambda f: f.write(text.encode()))
        classes = run.preprocessing.classes
        print(
            f"wrote {len(table.rows)} predictions to {display_path(out)}: "
            f"{probability_column(run)}, the probability of {classes[1]!r}, and "
            f"{PREDICTED_COLUMN}, {classes[1]!r} where it is above 0.5, else {classes[0]!r}"
        )
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
