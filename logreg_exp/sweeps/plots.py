"""The sweep as a picture: the monitored metric's best value against what the sweep varied,
as ``sweep.png`` in the sweep dir and as the image ``sweep`` of a run at the sweep dir's top
level in TensorBoard (beside the HParams tab of its jobs).

Drawn from the same files as the summary (``summary.collect_jobs``), so ``python -m
logreg_exp.summary SWEEP_DIR`` redraws it for any earlier sweep, whatever launcher ran it.
What it shows depends on the keys whose values differ between the jobs (``swept.py``):

- one swept number: the best value of each job against it (the final value lighter), on a
  log axis when its values span more than a decade;
- two swept numbers: a heat map of the best value over their grid, or, where the jobs do
  not fill a grid (a search's trials), one dot per job coloured by its best value;
- more keys (choices such as ``updater=manual,optim``, or numbers beyond the two with the
  most values): small multiples, one panel per value, each as above;
- one job, or no number swept: no picture.

A sweep that repeats its settings over seeds or folds (``aggregate.REPEAT_KEYS``) is drawn
per setting: the mean over its completed runs with its 95% interval (error bars on a curve,
each run a faint dot; the mean and its half width in a heat map's cell).

Jobs that did not complete are marked (at the worse edge of a curve, in their cell of a heat
map), the best job ringed or outlined and labelled. Needs matplotlib (the ``plots`` extra);
without it there is no picture and one log line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logreg_exp.files import write_bytes
from logreg_exp.results import Monitor, Status
from logreg_exp.run_files import EVENTS_PREFIX, SWEEP_PNG
from logreg_exp.sweeps.aggregate import REPEAT_KEYS, Setting, aggregate, repeats_swept
from logreg_exp.sweeps.launchers import is_installed
from logreg_exp.sweeps.summary import Job, job_order, sort_jobs
from logreg_exp.sweeps.swept import number, override_values, swept_keys
from logreg_exp.tracking.images import (
    Picture,
    new_figure,
    remove_image_events,
    render_png,
    write_image_events,
)

SWEEP_IMAGE_TAG = "sweep"  # the image's tag in TensorBoard
MAX_PANELS = 16  # more small multiples than this are too small to read
MAX_TICK_LABELS = 12  # an axis with at most this many values labels each as it was typed
MAX_ANNOTATED_CELLS = 100  # a heat map with at most this many cells writes each value in it
UNSET = "(unset)"  # a panel key that some jobs do not set

# How a job that has no value to plot is marked: matplotlib marker, colour.
MARKS = {
    "diverged": ("x", "#d62728"),
    "failed": ("s", "#444444"),
    "interrupted": ("D", "#ff7f0e"),
    "pruned": ("v", "#9467bd"),
    "not started": ("o", "#999999"),
}
BEST_COLOUR = "#d62728"
LINE_COLOUR = "#1f77b4"


@dataclass
class Axis:
    """A swept number: its distinct values, ascending, each with its text as typed."""

    key: str
    labels: dict[float, str]

    @property
    def values(self) -> list[float]:
        return sorted(self.labels)

    @property
    def log(self) -> bool:
        """Log scale: positive values spanning more than a decade."""
        low, high = min(self.labels), max(self.labels)
        return low > 0 and high / low > 10


@dataclass
class Point:
    """One job on the picture: where (``x``, and ``y`` for two axes), its best and final
    values if it completed, else ``mark``, how it ended (a key of MARKS). A setting repeated
    over seeds or folds is one point: ``best`` its runs' mean, ``low`` and ``high`` its 95%
    interval, ``runs`` each completed run's value; ``job`` its first job."""

    job: Job
    x: float
    y: float | None
    best: float | None
    final: float | None
    mark: str | None
    setting: Setting | None = None
    low: float | None = None
    high: float | None = None
    runs: list[float] = field(default_factory=list)


@dataclass
class Panel:
    title: str  # "updater=manual" (empty for a single panel)
    points: list[Point] = field(default_factory=list)


@dataclass
class Layout:
    """What the picture shows: 1 or 2 axes, one panel per value of the other swept keys."""

    monitor: Monitor
    keys: list[str]  # every swept key, in the order typed
    axes: list[Axis]
    panel_keys: list[str]
    panels: list[Panel]
    best: Point | None
    grid: bool  # two axes: the jobs fill a grid (heat map), else one dot per job
    repeats: list[str] = field(default_factory=list)  # the REPEAT_KEYS the points average over

    @property
    def points(self) -> list[Point]:
        return [point for panel in self.panels for point in panel.points]

    def describe(self) -> str:
        """What is drawn, in words, for the log."""
        metric = f"best {self.monitor.value}"
        if self.repeats:
            metric = f"mean {metric} with its 95% interval over {' and '.join(self.repeats)}"
        if len(self.axes) == 1:
            axis = self.axes[0]
            text = f"{metric} against {axis.key}" + (" (log axis)" if axis.log else "")
        else:
            over = " x ".join(axis.key for axis in self.axes)
            text = f"heat map of {metric} over {over}" if self.grid else f"{metric} over {over}"
        if len(self.panels) > 1:
            text += f", {len(self.panels)} panels by {' and '.join(self.panel_keys)}"
        if self.repeats:
            jobs = sum(len(p.setting.jobs) for p in self.points if p.setting is not None)
            return f"{text}, {len(self.points)} settings of {jobs} jobs"
        return f"{text}, {len(self.points)} jobs"


def mark_of(job: Job) -> str:
    """How a job without a value to plot ended, as MARKS names it."""
    if job.status == Status.DIVERGED:
        return "diverged"
    if job.status == Status.INTERRUPTED:
        return "interrupted"
    if job.status == Status.PRUNED:
        return "pruned"
    if job.dir is None:
        return "not started"
    return "failed"  # failed, killed (no readable metrics.json), or no value of the metric


def layout(jobs: Sequence[Job], monitor: Monitor) -> Layout | str:
    """What the picture of ``jobs`` shows, or why there is none (a phrase for the log).

    The axes are the two swept numbers with the most values (ties: the first typed), in the
    order they were typed; every other swept key makes panels. A job whose overrides could
    not be read has no place on it (it keeps its row in the summary)."""
    placed = sorted((job for job in jobs if job.overrides), key=job_order)
    if len(placed) < 2:
        return "one job" if len(jobs) == 1 else "fewer than two jobs with overrides"
    repeats = repeats_swept(placed)
    ranked = aggregate(placed, monitor) if repeats else []
    settings = sorted(ranked, key=lambda s: job_order(s.jobs[0]))  # panels in job order
    if repeats:  # a point per setting
        values = [override_values(s.overrides) for s in settings]
        keys = [k for k in swept_keys(s.overrides for s in settings) if k not in REPEAT_KEYS]
        if not any(s.stats for s in settings):
            return f"no job has a best {monitor.value}"
        if not keys:
            return f"only {' and '.join(repeats)} varied (its spread is in the summary)"
    else:
        values = [override_values(job.overrides) for job in placed]
        keys = swept_keys(job.overrides for job in placed)
    if not keys:
        return "nothing was swept"
    numeric = [k for k in keys if all(number(v.get(k, "")) is not None for v in values)]
    if not numeric:
        return f"no number was swept (swept: {', '.join(keys)})"
    counts = {k: len({number(v[k]) for v in values}) for k in numeric}
    chosen = sorted(numeric, key=lambda k: -counts[k])[:2]  # stable: ties keep typed order
    axes = [axis_of(k, values) for k in numeric if k in chosen]
    panel_keys = [k for k in keys if k not in chosen]

    panels: dict[str, Panel] = {}
    points_of = (
        [setting_point(s, v, axes, monitor) for s, v in zip(settings, values, strict=True)]
        if repeats
        else [point_of(j, v, axes, monitor) for j, v in zip(placed, values, strict=True)]
    )
    for point, job_values in zip(points_of, values, strict=True):
        title = ", ".join(f"{k}={job_values.get(k, UNSET)}" for k in panel_keys)
        panels.setdefault(title, Panel(title)).points.append(point)
    if len(panels) > MAX_PANELS:
        return (
            f"{len(panels)} panels (one per value of {' and '.join(panel_keys)}) are too many "
            f"to read; at most {MAX_PANELS}"
        )
    points = [p for panel in panels.values() for p in panel.points]
    if all(p.best is None for p in points):
        return f"no job has a best {monitor.value}"
    if repeats:  # the best mean: aggregate ranks the settings
        best = next((p for p in points if p.setting is ranked[0] and p.best is not None), None)
    else:
        best_job = sort_jobs(placed, monitor)[0]
        best = next((p for p in points if p.job is best_job and p.best is not None), None)
    grid = len(axes) == 2 and all(fills_grid(panel.points) for panel in panels.values())
    return Layout(monitor, keys, axes, panel_keys, list(panels.values()), best, grid, repeats)


def axis_of(key: str, values: Sequence[dict[str, str]]) -> Axis:
    labels: dict[float, str] = {}
    for job_values in values:
        value = number(job_values[key])
        assert value is not None
        labels.setdefault(value, job_values[key])
    return Axis(key, labels)


def point_of(job: Job, values: dict[str, str], axes: Sequence[Axis], monitor: Monitor) -> Point:
    x = number(values[axes[0].key])
    y = number(values[axes[1].key]) if len(axes) == 2 else None
    assert x is not None
    best = job.value(f"best_{monitor.value}") if job.result.completed else None
    final = job.value(f"final_{monitor.value}") if best is not None else None
    return Point(job, x, y, best, final, None if best is not None else mark_of(job))


def setting_point(
    setting: Setting, values: dict[str, str], axes: Sequence[Axis], monitor: Monitor
) -> Point:
    """A setting as one point: the mean of its completed runs' ``best_<monitor>`` and its
    interval, or, without one, how its first job ended."""
    x = number(values[axes[0].key])
    y = number(values[axes[1].key]) if len(axes) == 2 else None
    assert x is not None
    key = f"best_{monitor.value}"
    stats = setting.stats.get(key)
    first = setting.jobs[0]
    if stats is None:
        return Point(first, x, y, None, None, mark_of(first), setting)
    runs = [
        v for v in (job.value(key) for job in setting.jobs if job.result.completed) if v is not None
    ]
    return Point(first, x, y, stats.mean, None, None, setting, stats.low, stats.high, runs)


def fills_grid(points: Sequence[Point]) -> bool:
    """Whether the points of a panel make a heat map: one job per cell, and at least half of
    the cells of their values' grid taken (a search's scattered trials do not)."""
    cells = {(p.x, p.y) for p in points}
    nx, ny = len({p.x for p in points}), len({p.y for p in points})
    return len(cells) == len(points) and 2 * len(cells) >= nx * ny


# Drawing


def draw(plan: Layout) -> Picture:
    """The picture of ``plan`` as a PNG."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize

    n = len(plan.panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    two_d = len(plan.axes) == 2
    panel_w, panel_h = (6.4, 4.6) if n == 1 else (4.4, 3.5)
    fig = new_figure(panel_w * cols + (0.8 if two_d else 0), panel_h * rows + 0.5, "constrained")
    axs = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for ax in axs.flat[n:]:
        ax.set_visible(False)
    shown = list(axs.flat[:n])

    m = plan.monitor
    if two_d:
        bests = [p.best for p in plan.points if p.best is not None]
        low, high = min(bests), max(bests)
        if low > 0 and high / low > 10:
            norm: Any = LogNorm(low, high)
        else:
            pad = 0 if high > low else max(abs(low) * 0.01, 1e-6)
            norm = Normalize(low - pad, high + pad)
        cmap = colormaps["viridis_r" if m.lower_is_better else "viridis"].with_extremes(
            bad="#eeeeee"
        )
        for ax, panel in zip(shown, plan.panels, strict=True):
            if plan.grid:
                image = draw_heat_map(ax, panel, plan, norm, cmap, np)
            else:
                image = draw_scatter(ax, panel, plan, norm, cmap)
        mean = "mean " if plan.repeats else ""
        fig.colorbar(image, ax=shown, label=f"{mean}best {m.value} ({m.direction} is better)")
    else:
        for ax, panel in zip(shown, plan.panels, strict=True):
            draw_curve(ax, panel, plan)
        scale_to_best_values(shown[0], [v for p in plan.points for v in extent(p)])

    for index, (ax, panel) in enumerate(zip(shown, plan.panels, strict=True)):
        if panel.title:
            ax.set_title(panel.title, fontsize="medium")
        if index + cols >= n:  # no panel below it
            ax.set_xlabel(plan.axes[0].key)
        if index % cols == 0:
            ax.set_ylabel(plan.axes[1].key if two_d else f"{m.value} ({m.direction} is better)")
    legend(fig, shown)
    fig.suptitle(title_of(plan), fontsize="medium")
    return render_png(fig)


def scale_to_best_values(ax: Any, bests: Sequence[float]) -> None:
    """The value axis (shared by every panel) spans the best values, with room for the best
    job's label: a final value far worse (an lr so large that training ended far from its
    best epoch) runs off the worse edge rather than flattening the curve that picks the lr.
    A log scale where the best values span more than a decade."""
    low, high = min(bests), max(bests)
    if low > 0 and high / low > 10:
        ax.set_yscale("log")
        ax.set_ylim(low / (high / low) ** 0.15, high * (high / low) ** 0.15)
        return
    pad = 0.15 * (high - low) if high > low else max(0.05 * abs(high), 0.01)
    ax.set_ylim(low - pad, high + pad)


def extent(point: Point) -> list[float]:
    """The values ``point`` draws on the value axis: its best (or mean), its interval, its
    runs."""
    if point.best is None:
        return []
    bounds = [v for v in (point.low, point.high) if v is not None]
    return [point.best, *bounds, *point.runs]


def legend(fig: Any, axs: Sequence[Any]) -> None:
    """One legend for all panels: in the panel if there is one, else below them."""
    entries: dict[str, Any] = {}
    for ax in axs:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        return
    if len(axs) == 1:
        axs[0].legend(entries.values(), entries.keys(), fontsize="small", loc="best")
    else:
        fig.legend(
            entries.values(), entries.keys(), fontsize="small", loc="outside lower center",
            ncols=min(len(entries), 6),
        )  # fmt: skip


def title_of(plan: Layout) -> str:
    m = plan.monitor
    jobs = len(plan.points)
    done = sum(p.best is not None for p in plan.points)
    line = f"best {m.value} ({m.direction} is better) of {jobs} jobs, {done} completed"
    if plan.repeats:
        over = " and ".join(plan.repeats)
        line = f"mean best {m.value} over {over}, 95% intervals; {jobs} settings"
        if done < jobs:
            line += f", {done} with a completed run"
    if plan.best is None or plan.best.best is None:
        return line
    job = plan.best.job
    swept = override_values(job.overrides)
    where = " ".join(f"{k}={swept[k]}" for k in plan.keys if k in swept)
    if plan.repeats:
        return f"{line}\nbest: {where}: {value_text(plan.best)} ({len(plan.best.runs)} runs)"
    return f"{line}\nbest: job {job.num}, {where}: {plan.best.best:.4f}"


def value_text(point: Point) -> str:
    """``0.4953`` for a job; ``0.4953 ± 0.0012`` for a setting's mean with its interval."""
    assert point.best is not None
    if point.high is None:
        return f"{point.best:.4f}"
    return f"{point.best:.4f} ± {point.high - point.best:.4f}"


def set_ticks(ax: Any, axis: Axis, which: str) -> None:
    """A log or linear scale for ``axis``; with few values, a tick at each, labelled as typed."""
    from matplotlib.ticker import NullLocator

    target = ax.xaxis if which == "x" else ax.yaxis
    if axis.log:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    if len(axis.labels) <= MAX_TICK_LABELS:
        target.set_minor_locator(NullLocator())
        values = axis.values
        rotate = which == "x" and len(values) > 6
        target.set_ticks(values, labels=[axis.labels[v] for v in values])
        if rotate:
            ax.tick_params(axis="x", labelrotation=45)


def mark_edge(ax: Any, points: Sequence[Point], plan: Layout) -> None:
    """Jobs without a value, at the worse edge of a curve (the top when lower is better)."""
    edge = 0.97 if plan.monitor.lower_is_better else 0.03
    for mark, (marker, colour) in MARKS.items():
        xs = [p.x for p in points if p.mark == mark]
        if xs:
            ax.plot(
                xs, [edge] * len(xs), linestyle="none", marker=marker, color=colour,
                markerfacecolor="none" if mark == "not started" else colour,
                transform=ax.get_xaxis_transform(), clip_on=False, label=mark,
            )  # fmt: skip


def draw_curve(ax: Any, panel: Panel, plan: Layout) -> None:
    m = plan.monitor.value
    valued = sorted((p for p in panel.points if p.best is not None), key=lambda p: p.x)
    # one line through the best job at each value (several jobs may share one, in a search)
    at: dict[float, Point] = {}
    for p in valued:
        if p.x not in at or plan.monitor.improves(p.best, at[p.x].best):  # type: ignore[arg-type]
            at[p.x] = p
    line = [at[x] for x in sorted(at)]
    if line and plan.repeats:
        draw_means(ax, line, m)
    elif line:
        xs = [p.x for p in line]
        ax.plot(xs, [p.best for p in line], "-o", color=LINE_COLOUR, ms=4, label=f"best {m}")
        finals = [(p.x, p.final) for p in line if p.final is not None]
        ax.plot(
            [x for x, _ in finals], [f for _, f in finals], "--o", color=LINE_COLOUR,
            alpha=0.35, ms=3, label=f"final {m}",
        )  # fmt: skip
    others = [p for p in valued if at[p.x] is not p]
    if others:
        ax.plot(
            [p.x for p in others], [p.best for p in others], "o", color=LINE_COLOUR,
            alpha=0.5, ms=3, label="other jobs",
        )  # fmt: skip
    mark_edge(ax, panel.points, plan)
    best = plan.best
    if best is not None and best in panel.points:
        ax.plot(
            [best.x], [best.best], "o", ms=12, mfc="none", mec=BEST_COLOUR, mew=2,
            label="best setting" if plan.repeats else "best job",
        )  # fmt: skip
        label = "best mean" if plan.repeats else f"job {best.job.num}"
        ax.annotate(
            f"{label}: {value_text(best)}", (best.x, best.best),
            xytext=(0, -18 if plan.monitor.lower_is_better else 12),
            textcoords="offset points", ha="center", color=BEST_COLOUR, fontsize="small",
        )  # fmt: skip
    set_ticks(ax, plan.axes[0], "x")
    ax.grid(alpha=0.3)


def draw_means(ax: Any, line: Sequence[Point], metric: str) -> None:
    """Each setting's mean with its 95% interval as an error bar (none for a single run), and
    each of its runs as a faint dot."""
    xs = [p.x for p in line]
    means = [p.best for p in line]
    below = [0.0 if p.low is None else p.best - p.low for p in line]  # type: ignore[operator]
    above = [0.0 if p.high is None else p.high - p.best for p in line]  # type: ignore[operator]
    ax.errorbar(
        xs, means, yerr=[below, above], fmt="-o", color=LINE_COLOUR, ms=4, capsize=3,
        label=f"mean best {metric}, 95% interval",
    )  # fmt: skip
    runs = [(p.x, v) for p in line for v in p.runs]
    ax.plot(
        [x for x, _ in runs], [v for _, v in runs], ".", color="#555555", alpha=0.3, ms=3,
        label="each run",
    )  # fmt: skip


def draw_heat_map(ax: Any, panel: Panel, plan: Layout, norm: Any, cmap: Any, np: Any) -> Any:
    """One cell per (x, y) value; a job without a value has its cell left grey and marked."""
    from matplotlib.patches import Rectangle

    xa, ya = plan.axes
    xs, ys = xa.values, ya.values
    cells = np.full((len(ys), len(xs)), np.nan)
    for p in panel.points:
        if p.best is not None:
            cells[ys.index(p.y), xs.index(p.x)] = p.best
    image = ax.imshow(cells, origin="lower", aspect="auto", cmap=cmap, norm=norm)
    ax.set_xticks(range(len(xs)), labels=[xa.labels[v] for v in xs])
    ax.set_yticks(range(len(ys)), labels=[ya.labels[v] for v in ys])
    if len(xs) > 6:
        ax.tick_params(axis="x", labelrotation=45)
    write_values = len(xs) * len(ys) <= MAX_ANNOTATED_CELLS
    size = "small" if max(len(xs), len(ys)) <= 5 else "x-small"
    for p in panel.points:
        col, row = xs.index(p.x), ys.index(p.y)
        if p.best is None:
            colour = MARKS[p.mark or "failed"][1]
            ax.text(col, row, p.mark, ha="center", va="center", color=colour, fontsize=size)
        elif write_values:
            r, g, b, _ = cmap(norm(p.best))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(
                col, row, value_text(p).replace(" ± ", "\n± "), ha="center", va="center",
                fontsize=size,
                color="white" if dark else "black",
            )  # fmt: skip
    best = plan.best
    if best is not None and best in panel.points:
        ax.add_patch(
            Rectangle(
                (xs.index(best.x) - 0.5, ys.index(best.y) - 0.5), 1, 1,
                fill=False, edgecolor=BEST_COLOUR, linewidth=3,
            )
        )  # fmt: skip
    return image


def draw_scatter(ax: Any, panel: Panel, plan: Layout, norm: Any, cmap: Any) -> Any:
    """One dot per job where the jobs do not fill a grid (a search's trials)."""
    xa, ya = plan.axes
    valued = [p for p in panel.points if p.best is not None]
    image = ax.scatter(
        [p.x for p in valued], [p.y for p in valued], c=[p.best for p in valued],
        cmap=cmap, norm=norm, s=40, edgecolors="black", linewidths=0.4,
    )  # fmt: skip
    for mark, (marker, colour) in MARKS.items():
        marked = [p for p in panel.points if p.mark == mark]
        if marked:
            ax.scatter(
                [p.x for p in marked], [p.y for p in marked], marker=marker, s=40,
                c=colour if mark != "not started" else "none", edgecolors=colour, label=mark,
            )  # fmt: skip
    best = plan.best
    if best is not None and best in panel.points:
        ax.scatter([best.x], [best.y], s=220, facecolors="none", edgecolors=BEST_COLOUR, lw=2)
    set_ticks(ax, xa, "x")
    set_ticks(ax, ya, "y")
    ax.grid(alpha=0.3)
    return image


# Files


def draw_sweep(sweep_dir: Path, jobs: Sequence[Job], monitor: Monitor) -> str:
    """Draw ``sweep.png`` in ``sweep_dir`` from ``jobs``, and the same picture as a TensorBoard
    image at the sweep dir's top level if the jobs wrote event files; return the line that
    says what was drawn, or why nothing was. Where there is no picture, one left by an earlier
    drawing in this dir is removed: the picture always matches the summary beside it."""
    sweep_dir = Path(sweep_dir)
    plan = layout(jobs, monitor)
    if isinstance(plan, str):
        remove_picture(sweep_dir)
        return f"no sweep picture: {plan}"
    if not is_installed("matplotlib"):
        remove_picture(sweep_dir)
        return (
            "sweep picture skipped: matplotlib is not installed (pip install 'logreg-exp[plots]')"
        )
    picture = draw(plan)
    write_bytes(sweep_dir / SWEEP_PNG, picture.png)
    where = SWEEP_PNG
    if any(job.dir is not None and any(job.dir.glob(f"{EVENTS_PREFIX}*")) for job in jobs):
        write_image_events(sweep_dir, SWEEP_IMAGE_TAG, picture)
        where += f" and TensorBoard (image '{SWEEP_IMAGE_TAG}')"
    else:
        remove_image_events(sweep_dir)
    return f"sweep picture: {plan.describe()}; in {where}"


def remove_picture(sweep_dir: Path) -> None:
    (sweep_dir / SWEEP_PNG).unlink(missing_ok=True)
    remove_image_events(sweep_dir)
