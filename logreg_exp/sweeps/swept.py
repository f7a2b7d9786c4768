"""What a sweep varies: the override keys whose values differ between its jobs, read from the
jobs' override strings (``updater.lr=0.01``), and those values as numbers where they are.

The override strings are what every job dir records (``.hydra/overrides.yaml``) and what the
sweep's plan lists, whatever the launcher, so the sweep picture and each job's HParams read
the same thing.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from logreg_exp.run_files import PLAN_FILE


def read_plan(sweep_dir: Path) -> list[list[str]] | None:
    """Each job's overrides from the sweep's plan, in job order; None where there is no plan
    (another sweeper than the basic one) or it cannot be read. Every job of a sweep asks;
    the file is read again only once it has changed."""
    plan = _cached_plan(Path(sweep_dir))
    return None if plan is None else [list(job) for job in plan]


def planned_jobs_count(sweep_dir: Path) -> int | None:
    """How many jobs the sweep's plan has (``read_plan``'s length, without copying it: each
    job of a sweep asks)."""
    plan = _cached_plan(Path(sweep_dir))
    return None if plan is None else len(plan)


def _cached_plan(sweep_dir: Path) -> tuple[tuple[str, ...], ...] | None:
    path = sweep_dir / PLAN_FILE
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read_plan(path, stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_plan(path: Path, *version: int) -> tuple[tuple[str, ...], ...] | None:
    try:
        jobs = json.loads(path.read_text())["jobs"]
        return tuple(tuple(str(o) for o in overrides) for overrides in jobs)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def split_override(override: str) -> tuple[str, str]:
    """``("updater.lr", "0.01")`` for ``updater.lr=0.01``, ``+key=v`` and ``++key=v`` alike;
    a deletion (``~key``) has the value ``""``."""
    key, _, value = override.partition("=")
    return key.lstrip("+~").strip(), value.strip()


def override_values(overrides: Iterable[str]) -> dict[str, str]:
    """The overrides as key -> value text, in their order."""
    return dict(split_override(o) for o in overrides)


def swept_keys(jobs: Iterable[Sequence[str]]) -> list[str]:
    """The keys whose value is not the same in every job (a key some jobs lack counts as
    differing), in the order they first appear: the order the user typed them."""
    values: dict[str, set[str | None]] = {}
    maps = [override_values(job) for job in jobs]
    for job in maps:
        for key in job:
            values.setdefault(key, set())
    for job in maps:
        for key, seen in values.items():
            seen.add(job.get(key))
    return [key for key, seen in values.items() if len(seen) > 1]


def number(text: str) -> float | None:
    """The value as a finite number where the text is one (``8``, ``0.01``, ``1e-3``), else
    None (``manual``, ``true``, ``null``, ``inf``, a quoted or a list value)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def keys_the_sweep_varies(sweep_dir: Path, sweeper: Mapping[str, Any] | None) -> list[str] | None:
    """For a job of a sweep: the keys its sweep varies, from the plan (the basic sweeper), or
    the keys of ``hydra.sweeper.params`` (a search such as Optuna's, which decides the values
    as it goes); None where neither says."""
    plan = read_plan(sweep_dir)
    if plan is not None:
        return swept_keys(plan)
    params = sweeper.get("params") if sweeper is not None else None
    if isinstance(params, Mapping) and params:
        return [str(key) for key in params]
    return None
