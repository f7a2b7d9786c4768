"""The decision boundary of a two-feature model, drawn as a PNG.

Matplotlib is an optional extra (``pip install 'logreg-exp[plots]'``), imported only when a
picture is drawn (the entrypoint's start-up imports it early when one may be). It is used
through ``Figure`` and the Agg canvas directly, not pyplot: no global figure state, no GUI
backend. The caller evaluates its model on ``grid_over(points)`` and hands over numpy
arrays: this module knows nothing of torch.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

GRID_POINTS = 200  # per axis; the probability surface is smooth, so this is plenty
MARGIN = 0.05  # share of the data's span added on each side of the plotted range


@dataclass
class Picture:
    """An RGBA PNG and its size in pixels."""

    png: bytes
    width: int
    height: int


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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    g0, g1, proba = boundary.grid0, boundary.grid1, boundary.proba
    # a fixed layout: the constraint solver would cost a third of the drawing time
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93)
    FigureCanvasAgg(fig)
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

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    png = buffer.getvalue()
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk, whatever the rcParams
    return Picture(png, width, height)
