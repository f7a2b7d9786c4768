"""A sweep's jobs per setting: the config minus what only repeats a run (``seed``, and the
fold of a k-fold cross-validation, ``dataset.fold``), with the number of runs, the mean, the
standard deviation and a 95% interval of each result over them, best mean first.

A setting is told from the jobs' override strings (as ``swept.py`` reads them), so it is the
same under every launcher and for a sweep summarized again later. The interval is Student's
t interval of the mean (``mean +- t(0.975, n - 1) * std / sqrt(n)``, std with n - 1): with a
handful of seeds it is honestly wider than the normal one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from logreg_exp.results import Monitor
from logreg_exp.sweeps.swept import split_override, swept_keys

if TYPE_CHECKING:
    from logreg_exp.sweeps.summary import Job

# The keys whose values repeat a setting rather than make another one.
REPEAT_KEYS = ("seed", "dataset.fold")
# The results aggregated beside the monitored one: the best model's on the test split, and
# for gaussian2d its exact accuracy on the whole distribution.
TEST_KEYS = ("test_loss", "test_acc", "test_population_acc")
# Every result aggregated (metrics.json keys), the best epoch's validation numbers first
AGGREGATED_KEYS = ("best_val_loss", "best_val_acc", *TEST_KEYS)

# t(0.975, df) for df = 1..30; beyond, the Cornish-Fisher expansion (error below 1e-5)
T_975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
    2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
    2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
    2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip
Z_975 = 1.959963984540054


def t_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (>= 1)."""
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z_975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


@dataclass(frozen=True)
class Stats:
    """A result over a setting's completed runs; ``std`` and the interval None for one run."""

    n: int
    mean: float
    std: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        mean = statistics.fmean(values)
        if len(values) < 2:
            return cls(len(values), mean, None, None, None)
        std = statistics.stdev(values)
        half = t_975(len(values) - 1) * std / math.sqrt(len(values))
        return cls(len(values), mean, std, mean - half, mean + half)

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean


@dataclass
class Setting:
    """The jobs that share every override but ``REPEAT_KEYS``, and their results' stats."""

    overrides: list[str]  # the shared overrides, in the order typed
    jobs: list[Job] = field(default_factory=list)
    stats: dict[str, Stats] = field(default_factory=dict)  # metrics.json key -> stats
    varied: list[str] = field(default_factory=list)  # its overrides of keys settings differ in

    @property
    def completed(self) -> int:
        return sum(job.result.completed for job in self.jobs)

    @property
    def name(self) -> str:
        """What tells it from the sweep's other settings (``all runs`` where it is the only
        one)."""
        return " ".join(self.varied) or "all runs"


def repeats_swept(jobs: Sequence[Job]) -> list[str]:
    """The ``REPEAT_KEYS`` the jobs' overrides vary, in the order typed: none, no settings."""
    return [k for k in swept_keys(job.overrides for job in jobs) if k in REPEAT_KEYS]


def setting_key(overrides: Sequence[str]) -> tuple[str, ...]:
    return tuple(o for o in overrides if split_override(o)[0] not in REPEAT_KEYS)


def aggregate(jobs: Sequence[Job], monitor: Monitor) -> list[Setting]:
    """The settings of ``jobs`` (those with overrides), best mean of ``best_<monitor>`` first,
    settings with no completed run last (in the order of their first job); empty where the
    jobs vary no ``REPEAT_KEYS``. Only completed runs count in the stats."""
    placed = [job for job in jobs if job.overrides]
    if not repeats_swept(placed):
        return []
    settings: dict[tuple[str, ...], Setting] = {}
    for job in placed:
        key = setting_key(job.overrides)
        settings.setdefault(key, Setting(list(key))).jobs.append(job)
    varying = set(swept_keys(s.overrides for s in settings.values()))
    ranked_key = f"best_{monitor.value}"
    for setting in settings.values():
        setting.varied = [o for o in setting.overrides if split_override(o)[0] in varying]
        done = [job for job in setting.jobs if job.result.completed]
        for key in AGGREGATED_KEYS:
            values = [v for v in (job.value(key) for job in done) if v is not None]
            if values:
                setting.stats[key] = Stats.of(values)

    def rank(setting: Setting) -> tuple[int, float]:
        stats = setting.stats.get(ranked_key)
        return (0, monitor.sort_key(stats.mean)) if stats else (1, 0.0)

    return sorted(settings.values(), key=rank)
