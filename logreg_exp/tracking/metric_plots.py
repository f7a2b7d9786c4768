"""The pictures of a run's metrics on its test split: the confusion matrix and the
reliability diagram, as TensorBoard images (the Images tab, ``confusion_matrix`` and
``reliability``). Drawn where a run asks for the metrics that decide (``val_metrics``, or a
``monitor`` that names one), and where matplotlib is installed (the ``plots`` extra)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from logreg_exp.sweeps.launchers import is_installed
from logreg_exp.tracking.images import Picture, new_figure, render_png

log = logging.getLogger(__name__)
NO_MATPLOTLIB = "matplotlib is not installed (pip install 'logreg-exp[plots]')"


def confusion_picture(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], split: str = "test"
) -> Picture:
    """The counts as a heat map, rows the true class and columns the predicted one, each
    cell with its count."""
    k = len(classes)
    size = 2.5 + 0.45 * k
    fig = new_figure(size + 1, size, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, label="samples")
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted class", ylabel="true class")
    ax.set_xticklabels(classes, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticklabels(classes)
    top = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if count > top / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=9)
    ax.set_title(f"confusion matrix, {split} split")
    return render_png(fig)


def reliability_picture(
    bins: Mapping[str, list[Any]], binary: bool, split: str = "test"
) -> Picture:
    """Observed frequency against mean predicted probability, bin by bin, beside the diagonal
    of perfect calibration; a bar of each bin's samples below."""
    fig = new_figure(5.2, 5.6, layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    top.plot(bins["predicted"], bins["observed"], marker="o", label="model")
    what = "fraction of class 1" if binary else "fraction right"
    top.set(ylabel=what, xlim=(0, 1), ylim=(0, 1), title=f"reliability, {split} split")
    top.legend(loc="upper left")
    bottom.bar(bins["predicted"], bins["count"], width=0.08, color="tab:blue")
    label = "predicted p(class 1)" if binary else "predicted class's probability"
    bottom.set(xlabel=label, ylabel="samples")
    return render_png(fig)


def metric_pictures(test: Mapping[str, Any], classes: Sequence[str]) -> dict[str, Picture]:
    """The pictures of ``test`` (the test split's metrics), by TensorBoard tag; none without
    a test split or matplotlib (said in the log)."""
    if test.get("confusion_matrix") is None:
        return {}
    if not is_installed("matplotlib"):
        log.info(f"metric pictures skipped: {NO_MATPLOTLIB}")
        return {}
    return {
        "confusion_matrix": confusion_picture(test["confusion_matrix"], classes),
        "reliability": reliability_picture(test["reliability"], len(classes) == 2),
    }
