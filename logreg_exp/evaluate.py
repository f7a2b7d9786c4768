"""``python -m logreg_exp.evaluate RUN_DIR [--split train val test] [--out FILE]``: a finished
run's best model (``best.pt``) on the splits of its own data, rebuilt from the run's saved
config: loss, accuracy, ROC AUC, the other metrics of ``training.metrics``, the confusion
matrix and the reliability diagram's bins of each split, printed and written to
``evaluation.json`` in the run dir, the confusion matrix and the reliability diagram of each
split drawn beside it (``evaluation_confusion_matrix_test.png`` ..., with matplotlib).

The same config and seed give the same splits, so the data are rebuilt rather than stored;
the rebuilt preprocessing is checked against the run's ``preprocessing.json``, which catches
a CSV that changed since. A plain command rather than a Hydra entrypoint: everything it
needs is in the run dir, so there is nothing to compose, and its output belongs to that run,
not in a new Hydra output dir.
"""

from __future__ import annotations

from logreg_exp.training.interrupts import catch_stop_signals_early

if __name__ == "__main__":  # before the imports below: a Ctrl-C in them is one line
    catch_stop_signals_early()

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from logreg_exp.data.loaders import make_loader
from logreg_exp.errors import ConfigError, run_command
from logreg_exp.files import display_path, writable, write_bytes, writing
from logreg_exp.provenance import provenance_lines, read_provenance
from logreg_exp.results import write_evaluation
from logreg_exp.run_files import EVALUATION_FILE, EVALUATION_PICTURE
from logreg_exp.saved_run import SavedRun, open_run
from logreg_exp.sweeps.launchers import is_installed
from logreg_exp.training.build import build_data, build_loss, class_weights_for
from logreg_exp.training.loop import evaluate
from logreg_exp.training.metrics import classification_metrics, reliability
from logreg_exp.training.scoring import DEFAULT_THRESHOLD, predictions

SPLITS = ("train", "val", "test")
CPU = torch.device("cpu")


def evaluate_run(run: SavedRun, splits: Sequence[str] | None = None) -> dict[str, Any]:
    """The run's best model on each of ``splits`` (default: every split the run has) of its
    rebuilt data, and, where the dataset has them, its evaluators' numbers (gaussian2d: the
    exact ``population_acc``): the contents of ``evaluation.json``."""
    settings = run.settings
    data = build_data(settings, CPU)
    differs = run.preprocessing.same_as(data.preprocessing)
    if differs:
        raise ConfigError(
            f"the data rebuilt from {display_path(run.dir)}'s config are not the ones it "
            f"trained on: {differs}; was {data_source(settings)} changed since the run?"
        )
    available = {"train": data.train, "val": data.val, "test": data.test}
    if splits is None:
        splits = [name for name in SPLITS if available[name] is not None]
    elif "test" in splits and data.test is None:
        raise ConfigError(
            f"{display_path(run.dir)} has no test split (dataset.test_fraction=0); "
            "choose from train, val"
        )
    weights = class_weights_for(settings, data.preprocessing.classes, data.train)
    loss_fn = build_loss(settings.loss, run.model.n_classes, weights)
    threshold = run.threshold
    results = {name: evaluate_split(run, available[name], loss_fn, threshold) for name in splits}
    evaluation: dict[str, Any] = {
        "run_dir": str(run.dir),
        "checkpoint": {k: run.checkpoint.get(k) for k in ("epoch", "monitor", "value")},
        "classes": run.preprocessing.classes,
        "threshold": threshold,
        "splits": results,
    }
    evaluation.update({name: fn(run.model) for name, fn in data.evaluators.items()})
    return evaluation


def evaluate_split(
    run: SavedRun, split: TensorDataset, loss_fn: Any, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """The model on one split, in minibatches of ``val_batch_size`` as in training, so the
    validation numbers are those of metrics.json: the loss, and every metric of
    ``training.metrics`` at the run's ``threshold``, with the reliability diagram's bins."""
    loader = make_loader(split, run.settings.val_batch_size, shuffle=False)
    loss, acc = evaluate(run.model, loss_fn, loader, CPU)
    proba, labels = predictions(run.model, loader, CPU)
    metrics = classification_metrics(proba, labels, threshold)
    if threshold != DEFAULT_THRESHOLD:
        acc = metrics["acc"]
    del metrics["acc"]
    return {
        "samples": len(labels),
        "loss": loss,
        "acc": acc,
        **metrics,
        "reliability": reliability(proba, labels),
    }


def data_source(settings: Any) -> str:
    path = getattr(settings.dataset, "path", None)
    return str(path) if path else f"dataset={settings.dataset.name}"


def report(run: SavedRun, evaluation: dict[str, Any]) -> str:
    """What the command prints: the run, a table of the splits, each split's confusion
    matrix, and the evaluators' numbers."""
    splits: dict[str, dict[str, Any]] = evaluation["splits"]
    lines = [run.describe(), ""]
    rows = [["split", "samples", "loss", "acc", "roc_auc"]]
    for name, r in splits.items():
        auc = "" if r["roc_auc"] is None else f"{r['roc_auc']:.4f}"
        rows.append([name, str(r["samples"]), f"{r['loss']:.4f}", f"{r['acc']:.4f}", auc])
    lines += aligned(rows)
    lines += ["", *aligned(metric_rows(splits))]
    classes = evaluation["classes"]
    for name, r in splits.items():
        lines += ["", f"per class, {name}"]
        per_class = r["per_class"]
        table = [["class", "precision", "recall", "f1", "support"]]
        for c, label in enumerate(classes):
            values = [f"{per_class[key][c]:.4f}" for key in ("precision", "recall", "f1")]
            table.append([label, *values, str(per_class["support"][c])])
        lines += aligned(table)
        lines += ["", f"confusion matrix, {name} (rows: true class, columns: predicted class)"]
        counts = zip(classes, r["confusion_matrix"], strict=True)
        matrix = [["", *classes], *([label, *map(str, row)] for label, row in counts)]
        lines += aligned(matrix)
    last = list(splits)[-1]
    of = f"p({classes[1]})" if len(classes) == 2 else "the predicted class's probability"
    lines += ["", f"reliability, {last} (samples binned by {of}; observed: how often right)"]
    bins = splits[last]["reliability"]
    table = [["predicted", "observed", "samples"]]
    table += [
        [f"{p:.3f}", f"{o:.3f}", str(n)]
        for p, o, n in zip(bins["predicted"], bins["observed"], bins["count"], strict=True)
    ]
    lines += aligned(table)
    if evaluation["threshold"] != DEFAULT_THRESHOLD:
        how = " (threshold=tuned)" if str(run.settings.threshold) == "tuned" else ""
        lines += ["", f"threshold {evaluation['threshold']:.4f} on p({classes[1]}){how}"]
    if "population_acc" in evaluation:
        lines += [
            "",
            f"population_acc {evaluation['population_acc']:.4f}: the model's exact accuracy "
            "on the whole distribution",
        ]
    lines += ["", *provenance_lines(read_provenance(run.dir))]
    return "\n".join(lines)


SPLIT_METRICS = ("balanced_acc", "precision", "recall", "f1", "f1_macro", "pr_auc", "brier")


def metric_rows(splits: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The table of the other metrics, a split a row (a blank where one is undefined)."""
    rows = [["split", *SPLIT_METRICS]]
    for name, r in splits.items():
        cells = ["" if r[key] is None else f"{r[key]:.4f}" for key in SPLIT_METRICS]
        rows.append([name, *cells])
    return rows


def aligned(rows: list[list[str]]) -> list[str]:
    """Rows as lines of columns, the first left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def write_pictures(evaluation: dict[str, Any], beside: Path) -> str:
    """Each split's confusion matrix and reliability diagram as PNGs beside the JSON file
    ``beside`` (``{stem}_{picture}_{split}.png``, never a name the run itself writes); the
    line that says where, or that matplotlib is missing."""
    if not is_installed("matplotlib"):
        from logreg_exp.tracking.metric_plots import NO_MATPLOTLIB

        return f"pictures skipped: {NO_MATPLOTLIB}"
    from logreg_exp.tracking.metric_plots import confusion_picture, reliability_picture

    classes, paths = evaluation["classes"], []
    for split, r in evaluation["splits"].items():
        pictures = {
            "confusion_matrix": confusion_picture(r["confusion_matrix"], classes, split),
            "reliability": reliability_picture(r["reliability"], len(classes) == 2, split),
        }
        for name, picture in pictures.items():
            path = beside.with_name(
                EVALUATION_PICTURE.format(stem=beside.stem, picture=name, split=split)
            )
            with writing(path):
                paths.append(write_bytes(path, picture.png))
    pattern = EVALUATION_PICTURE.format(stem=beside.stem, picture="*", split="*")
    return f"wrote {len(paths)} pictures: {display_path(beside.with_name(pattern))}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m logreg_exp.evaluate",
        description="Evaluate a finished run's best model (best.pt) on the splits of its data, "
        "rebuilt from the run's .hydra/config.yaml.",
    )
    parser.add_argument("run_dir", type=Path, help="the run's output dir (outputs/DATE/TIME)")
    parser.add_argument(
        "--split",
        nargs="+",
        choices=SPLITS,
        help="the splits to evaluate (default: every split the run has)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"where to write the numbers as JSON (default: RUN_DIR/{EVALUATION_FILE}); the "
        "pictures go beside it, named after it",
    )
    parser.add_argument(
        "--no-pictures", action="store_true", help="write no PNGs (they take a second or so)"
    )
    args = parser.parse_args(argv)

    def body() -> int:
        out = None if args.out is None else writable(args.out, "--out")
        run = open_run(args.run_dir)
        splits = None if args.split is None else list(dict.fromkeys(args.split))
        evaluation = evaluate_run(run, splits)
        print(report(run, evaluation), flush=True)  # the numbers, even if the dir is read-only
        path = out or run.dir / EVALUATION_FILE
        if path.is_dir():  # said of the user's path, not of the temporary file beside it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        with writing(path):
            write_evaluation(path, evaluation)
        if not args.no_pictures:  # after the JSON, so an --out it cannot write is named
            print(f"\n{write_pictures(evaluation, path)}", flush=True)
        print(f"\nwrote {display_path(path)}")
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
