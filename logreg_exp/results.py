"""How a job ends, and the file that says so: the one module that writes and reads metrics.json.

The runner, the failure path of the entrypoint, the sweep's exit status and the summary all
go through here, so a job's status means the same everywhere. It imports neither torch nor
Hydra: the sweep's process reads results without loading either.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logreg_exp.files import atomic_write

if TYPE_CHECKING:
    from logreg_exp.training.loop import FitResult

METRICS_FILE = "metrics.json"


class Status(str, Enum):
    """How a job ended, as ``metrics.json`` spells it."""

    COMPLETED = "completed"
    DIVERGED = "diverged"  # a non-finite loss; the epochs before it are kept
    # Ctrl-C, SIGTERM, SIGUSR1/2 between minibatches; the epochs before it are kept
    INTERRUPTED = "interrupted"
    FAILED = "failed"  # a bad value or an error: nothing trained

    def __str__(self) -> str:
        return self.value


class Monitor(Enum):
    """The validation metric that picks the best epoch, and which way is better."""

    val_loss = "val_loss"
    val_acc = "val_acc"

    @property
    def lower_is_better(self) -> bool:
        return self is Monitor.val_loss

    @property
    def direction(self) -> str:
        return "lower" if self.lower_is_better else "higher"

    @property
    def worst(self) -> float:
        """What a job that did not complete returns to a sweeper: finite (a NaN would crash
        some sweepers) and worse than any real value, so it ranks last."""
        return sys.float_info.max if self.lower_is_better else -1.0

    def improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` strictly beats ``best`` (None: nothing yet)."""
        if best is None:
            return True
        return value < best if self.lower_is_better else value > best

    def sort_key(self, value: float) -> float:
        """A key that sorts better values first."""
        return value if self.lower_is_better else -value


@dataclass
class Outcome:
    """How a job ended, its value for a sweeper, and a one-line message if it did not
    complete."""

    status: Status
    value: float
    message: str | None = None


def fit_metrics(
    result: FitResult, wall_s: float, n_train: int, stopped_by: str | None = None
) -> dict[str, Any]:
    """The contents of ``metrics.json`` for a job that trained; best and final values are
    null if no epoch finished. ``stopped_by``: the signal that interrupted it (SIGINT,
    SIGTERM, ...)."""
    best, final = result.best, (result.history[-1] if result.history else None)
    train_s = sum(m.train_s for m in result.history)
    val_s = sum(m.val_s for m in result.history)
    metrics: dict[str, Any] = {"status": result.status.value, "monitor": result.monitor.value}
    if result.status is Status.DIVERGED:
        metrics["diverged_epoch"], metrics["diverged_step"] = result.stopped_at
    if result.status is Status.INTERRUPTED:
        metrics["interrupted_epoch"] = result.stopped_at[0]
        if stopped_by is not None:
            metrics["interrupted_by"] = stopped_by
    metrics["best_epoch"] = result.best_epoch or None
    for prefix, epoch in (("best", best), ("final", final)):
        metrics[f"{prefix}_val_loss"] = epoch.val_loss if epoch else None
        metrics[f"{prefix}_val_acc"] = epoch.val_acc if epoch else None
        for name, value in (epoch.extra if epoch else {}).items():
            metrics[f"{prefix}_val_{name}"] = value
    metrics.update(
        epochs_run=len(result.history),
        train_s=train_s,
        val_s=val_s,
        wall_s=wall_s,
        train_samples_per_s=n_train * len(result.history) / train_s if train_s > 0 else None,
    )
    return metrics


def failure_metrics(monitor: Monitor, reason: str, wall_s: float) -> dict[str, Any]:
    """The contents of ``metrics.json`` for a job that failed before it trained."""
    return {
        "status": Status.FAILED.value,
        "error": reason,
        "monitor": monitor.value,
        "wall_s": wall_s,
    }


def recorded_outcome(job_dir: Path, monitor: Monitor) -> Outcome | None:
    """How the run in ``job_dir`` ended, as its metrics.json says, for a run that ended
    (completed, or diverged); None otherwise."""
    result = read_metrics(job_dir)
    best = result.number(f"best_{monitor.value}")
    if result.completed and best is not None:
        return Outcome(Status.COMPLETED, best)
    if result.status == Status.DIVERGED:
        epoch, step = result.metrics.get("diverged_epoch"), result.metrics.get("diverged_step")
        message = f"training diverged: non-finite loss at epoch {epoch}, step {step}"
        return Outcome(Status.DIVERGED, monitor.worst, message)
    return None


def write_metrics(job_dir: Path, metrics: dict[str, Any]) -> Path:
    path = Path(job_dir) / METRICS_FILE
    text = json.dumps(metrics, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


@dataclass
class JobResult:
    """What a job dir's ``metrics.json`` says. ``status`` is the file's status, or what is
    wrong with the file (``no metrics.json``, ``unreadable metrics.json``)."""

    status: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def counts_as_failure(self) -> bool:
        """A job that failed, or left no readable result (killed by the out-of-memory killer
        or by a cluster): the sweep exits non-zero. Diverged and interrupted jobs ended as
        asked and wrote their result."""
        return self.status not in (Status.COMPLETED, Status.DIVERGED, Status.INTERRUPTED)

    @property
    def completed(self) -> bool:
        return self.status == Status.COMPLETED

    @property
    def final(self) -> bool:
        """The job ran to its end (completed, or stopped by a non-finite loss, which it would
        meet again): nothing in its dir to resume."""
        return self.status in (Status.COMPLETED, Status.DIVERGED)

    def number(self, key: str) -> float | None:
        """A finite number from metrics.json, else None."""
        value = self.metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return value
        return None


def read_metrics(job_dir: Path) -> JobResult:
    """The result in ``job_dir``; never raises for a missing, cut short or foreign file."""
    try:
        metrics = json.loads((Path(job_dir) / METRICS_FILE).read_text())
    except FileNotFoundError:
        return JobResult(f"no {METRICS_FILE}")
    except (OSError, ValueError):
        return JobResult(f"unreadable {METRICS_FILE}")
    if not isinstance(metrics, dict):
        return JobResult(f"unreadable {METRICS_FILE}")
    return JobResult(str(metrics.get("status", "unknown")), metrics)
