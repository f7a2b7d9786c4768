"""The decision boundary of a two-feature model, drawn as a PNG, saved and logged.

Matplotlib is an optional extra (``pip install 'logreg-exp[plots]'``), imported only when a
picture is drawn (the entrypoint's start-up imports it early when one may be); without it a
run logs one line and has no picture. It is used through ``Figure`` and the Agg canvas
directly, not pyplot: no global figure state, no GUI backend (see ``tracking.images``).
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from logreg_exp.files import write_bytes
from logreg_exp.results import Status
from logreg_exp.run_files import DECISION_BOUNDARY_FILE
from logreg_exp.sweeps.launchers import is_installed
from logreg_exp.tracking.images import Picture, picture_of
from logreg_exp.tracking.loggers import TensorBoardLogger
from logreg_exp.training.build import Pipeline
from logreg_exp.training.loop import FitResult

log = logging.getLogger(__name__)

GRID_POINTS = 200  # per axis; the probability surface is smooth, so this is plenty
MARGIN = 0.05  # share of the data's span added on each side of the plotted range


LEVELS = 11  # band edges of the filled probability: 0, 0.1, ..., 1
POINT_COLOURS = ((False, "#1b3a8c", "y = 0"), (True, "#d95f02", "y = 1"))


def grid_over(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A GRID_POINTS x GRID_POINTS grid over the range of ``points`` (n, 2), with MARGIN on
    each side, as ``np.meshgrid`` gives it: the two coordinate arrays."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = MARGIN * (hi - lo)
    return np.meshgrid(
        np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID_POINTS),
        np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID_POINTS),
    )


class BoundaryPainter:
    """Decision-boundary pictures of models over the same points: the probability in bands of
    0.1, the points coloured by label, the p = 0.5 line, a colour bar and a title.

    What does not depend on the model (axes, colour bar, the points and their legend) is
    drawn once, when the painter is made. Each ``paint`` fills the axes' pixels with the
    model's probability band (numpy, at each pixel's centre), lays the points over them and
    has Agg draw only the line and the title: the pictures of a sweep's jobs, which share
    their validation points, then cost a few milliseconds each. The picture is opaque RGB.
    """

    def __init__(self, points: np.ndarray, labels: np.ndarray) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.grid0, self.grid1 = grid_over(points)
        # the background: axes, ticks, labels and the colour bar of the bands
        figure = Figure(figsize=(6.4, 4.8), dpi=100)
        # a fixed layout: the constraint solver would cost a third of the drawing time
        figure.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93)
        self.canvas = FigureCanvasAgg(figure)
        self.ax = ax = figure.add_subplot()
        ramp = np.broadcast_to(np.linspace(0, 1, GRID_POINTS), self.grid0.shape)
        bands = ax.contourf(
            self.grid0, self.grid1, ramp, levels=np.linspace(0, 1, LEVELS), cmap="RdBu_r",
            alpha=0.5,
        )  # fmt: skip
        figure.colorbar(bands, ax=ax, label="p(y = 1 | x)")
        colours = np.asarray(bands.get_facecolor(), dtype=np.float32)  # a band each, alpha 0.5
        face = np.asarray(ax.get_facecolor()[:3], dtype=np.float32)
        self.band_rgb = 255 * (colours[:, :3] * colours[:, 3:] + face * (1 - colours[:, 3:]))
        bands.remove()
        ax.set(xlabel="x[0]", ylabel="x[1]")
        self.title = ax.set_title(" ")
        self.title.set_visible(False)
        self.canvas.draw()
        self.background = np.asarray(self.canvas.buffer_rgba())[..., :3].astype(np.float32)
        self.title.set_visible(True)
        self.title.set_y(1.0)  # where the axes put a title (a hidden one is moved away)
        self.line: Any = None

        self.points, self.legend = self.layers(
            points, labels, ax.get_position(), ax.get_xlim(), ax.get_ylim()
        )
        # the axes' pixels, top row first, and the data coordinates of their centres
        height = self.background.shape[0]
        x0, y0, x1, y1 = (round(v) for v in ax.bbox.extents)
        self.rows, self.columns = slice(height - y1, height - y0), slice(x0, x1)
        to_data = ax.transData.inverted()
        xs = to_data.transform(np.c_[np.arange(x0, x1) + 0.5, np.full(x1 - x0, y0)])[:, 0]
        ys = to_data.transform(np.c_[np.full(y1 - y0, x0), np.arange(y1, y0, -1) - 0.5])[:, 1]
        self.pixel_points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        self.pixel_shape = (y1 - y0, x1 - x0)
        # Each pixel as the picture has it (rounded, RGBA in one uint32), made once: the
        # background, each band's colour, and the points over each pixel they cover: over
        # the background there or, in the axes, over each band's colour (the model decides
        # which). A picture is then a few gathers; only the line, the legend over it and
        # the title are drawn anew.
        self.background_rgba = rgba_pixels(self.background)
        self.band_rgba = rgba_pixels(self.band_rgb)
        width = self.background.shape[1]
        under = self.points.at
        row, column = under // width, under % width
        inside = (
            (row >= self.rows.start) & (row < self.rows.stop)
            & (column >= self.columns.start) & (column < self.columns.stop)
        )  # fmt: skip
        self.under_axes = np.nonzero(inside)[0]  # the points' pixels in the axes ...
        self.under_axes_at = (row[inside] - self.rows.start) * self.pixel_shape[1] + (
            column[inside] - self.columns.start
        )  # ... as indices into the axes' pixels
        points_over = self.points.over(self.background.reshape(-1, 3)[under])
        self.points_rgba = rgba_pixels(points_over)  # (n,) over the background
        rgb, alpha = self.points.rgb[self.under_axes], self.points.alpha[self.under_axes]
        self.points_over_bands = rgba_pixels(  # (n in the axes, bands)
            rgb[:, None, :] + self.band_rgb[None, :, :] * (1 - alpha[:, None, :])
        )

    def boundary(self, on_grid: np.ndarray) -> Any:
        """The p = 0.5 line of the probabilities ``on_grid`` as ``Axes.contour`` computes it
        (with contourpy, as its ``ContourSet`` calls it with matplotlib's settings), without
        making a new ``ContourSet`` (most of a picture's time)."""
        import contourpy
        import matplotlib as mpl
        from matplotlib.path import Path as MplPath

        algorithm = mpl.rcParams["contour.algorithm"]
        generator = contourpy.contour_generator(
            self.grid0, self.grid1, np.ma.masked_invalid(on_grid, copy=False), name=algorithm,
            corner_mask=False if algorithm == "mpl2005" else mpl.rcParams["contour.corner_mask"],
            line_type=contourpy.LineType.SeparateCode, fill_type=contourpy.FillType.OuterCode,
            chunk_size=0,
        )  # fmt: skip
        vertices, codes = generator.create_contour(0.5)
        if not vertices:
            return MplPath(np.empty((0, 2)))
        return MplPath(np.concatenate(vertices), np.concatenate(codes))

    @staticmethod
    def layers(
        points: np.ndarray, labels: np.ndarray, position: Any, xlim: Any, ylim: Any
    ) -> tuple[Layer, Layer]:
        """The points, and their legend, each drawn once over a transparent figure of the
        same layout."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 4.8), dpi=100)
        figure.patch.set_alpha(0.0)
        canvas = FigureCanvasAgg(figure)
        ax = figure.add_axes(position)
        ax.set_axis_off()
        # dark points on the light surface, so a point on the wrong side stands out
        for label, colour, name in POINT_COLOURS:
            chosen = (labels > 0.5) == label
            ax.scatter(
                points[chosen, 0], points[chosen, 1], s=4, c=colour, edgecolors="none",
                alpha=0.7, label=name,
            )  # fmt: skip
        ax.plot([], [], color="black", label="p = 0.5")  # a legend entry for the line
        legend = ax.legend(loc="upper right", fontsize="small", markerscale=3)
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        legend.set_visible(False)
        canvas.draw()
        points_layer = Layer.of(np.asarray(canvas.buffer_rgba()))
        for child in ax.get_children():
            child.set_visible(child is legend)
        canvas.draw()
        return points_layer, Layer.of(np.asarray(canvas.buffer_rgba()))

    def paint(self, proba_at: Callable[[np.ndarray], np.ndarray], title: str) -> Picture:
        """The picture of the model whose p(y = 1 | x) at points (n, 2) is ``proba_at``:
        bands, points, line, legend, title, each over the one before."""
        return encode_png(self.draw(proba_at, title))

    def draw(self, proba_at: Callable[[np.ndarray], np.ndarray], title: str) -> np.ndarray:
        """The pixels (H, W, 4: RGB and an opaque alpha) of ``paint``'s picture, not yet
        encoded."""
        proba = proba_at(self.pixel_points)
        band = np.clip((proba * (LEVELS - 1)).astype(np.int64), 0, LEVELS - 2)
        renderer = self.canvas.get_renderer()
        buffer = np.asarray(renderer.buffer_rgba())
        pixels = buffer.view(np.uint32)[..., 0]
        pixels[...] = self.background_rgba
        pixels[self.rows, self.columns] = self.band_rgba[band].reshape(self.pixel_shape)
        points = self.points_rgba.copy()
        points[self.under_axes] = np.take_along_axis(
            self.points_over_bands, band[self.under_axes_at, None], axis=1
        )[:, 0]
        pixels.reshape(-1)[self.points.at] = points
        on_grid = proba_at(np.c_[self.grid0.ravel(), self.grid1.ravel()])
        on_grid = on_grid.reshape(self.grid0.shape)
        if self.line is None:  # the line's artist, styled as contour styles it
            self.line = self.ax.contour(
                self.grid0, self.grid1, on_grid, levels=[0.5], colors="black", linewidths=1.5
            )
        else:  # the same artist along this model's line
            self.line.set_paths([self.boundary(on_grid)])
        self.line.draw(renderer)
        rgb = buffer[..., :3].reshape(-1, 3)
        with_legend = rgb[self.legend.at].astype(np.float32)
        rgb[self.legend.at] = np.round(self.legend.over(with_legend))
        self.title.set_text(title)
        self.title.draw(renderer)
        return buffer.copy()


@dataclass
class Layer:
    """What a transparent drawing covers: its pixels (flat indices), their opacity, and their
    colour times it (0-255)."""

    at: np.ndarray
    alpha: np.ndarray
    rgb: np.ndarray

    @classmethod
    def of(cls, rgba: np.ndarray) -> Layer:
        flat = rgba.reshape(-1, 4).astype(np.float32) / 255
        at = np.nonzero(flat[:, 3] > 0)[0]
        alpha = flat[at, 3:]
        return cls(at, alpha, 255 * flat[at, :3] * alpha)

    def over(self, below: np.ndarray) -> np.ndarray:
        """This layer's pixels over ``below`` (their pixels, 0-255)."""
        return self.rgb + below * (1 - self.alpha)


def encode_png(pixels: np.ndarray) -> Picture:
    """An (H, W, 3 or 4) image as an RGB PNG (an alpha channel is left out), with Pillow
    (which matplotlib brings). Deflated with zlib's run-length strategy: a picture is mostly
    runs of one colour, so the file is about as small as with the default strategy (a few
    per cent larger) and is made in two thirds of the time (a sweep makes hundreds)."""
    from PIL import Image

    out = io.BytesIO()
    rgb = np.ascontiguousarray(pixels[..., :3])
    Image.fromarray(rgb, mode="RGB").save(out, format="png", compress_type=zlib.Z_RLE)
    return picture_of(out.getvalue())


def rgba_pixels(rgb: np.ndarray) -> np.ndarray:
    """Colours (..., 3) of 0-255 as floats, rounded, as opaque RGBA pixels of one uint32."""
    rgba = np.empty((*rgb.shape[:-1], 4), np.uint8)
    rgba[..., :3] = np.round(rgb)
    rgba[..., 3] = 255
    return rgba.view(np.uint32)[..., 0]


def log_decision_boundary(
    pipeline: Pipeline,
    result: FitResult,
    run_dir: Path,
    tensorboard: TensorBoardLogger | None,
    picture: Picture | None = None,
) -> None:
    """The best model's decision boundary over the validation points, for 2-feature data:
    ``decision_boundary.png`` in the run dir and the same image in TensorBoard (if on). Loads
    the best state into ``pipeline.model``, so call it once training is over. Without matplotlib
    it says so in one log line; it is a picture, not a result. ``picture``: the picture,
    where it was painted already (``PicturesAhead``)."""
    if picture is None:
        painter = painter_for(pipeline)
        if painter is None:
            return
        picture = painter.paint(*boundary_of(pipeline, result))
    write_bytes(run_dir / DECISION_BOUNDARY_FILE, picture.png)
    if tensorboard is not None:
        tensorboard.log_picture("decision_boundary", picture, result.best_epoch)


def boundary_of(
    pipeline: Pipeline, result: FitResult
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """What ``BoundaryPainter.paint`` draws for ``result``'s best model: its probability at
    given points (the model loaded into ``pipeline.model``), and the picture's title."""
    x = pipeline.val_set.tensors[0]
    pipeline.model.load_state_dict(result.best_state)

    def proba_at(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            grid = torch.as_tensor(points, dtype=x.dtype, device=x.device)
            return pipeline.model.predict_proba(grid).cpu().double().numpy()

    return proba_at, f"best epoch {result.best_epoch}: val_acc {result.best.val_acc:.4f}"


class PicturesAhead:
    """The pictures of a group's completed jobs, in job order: each painted here (the painter
    is not thread-safe) a few jobs before it is asked for, and encoded as PNG meanwhile by a
    pool of threads (zlib runs without the GIL), while the jobs before it write their files.
    The same pictures, byte for byte, as ``painter.paint`` gives."""

    def __init__(
        self,
        painter: BoundaryPainter,
        pipeline: Pipeline,
        results: Sequence[FitResult],
        jobs: Sequence[int] | None = None,
    ) -> None:
        """``jobs``: the jobs (indices into ``results``) whose pictures will be asked for, in
        that order; default all."""
        from logreg_exp.sweeps.launchers import usable_cores

        self.painter, self.pipeline, self.results = painter, pipeline, results
        # the cores this thread leaves (at least one): an encoder more would take the core
        # that paints and writes the files, the longer part of a job
        threads = max(1, min(4, usable_cores() - 1))
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="png")
        self.ahead = 2 * threads + 2
        jobs = range(len(results)) if jobs is None else jobs
        self.to_paint = iter(k for k in jobs if results[k].status is Status.COMPLETED)
        self.encoding: dict[int, Future[Picture]] = {}

    def picture(self, k: int) -> Picture:
        """Job ``k``'s picture (a completed job's), once encoded."""
        while k not in self.encoding or len(self.encoding) < self.ahead:
            j = next(self.to_paint, None)
            if j is None:
                break
            pixels = self.painter.draw(*boundary_of(self.pipeline, self.results[j]))
            self.encoding[j] = self.pool.submit(encode_png, pixels)
        return self.encoding.pop(k).result()

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def painter_for(pipeline: Pipeline) -> BoundaryPainter | None:
    """A painter over ``pipeline``'s validation points; None, said in the log, where there is
    no picture: data of more than 2 features or 2 classes, or no matplotlib."""
    x, y = pipeline.val_set.tensors
    if pipeline.model.n_classes != 2:
        log.debug("no decision boundary picture: %d classes, not 2", pipeline.model.n_classes)
        return None
    if x.shape[1] != 2:
        log.debug("no decision boundary picture: the data has %d features, not 2", x.shape[1])
        return None
    if not is_installed("matplotlib"):
        log.info(
            "decision boundary picture skipped: matplotlib is not installed "
            "(pip install 'logreg-exp[plots]')"
        )
        return None
    return BoundaryPainter(x.cpu().double().numpy(), y.cpu().double().numpy())
