"""The decision boundary of a two-feature model, drawn as a PNG, here or in a helper process.

Matplotlib is an optional extra (``pip install 'logreg-exp[plots]'``) and is imported only
when a picture is drawn. It is used through ``Figure`` and the Agg canvas directly, not
pyplot: no global figure state, no GUI backend.

This module imports neither torch nor matplotlib at the top: the caller evaluates its model on
``grid_over(points)`` and hands over numpy arrays, so the drawing can happen in another
process. A single run does it in a ``DrawingProcess`` started as the run starts, where
importing matplotlib (0.3 s) overlaps the run's own start-up instead of adding to its wall
time (``python -m logreg_exp.bench`` measures the whole process).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import multiprocessing
import signal
import struct
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from logreg_exp.startup import long_lived_objects

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


def matplotlib_installed() -> bool:
    """Whether the ``plots`` extra is there, without importing it."""
    return importlib.util.find_spec("matplotlib") is not None


def import_matplotlib() -> None:
    """Import what drawing uses (0.3 s), for a caller that pauses the collector around it
    (``startup.long_lived_objects``) where no data are on the stack: a reference cycle made
    while importing holds the frames above it, and a frozen cycle is never freed."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


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


def prepare_to_draw() -> None:
    """The drawing process's first work: import matplotlib and draw a small picture once,
    which loads the fonts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the run, which stops us
    with long_lived_objects():
        import_matplotlib()
    g0, g1 = grid_over(np.array([[0.0, 0.0], [1.0, 1.0]]))
    draw_decision_boundary(DecisionBoundary(g0, g1, g0, np.zeros((1, 2)), np.zeros(1), "-"))


class DrawingProcess:
    """Draws pictures in a process of its own, started before this one needs it.

    ``start()`` spawns a fresh interpreter (no fork: safe whatever threads this process has
    by then) that imports matplotlib and draws once, while this process goes on. ``draw()``
    then only waits for the drawing itself. Not started, or if the process cannot start or
    dies, ``draw()`` draws here. Ctrl-C is blocked while the process starts and ignored in
    it, so that a terminal's Ctrl-C, which reaches the whole process group, stops the run
    alone, which then shuts the process down.
    """

    def __init__(self) -> None:
        self.executor: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self.executor is not None

    def start(self) -> None:
        if self.executor is not None:
            return
        blocked = hasattr(signal, "pthread_sigmask")
        if blocked:  # the new process inherits the mask: no Ctrl-C before it ignores it
            previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self.executor.submit(prepare_to_draw)  # starts the process
        except OSError as err:
            log.debug("no drawing process (%s): pictures are drawn in this one", err)
            self.executor = None
        finally:
            if blocked:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def draw(self, boundary: DecisionBoundary) -> Picture:
        """The picture, from the drawing process if it runs, else drawn here."""
        if self.executor is not None:
            try:
                return self.executor.submit(draw_decision_boundary, boundary).result()
            except BrokenProcessPool as err:
                log.debug("the drawing process stopped (%s): drawing in this one", err)
                self.close()
        return draw_decision_boundary(boundary)

    def close(self) -> None:
        """Let the process exit (it does so while this one finishes its own work)."""
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
