"""The decision boundary of a two-feature model, drawn as a PNG, saved and logged.

Matplotlib is an optional extra (``pip install 'logreg-exp[plots]'``), imported only when a
picture is drawn (the entrypoint's start-up imports it early when one may be); without it a
run logs one line and has no picture. Figures are made and rendered by ``tracking.images``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from logreg_exp.files import write_bytes
from logreg_exp.sweeps.launchers import is_installed
from logreg_exp.tracking.images import Picture, new_figure, render_png
from logreg_exp.tracking.loggers import TensorBoardLogger
from logreg_exp.training.build import Pipeline
from logreg_exp.training.loop import FitResult
from logreg_exp.training.model import LogisticRegression

log = logging.getLogger(__name__)

DECISION_BOUNDARY_FILE = "decision_boundary.png"
GRID_POINTS = 200  # per axis; the probability surface is smooth, so this is plenty
MARGIN = 0.05  # share of the data's span added on each side of the plotted range


@dataclass
class DecisionBoundary:
    """What the picture shows: ``proba`` = p(y=1 | x) on the grid ``grid0``, ``grid1`` (from
    ``grid_over``), and the ``points`` (n, 2) with their 0/1 ``labels``."""

    grid0: np.ndarray
    grid1: np.ndarray
    proba: np.ndarray
    points: np.ndarray
    labels: np.ndarray
    title: str


def grid_over(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A GRID_POINTS x GRID_POINTS grid over the range of ``points`` (n, 2), with MARGIN on
    each side, as ``np.meshgrid`` gives it: the two coordinate arrays."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = MARGIN * (hi - lo)
    return np.meshgrid(
        np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID_POINTS),
        np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID_POINTS),
    )


def draw_decision_boundary(boundary: DecisionBoundary) -> Picture:
    """The probability as a filled contour, the points coloured by label, and the 0.5 line."""
    g0, g1, proba = boundary.grid0, boundary.grid1, boundary.proba
    # a fixed layout: the constraint solver would cost a third of the drawing time
    fig = new_figure(6.4, 4.8)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93)
    ax = fig.add_subplot()
    filled = ax.contourf(g0, g1, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.5)
    fig.colorbar(filled, ax=ax, label="p(y = 1 | x)")
    # dark points on the light surface, so a point on the wrong side stands out
    points, labels = boundary.points, boundary.labels > 0.5
    for label, colour, name in ((False, "#1b3a8c", "y = 0"), (True, "#d95f02", "y = 1")):
        sel = labels == label
        ax.scatter(
            points[sel, 0], points[sel, 1], s=4, c=colour, edgecolors="none", alpha=0.7, label=name
        )
    ax.contour(g0, g1, proba, levels=[0.5], colors="black", linewidths=1.5)
    ax.plot([], [], color="black", label="p = 0.5")  # a legend entry for the contour line
    ax.legend(loc="upper right", fontsize="small", markerscale=3)
    ax.set(xlabel="x[0]", ylabel="x[1]", title=boundary.title)

    return render_png(fig)


def probability_on_grid(
    model: LogisticRegression, grid0: np.ndarray, grid1: np.ndarray, like: torch.Tensor
) -> np.ndarray:
    """The model's p(y=1 | x) at the points of a ``np.meshgrid``, computed in the dtype and on
    the device of ``like``; shaped like the grid."""
    points = torch.as_tensor(np.stack([grid0.ravel(), grid1.ravel()], axis=1), dtype=like.dtype)
    with torch.no_grad():
        proba = model.predict_proba(points.to(like.device))
    return proba.cpu().double().numpy().reshape(grid0.shape)


def log_decision_boundary(
    pipeline: Pipeline,
    result: FitResult,
    run_dir: Path,
    tensorboard: TensorBoardLogger | None,
) -> None:
    """The best model's decision boundary over the validation points, for 2-feature data:
    ``decision_boundary.png`` in the run dir and the same image in TensorBoard (if on). Loads
    the best state into ``pipeline.model``, so call it once training is over. Without matplotlib
    it says so in one log line; it is a picture, not a result."""
    x, y = pipeline.val_set.tensors
    if x.shape[1] != 2:
        log.debug("no decision boundary picture: the data has %d features, not 2", x.shape[1])
        return
    if not is_installed("matplotlib"):
        log.info(
            "decision boundary picture skipped: matplotlib is not installed "
            "(pip install 'logreg-exp[plots]')"
        )
        return
    pipeline.model.load_state_dict(result.best_state)
    points = x.cpu().double().numpy()
    grid0, grid1 = grid_over(points)
    proba = probability_on_grid(pipeline.model, grid0, grid1, like=x)
    title = f"best epoch {result.best_epoch}: val_acc {result.best.val_acc:.4f}"
    boundary = DecisionBoundary(grid0, grid1, proba, points, y.cpu().numpy(), title)
    picture = draw_decision_boundary(boundary)
    write_bytes(run_dir / DECISION_BOUNDARY_FILE, picture.png)
    if tensorboard is not None:
        tensorboard.log_picture("decision_boundary", picture, result.best_epoch)
