"""The decision boundary of a two-feature model, drawn as a PNG.

Matplotlib is an optional extra (``pip install 'logreg-exp[plots]'``) and is imported only
when a picture is drawn, so a run's start-up does not pay for it. It is used through
``Figure`` and the Agg canvas directly, not pyplot: no global figure state, no GUI backend.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass

import numpy as np
import torch

from logreg_exp.model import LogisticRegression

log = logging.getLogger(__name__)

GRID_POINTS = 200  # per axis; the probability surface is smooth, so this is plenty
MARGIN = 0.05  # share of the data's span added on each side of the plotted range


@dataclass
class Picture:
    """An RGBA PNG and its size in pixels."""

    png: bytes
    width: int
    height: int


def probability_grid(
    model: LogisticRegression, x: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``p(y=1 | x)`` on a GRID_POINTS x GRID_POINTS grid over the range of ``x`` (n, 2),
    with MARGIN on each side: the grid's two coordinate arrays and the probabilities."""
    lo = x.min(dim=0).values.cpu().double().numpy()
    hi = x.max(dim=0).values.cpu().double().numpy()
    pad = MARGIN * (hi - lo)
    g0, g1 = np.meshgrid(
        np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID_POINTS),
        np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID_POINTS),
    )
    points = torch.as_tensor(np.stack([g0.ravel(), g1.ravel()], axis=1), dtype=x.dtype)
    with torch.no_grad():
        proba = model.predict_proba(points.to(x.device)).cpu().double().numpy()
    return g0, g1, proba.reshape(g0.shape)


def decision_boundary(
    model: LogisticRegression, x: torch.Tensor, y: torch.Tensor, title: str
) -> Picture | None:
    """The model's probability as a filled contour over the data's range, the points of
    ``x`` coloured by their label ``y``, and the 0.5 line.

    None, without drawing, when ``x`` does not have exactly 2 features or matplotlib is not
    installed (the latter said in one log line): it is a picture, not a result.
    """
    if x.ndim != 2 or x.shape[1] != 2:
        log.debug("no decision boundary picture: the data has %d features, not 2", x.shape[-1])
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log.info(
            "decision boundary picture skipped: matplotlib is not installed "
            "(pip install 'logreg-exp[plots]')"
        )
        return None

    g0, g1, proba = probability_grid(model, x)
    points = x.cpu().double().numpy()
    labels = y.cpu().numpy() > 0.5

    # a fixed layout: the constraint solver would cost a third of the drawing time
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    filled = ax.contourf(g0, g1, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.5)
    fig.colorbar(filled, ax=ax, label="p(y = 1 | x)")
    # dark points on the light surface, so a point on the wrong side stands out
    for label, colour, name in ((False, "#1b3a8c", "y = 0"), (True, "#d95f02", "y = 1")):
        sel = labels == label
        ax.scatter(
            points[sel, 0], points[sel, 1], s=4, c=colour, edgecolors="none", alpha=0.7, label=name
        )
    ax.contour(g0, g1, proba, levels=[0.5], colors="black", linewidths=1.5)
    ax.plot([], [], color="black", label="p = 0.5")  # a legend entry for the contour line
    ax.legend(loc="upper right", fontsize="small", markerscale=3)
    ax.set(xlabel="x[0]", ylabel="x[1]", title=title)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    png = buffer.getvalue()
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk, whatever the rcParams
    return Picture(png, width, height)
