"""How a job ends, and the files that hold its numbers: the one module that writes and reads
metrics.json, and writes a finished run's evaluation.json.

The runner, the failure path of the entrypoint, the sweep's exit status and the summary all
go through here, so a job's status means the same everywhere. It imports neither torch nor
Hydra: the sweep's process reads results without loading either.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logreg_exp.files import atomic_write
from logreg_exp.run_files import METRICS_FILE

if TYPE_CHECKING:
    from logreg_exp.training.loop import FitResult


class Status(str, Enum):
    """How a job ended, as ``metrics.json`` spells it."""

    COMPLETED = "completed"
    DIVERGED = "diverged"  # a non-finite loss or metric; the epochs before it are kept
    # Ctrl-C, SIGTERM, SIGUSR1/2 between minibatches; the epochs before it are kept
    INTERRUPTED = "interrupted"
    FAILED = "failed"  # a bad value or an error: nothing trained
    # stopped by successive halving in a vectorized group (hydra.launcher.prune): its
    # monitored metric among the worst of its group's; the epochs before it are kept
    PRUNED = "pruned"

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
    result: FitResult,
    wall_s: float,
    n_train: int,
    test: Mapping[str, float | None] | None = None,
    stopped_by: str | None = None,
) -> dict[str, Any]:
    """The contents of ``metrics.json`` for a job that trained; best and final values are
    null if no epoch finished. ``test`` is what ``Pipeline.test`` measured of the best
    model at the end (``loss``, ``acc`` and the dataset's evaluators): ``test_loss`` and
    ``test_acc`` are null without a test split, or when the job did not complete (None).
    ``stopped_by``: the signal that interrupted it (SIGINT, SIGTERM, ...)."""
    best, final = result.best, (result.history[-1] if result.history else None)
    train_s = sum(m.train_s for m in result.history)
    val_s = sum(m.val_s for m in result.history)
    metrics: dict[str, Any] = {"status": result.status.value, "monitor": result.monitor.value}
    if result.status is Status.DIVERGED:
        metrics["diverged_epoch"], metrics["diverged_step"] = result.stopped_at
        metrics["diverged_on"] = result.non_finite
    if result.status is Status.PRUNED:
        metrics["pruned_epoch"] = result.stopped_at[0]
    if result.status is Status.INTERRUPTED:
        metrics["interrupted_epoch"] = result.stopped_at[0]
        if stopped_by is not None:
            metrics["interrupted_by"] = stopped_by
    if result.stopped_early is not None:
        metrics["stopped_early_epoch"] = result.stopped_early
    metrics["best_epoch"] = result.best_epoch or None
    for prefix, epoch in (("best", best), ("final", final)):
        metrics[f"{prefix}_val_loss"] = epoch.val_loss if epoch else None
        metrics[f"{prefix}_val_acc"] = epoch.val_acc if epoch else None
        for name, value in (epoch.extra if epoch else {}).items():
            metrics[f"{prefix}_val_{name}"] = value
    test = dict(test or {})
    metrics["test_loss"], metrics["test_acc"] = test.pop("loss", None), test.pop("acc", None)
    for name, value in test.items():
        metrics[f"test_{name}"] = value
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


NON_FINITE_KEY = "non_finite"


def finite_json(content: dict[str, Any]) -> dict[str, Any]:
    """``content`` as strict JSON can hold it: a NaN or infinite number, at any depth,
    becomes null, and ``non_finite`` says which keys were nulled (dotted below the top) and
    what they held (``"nan"``, ``"inf"``, ``"-inf"``). Strict readers (JavaScript's
    ``JSON.parse``, ``jq``) reject the bare ``NaN`` that Python's json module writes."""
    nulled: dict[str, str] = {}

    def clean(value: Any, key: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            nulled[key] = str(value)
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v, f"{key}.{i}") for i, v in enumerate(value)]
        return value

    cleaned = clean(content, "")
    if nulled:
        cleaned[NON_FINITE_KEY] = {**(content.get(NON_FINITE_KEY) or {}), **nulled}
    return cleaned


def divergence(non_finite: str | None, epoch: int | None, step: int | None) -> str:
    """Where training diverged, in words, from what ``metrics.json`` records of it."""
    if non_finite in (None, "train_loss"):
        return f"non-finite loss at epoch {epoch}, step {step}"
    # a validation number: the parameters overflowed in the epoch's last step
    return f"non-finite {non_finite} at epoch {epoch}, after step {step}"


def recorded_outcome(job_dir: Path, monitor: Monitor) -> Outcome | None:
    """How the run in ``job_dir`` ended, as its metrics.json says, for a run that ended
    (completed, diverged or pruned); None otherwise. A pruned job's value is its best so
    far."""
    result = read_metrics(job_dir)
    if result.status == Status.DIVERGED:
        where = divergence(*(result.metrics.get(f"diverged_{k}") for k in ("on", "epoch", "step")))
        return Outcome(Status.DIVERGED, monitor.worst, f"training diverged: {where}")
    if not result.completed and result.status != Status.PRUNED:
        return None
    best = result.number(f"best_{monitor.value}")
    status = Status.COMPLETED if result.completed else Status.PRUNED
    return Outcome(status, best if best is not None else monitor.worst)


def write_metrics(job_dir: Path, metrics: dict[str, Any]) -> Path:
    return write_json(Path(job_dir) / METRICS_FILE, metrics)


def write_evaluation(path: Path, evaluation: dict[str, Any]) -> Path:
    """``evaluation.json`` (by default in the run dir): what ``python -m logreg_exp.evaluate``
    measured of a finished run's best model on its splits."""
    return write_json(Path(path), evaluation)


def write_json(path: Path, content: dict[str, Any]) -> Path:
    """Write ``content`` atomically, as strict JSON (see ``finite_json``)."""
    text = json.dumps(finite_json(content), indent=2, allow_nan=False) + "\n"
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
        asked and wrote their result, as did pruned ones."""
        ended_as_asked = (Status.COMPLETED, Status.DIVERGED, Status.INTERRUPTED, Status.PRUNED)
        return self.status not in ended_as_asked

    @property
    def completed(self) -> bool:
        return self.status == Status.COMPLETED

    @property
    def ended(self) -> bool:
        """The job ran to its end: completed, diverged (a non-finite value, which it would
        meet again) or pruned; nothing in its dir to resume."""
        return self.status in (Status.COMPLETED, Status.DIVERGED, Status.PRUNED)

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
