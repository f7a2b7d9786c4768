"""A sweep at a glance: one row per job, best first, as ``summary.csv`` and ``summary.md``,
and the picture ``sweep.png`` (``sweeps.plots``).

Built only from files in the sweep dir (each job's ``.hydra/hydra.yaml`` for its number,
``.hydra/overrides.yaml`` and ``metrics.json``, and the sweep's plan where there is one), so
it works whatever launcher ran the jobs, and again later (``python -m logreg_exp.summary``).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from logreg_exp.files import atomic_write, display_path
from logreg_exp.results import JobResult, Monitor, Status, read_metrics
from logreg_exp.run_files import (
    EVENTS_PREFIX,
    HYDRA_DIR,
    HYDRA_YAML,
    METRICS_FILE,
    OVERRIDES_YAML,
    SEARCH_FILE,
    SETTINGS_CSV,
    SUMMARY_CSV,
    SUMMARY_MD,
)
from logreg_exp.sweeps.aggregate import (
    AGGREGATED_KEYS,
    TEST_KEYS,
    Setting,
    Stats,
    aggregate,
    repeats_swept,
)
from logreg_exp.sweeps.setting_rows import write_setting_rows
from logreg_exp.sweeps.swept import read_plan

# (metrics.json key, markdown header, format) for the numeric columns
METRIC_COLUMNS = (
    ("best_epoch", "best epoch", "{}"),
    ("best_val_loss", "best val_loss", "{:.4f}"),
    ("best_val_acc", "best val_acc", "{:.4f}"),
    ("final_val_loss", "final val_loss", "{:.4f}"),
    ("final_val_acc", "final val_acc", "{:.4f}"),
    ("test_loss", "test loss", "{:.4f}"),
    ("test_acc", "test acc", "{:.4f}"),
    ("test_population_acc", "test population_acc", "{:.4f}"),
    ("epochs_run", "epochs", "{}"),
    ("stopped_early_epoch", "stopped early", "{}"),
    ("wall_s", "wall s", "{:.1f}"),
)
# Columns that a dataset or a config may not have (no test split, no population, no early
# stopping): summary.md leaves them out where no job has a value; summary.csv always has
# every column.
OPTIONAL_COLUMNS = frozenset(
    {"test_loss", "test_acc", "test_population_acc", "stopped_early_epoch"}
)
CSV_COLUMNS = ("job", "status", *(key for key, _, _ in METRIC_COLUMNS), "overrides", "dir")


@dataclass
class Job:
    """What one job left behind; ``dir`` is None for a planned job that never started."""

    num: int | None
    overrides: list[str]
    dir: Path | None
    result: JobResult = field(default_factory=lambda: JobResult("not started"))
    # what of its files is of the wrong type and left out, a line each naming the file
    damaged: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def metrics(self) -> dict[str, Any]:
        return self.result.metrics

    def value(self, key: str) -> float | None:
        return self.result.number(key)


def load_yaml(path: Path) -> Any:
    """The YAML file's contents as plain data, or None where it is missing or not readable as
    YAML: a job interrupted while Hydra wrote it still gets its row. PyYAML's C loader, where
    built: a summary reads two files a job, and OmegaConf's loader is ten times slower."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except Exception:
        return None


def select(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; None where a part is missing."""
    for key in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def read_job(job_dir: Path) -> Job:
    """A job from its dir: number and overrides from ``.hydra/``, results from metrics.json.
    A value of the wrong type (a list for the job's number, a number for its overrides, a
    dict for its monitor) is left out as a missing one is, and said in ``Job.damaged``: the
    job keeps its row, and the sweep's other jobs their summary."""
    damaged: list[str] = []
    hydra_file = job_dir / HYDRA_DIR / HYDRA_YAML
    hydra_cfg = load_yaml(hydra_file)
    num = select(hydra_cfg, "hydra.job.num")
    if num is not None and not is_int(num):
        damaged.append(
            f"{display_path(hydra_file)}: hydra.job.num is {shown(num)}, not a job number"
        )
        num = None
    overrides_file = job_dir / HYDRA_DIR / OVERRIDES_YAML
    overrides = load_yaml(overrides_file)
    if overrides is not None and not is_override_list(overrides):
        damaged.append(
            f"{display_path(overrides_file)} holds {shown(overrides)}, not a list of overrides"
        )
        overrides = None
    if overrides is None and hydra_cfg is not None:
        overrides = select(hydra_cfg, "hydra.overrides.task")
        if overrides is not None and not is_override_list(overrides):
            damaged.append(
                f"{display_path(hydra_file)}: hydra.overrides.task is {shown(overrides)}, "
                "not a list"
            )
            overrides = None
    result = read_metrics(job_dir)
    monitor = result.metrics.get("monitor")
    if monitor is not None and not isinstance(monitor, str):
        damaged.append(
            f"{display_path(job_dir / METRICS_FILE)}: monitor is {shown(monitor)}, not a "
            f"metric's name ({', '.join(list(MONITORS)[:3])}, ...)"
        )
    return Job(num, [str(o) for o in overrides or []], job_dir, result, damaged)


def shown(value: Any) -> str:
    """``value``'s repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_override_list(value: Any) -> bool:
    """Whether ``value`` is a list of overrides as Hydra saves them: scalars (``a=1``)."""
    return isinstance(value, list) and all(isinstance(o, str | int | float | bool) for o in value)


def collect_jobs(sweep_dir: Path) -> list[Job]:
    """Every job dir below ``sweep_dir`` (a dir holding ``.hydra/hydra.yaml``), and each job
    of the sweep's plan that has no dir, as ``not started``; in job order (by number, not
    as text: 2 before 10), jobs without a readable number last."""
    sweep_dir = Path(sweep_dir)
    jobs = [
        read_job(p.parent.parent) for p in sorted(sweep_dir.glob(f"**/{HYDRA_DIR}/{HYDRA_YAML}"))
    ]
    seen = {job.num for job in jobs}
    jobs += [
        Job(num, overrides, None)
        for num, overrides in enumerate(read_plan(sweep_dir) or [])
        if num not in seen
    ]
    return sorted(jobs, key=job_order)


def job_order(job: Job) -> tuple[float, str]:
    """Sorts by job number, then by dir (jobs without a number last)."""
    num = job.num if isinstance(job.num, int) else math.inf
    return (num, str(job.dir or ""))


MONITORS = {m.value: m for m in Monitor}


def sweep_monitor(jobs: Sequence[Job]) -> Monitor:
    """The metric the jobs monitored (the most common one if they differ)."""
    monitors = Counter(
        MONITORS[monitor] for monitor in map(monitor_of, jobs) if monitor in MONITORS
    )
    return monitors.most_common(1)[0][0] if monitors else Monitor.val_loss


def monitor_of(job: Job) -> str | None:
    """The metric the job monitored, as its metrics.json names it (None where it does not)."""
    monitor = job.metrics.get("monitor")
    return monitor if isinstance(monitor, str) else None


def sort_jobs(jobs: Sequence[Job], monitor: Monitor) -> list[Job]:
    """Completed jobs with a value of ``best_<monitor>``, best first; then pruned ones, by
    their best value so far; then every other job (diverged, failed, interrupted, no
    metrics, not started), by job number."""

    def key(job: Job) -> tuple[int, float, float]:
        num = job.num if job.num is not None else math.inf
        value = job.value(f"best_{monitor.value}")
        if job.result.completed and value is not None:
            return (0, monitor.sort_key(value), num)
        if job.status == Status.PRUNED and value is not None:
            return (1, monitor.sort_key(value), num)
        return (2, 0.0, num)

    return sorted(jobs, key=key)


def relative_dir(job: Job, sweep_dir: Path) -> str:
    if job.dir is None:
        return ""
    try:
        return str(job.dir.relative_to(sweep_dir))
    except ValueError:
        return str(job.dir)


def to_csv(jobs: Sequence[Job], sweep_dir: Path) -> str:
    """One row per job; numbers exactly as in metrics.json, empty where a job has none."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for job in jobs:
        numbers = [job.metrics.get(key, "") for key, _, _ in METRIC_COLUMNS]
        num = "" if job.num is None else job.num
        dir_ = relative_dir(job, sweep_dir)
        writer.writerow([num, job.status, *numbers, " ".join(job.overrides), dir_])
    return out.getvalue()


def cell(value: Any, fmt: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return fmt.format(value)
    return "" if value is None else str(value)


def to_markdown(jobs: Sequence[Job]) -> str:
    """A markdown table, padded so that it lines up in a terminal too; numbers right-aligned."""
    columns = [
        (key, title, fmt)
        for key, title, fmt in METRIC_COLUMNS
        if key not in OPTIONAL_COLUMNS or any(job.metrics.get(key) is not None for job in jobs)
    ]
    header = ["job", "status", *(title for _, title, _ in columns), "overrides"]
    right = [False, False, *(True for _ in columns), False]
    rows = [
        [
            "" if job.num is None else str(job.num),
            job.status,
            *(cell(job.metrics.get(key), fmt) for key, _, fmt in columns),
            " ".join(job.overrides).replace("|", "\\|"),
        ]
        for job in jobs
    ]
    return markdown_table(header, right, rows)


def markdown_table(
    header: Sequence[str], right: Sequence[bool], rows: Sequence[Sequence[str]]
) -> str:
    """``rows`` under ``header`` as a markdown table, padded so that it lines up in a
    terminal too; the columns ``right`` marks right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    layout = list(zip(widths, right, strict=True))

    def line(values: Sequence[str]) -> str:
        cells = (v.rjust(w) if r else v.ljust(w) for v, (w, r) in zip(values, layout, strict=True))
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if r else "-") for w, r in layout) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)]) + "\n"


def report(jobs: Sequence[Job], monitor: Monitor, sweep_dir: Path) -> str:
    """The text printed and saved as summary.md: the table, then the best job (a markdown
    list, so that it renders as lines too)."""
    done = sum(job.result.completed for job in jobs)
    pruned = sum(job.status == Status.PRUNED for job in jobs)
    lines = [
        f"Sweep {display_path(sweep_dir)}: {len(jobs)} jobs, {done} completed"
        f"{f', {pruned} pruned' if pruned else ''}; "
        f"sorted by best {monitor.value} ({monitor.direction} is better)",
        "",
        to_markdown(jobs),
    ]
    monitors = sorted({m for m in map(monitor_of, jobs) if m is not None})
    if len(monitors) > 1:
        lines.insert(1, f"(the jobs picked their best epochs by {' or '.join(monitors)})")
    best = jobs[0] if jobs else None
    key = f"best_{monitor.value}"
    if best is not None and best.result.completed and best.value(key) is not None:
        assert best.dir is not None
        lines += [
            f"Best: job {best.num}, best {monitor.value} {best.metrics[key]:.4f} "
            f"at epoch {best.metrics.get('best_epoch')}",
            f"- overrides: {' '.join(best.overrides) or '(none)'}",
            f"- run dir: {display_path(best.dir)}",
        ]
    else:
        lines.append("No job completed.")
    lines += spread_lines(jobs)
    lines += settings_lines(jobs, aggregate(jobs, monitor), monitor)
    lines += search_lines(sweep_dir)
    return "\n".join(lines) + "\n"


def settings_lines(jobs: Sequence[Job], settings: Sequence[Setting], monitor: Monitor) -> list[str]:
    """The table of ``settings`` (``aggregate``'s), best mean first, and the best setting;
    nothing where the sweep repeats no setting (no seed or fold swept)."""
    if not settings:
        return []
    over = " and ".join(repeats_swept([job for job in jobs if job.overrides]))
    lines = [
        "",
        f"By setting, over {over}: {len(settings)} settings; mean, std and 95% t interval of "
        f"the completed runs, sorted by mean best {monitor.value}",
        "",
        settings_markdown(settings, monitor),
    ]
    best = settings[0].stats.get(f"best_{monitor.value}")
    if best is None:
        return [*lines, "No setting has a completed run."]
    return [
        *lines,
        f"Best setting: {settings[0].name}, best {monitor.value} {mean_and_interval(best)} "
        f"over {best.n} runs",
    ]


def mean_and_interval(stats: Stats) -> str:
    """``0.4967 +- 0.0012`` (the 95% interval's half width), or the mean alone for one run."""
    half = stats.half_width
    return f"{stats.mean:.4f}" if half is None else f"{stats.mean:.4f} ± {half:.4f}"


def settings_markdown(settings: Sequence[Setting], monitor: Monitor) -> str:
    """A row per setting: its runs (completed of all), the monitored metric's mean, std and
    95% interval, and the test metrics' mean +- half width where any setting has them."""
    ranked = f"best_{monitor.value}"
    tests = [k for k in TEST_KEYS if any(k in s.stats for s in settings)]
    header = [
        "rank", "runs", f"mean best {monitor.value}", "std", "95% interval",
        *(f"{key.replace('_', ' ', 1)} (± 95%)" for key in tests), "setting",
    ]  # fmt: skip
    right = [True, True, True, True, True, *(True for _ in tests), False]
    rows = []
    for rank, setting in enumerate(settings, 1):
        stats = setting.stats.get(ranked)
        interval = ""
        if stats is not None and stats.low is not None:
            interval = f"[{stats.low:.4f}, {stats.high:.4f}]"
        rows.append(
            [
                str(rank) if stats is not None else "",
                f"{setting.completed}/{len(setting.jobs)}",
                "" if stats is None else f"{stats.mean:.4f}",
                "" if stats is None or stats.std is None else f"{stats.std:.4f}",
                interval,
                *(mean_and_interval(setting.stats[k]) if k in setting.stats else "" for k in tests),
                setting.name.replace("|", "\\|"),
            ]
        )
    return markdown_table(header, right, rows)


SETTINGS_CSV_STATS = ("mean", "std", "ci95_low", "ci95_high")


def settings_csv(settings: Sequence[Setting]) -> str:
    """One row per setting: its runs, completed runs, each result's mean, std and 95%
    interval (empty where it has none), its job numbers, what tells it from the other
    settings and all its overrides but the seed and fold; full precision."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    stat_columns = [f"{key}_{stat}" for key in AGGREGATED_KEYS for stat in SETTINGS_CSV_STATS]
    header = ["rank", "runs", "completed", *stat_columns, "jobs", "setting", "overrides"]
    writer.writerow(header)
    for rank, setting in enumerate(settings, 1):
        numbers: list[Any] = []
        for key in AGGREGATED_KEYS:
            stats = setting.stats.get(key)
            values = (
                (None,) * 4 if stats is None else (stats.mean, stats.std, stats.low, stats.high)
            )
            numbers += ["" if v is None else v for v in values]
        nums = " ".join(
            str(num) for num in sorted(j.num for j in setting.jobs if j.num is not None)
        )
        overrides = " ".join(setting.overrides)
        row = [rank, len(setting.jobs), setting.completed, *numbers, nums, setting.name, overrides]
        writer.writerow(row)
    return out.getvalue()


# The numbers a sweep over seeds is run for, the validation number beside the held-out one
SPREAD_KEYS = (
    "best_val_acc",
    "test_acc",
    "test_population_acc",
    "best_val_loss",
    "test_loss",
)
# How far the best epoch's validation accuracy, picked on the validation set, sits above an
# honest number for the same model: the test split's accuracy, or the population's
GAPS = (("best_val_acc", "test_acc"), ("best_val_acc", "test_population_acc"))


def spread_lines(jobs: Sequence[Job]) -> list[str]:
    """Mean, min and max over the completed jobs of the best validation metrics and the best
    model's test metrics, and of the gap between the two accuracies, job by job: what a
    sweep over seeds is run for (nothing for fewer than two completed jobs)."""
    done = [job for job in jobs if job.result.completed]
    if len(done) < 2:
        return []
    lines = [f"Over the {len(done)} completed jobs:"]
    for key in SPREAD_KEYS:
        values = [v for v in (job.value(key) for job in done) if v is not None]
        if values:
            lines.append(f"- {key}: {spread(values, '.4f')}")
    for val_key, test_key in GAPS:
        pairs = [(job.value(val_key), job.value(test_key)) for job in done]
        gaps = [v - t for v, t in pairs if v is not None and t is not None]
        if gaps:
            lines.append(f"- {val_key} - {test_key}: {spread(gaps, '+.4f')}")
    return lines


def spread(values: Sequence[float], fmt: str) -> str:
    return (
        f"mean {statistics.fmean(values):{fmt}}, min {min(values):{fmt}}, max {max(values):{fmt}}"
    )


def search_lines(sweep_dir: Path) -> list[str]:
    """The search's best parameters and value, as the sweeper recorded them in
    ``optimization_results.yaml`` (hparams_search=optuna); nothing for a plain sweep."""
    results = load_yaml(Path(sweep_dir) / SEARCH_FILE)
    if not isinstance(results, Mapping) or not isinstance(results.get("best_params"), Mapping):
        return []
    params, value = results["best_params"], results.get("best_value")
    value_text = f"{value:.4f}" if isinstance(value, int | float) else str(value)
    name = results.get("name", "search")
    return [
        f"Search ({name}, {SEARCH_FILE}): best value {value_text}",
        f"- best parameters: {' '.join(f'{k}={v}' for k, v in params.items())}",
    ]


def write_summary(
    sweep_dir: Path, monitor: Monitor | None = None, jobs: Sequence[Job] | None = None
) -> str | None:
    """Write summary.csv and summary.md in ``sweep_dir`` from ``jobs`` (default: those
    ``collect_jobs`` finds), and for a sweep over seeds or folds summary_settings.csv and the
    settings' HParams rows (``setting_rows``); return the report, or None when there are no
    jobs (nothing is written then)."""
    sweep_dir = Path(sweep_dir)
    jobs = collect_jobs(sweep_dir) if jobs is None else jobs
    if not jobs:
        return None
    monitor = monitor or sweep_monitor(jobs)
    jobs = sort_jobs(jobs, monitor)
    text = report(jobs, monitor, sweep_dir)
    table = to_csv(jobs, sweep_dir)
    # a dir name that is not UTF-8 is written with backslash escapes, as it prints
    atomic_write(
        sweep_dir / SUMMARY_CSV, lambda f: f.write(table.encode(errors="backslashreplace"))
    )
    settings = aggregate(jobs, monitor)
    if settings:
        by_setting = settings_csv(settings)
        atomic_write(
            sweep_dir / SETTINGS_CSV,
            lambda f: f.write(by_setting.encode(errors="backslashreplace")),
        )
    else:  # an earlier sweep's in this dir would not match the summary beside it
        (sweep_dir / SETTINGS_CSV).unlink(missing_ok=True)
    # the settings' HParams rows, where the jobs wrote theirs (TensorBoard on)
    tensorboard = any(
        job.dir is not None and any(job.dir.glob(f"{EVENTS_PREFIX}*")) for job in jobs
    )
    repeats = repeats_swept([job for job in jobs if job.overrides])
    write_setting_rows(sweep_dir, settings if tensorboard else [], repeats)
    atomic_write(sweep_dir / SUMMARY_MD, lambda f: f.write(text.encode(errors="backslashreplace")))
    return text
