"""How many CPU threads torch gets per job, so parallel jobs do not oversubscribe the cores.

``threads: null`` (the default) means: under a launcher that runs ``n_jobs`` jobs at once on
this machine (joblib), ``usable cores // n_jobs``; under one that gives each job its own
``cpus_per_task`` (submitit), that many; otherwise torch's own default. Either way
jobs x threads <= cores.
"""

from __future__ import annotations

import functools
import os
from typing import Any


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, SLURM, containers) where
    the OS reports one, else every core."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parallel_jobs(n_jobs: int, cores: int) -> int:
    """joblib's reading of ``n_jobs``: -1 is every core, -2 all but one, and so on."""
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return max(1, n_jobs)


def jobs_at_once(n_jobs: int) -> int:
    """``n_jobs`` as a count of jobs on this machine (the ``jobs_at_once`` resolver)."""
    return parallel_jobs(int(n_jobs), usable_cores())


def default_threads(launcher: Any, cores: int | None = None) -> int | None:
    """Threads per job under the launcher config ``launcher`` (``hydra.launcher``), or None
    for torch's default."""
    cores = usable_cores() if cores is None else cores
    n_jobs = launcher.get("n_jobs") if launcher is not None else None
    if n_jobs is not None:
        return max(1, cores // parallel_jobs(int(n_jobs), cores))
    cpus = launcher.get("cpus_per_task") if launcher is not None else None
    if cpus is not None:
        return max(1, min(int(cpus), cores))
    return None


@functools.cache
def torch_default_threads() -> int:
    """torch's own choice, read once before any job changes it: a later job in the same
    process that asks for the default gets this, not what the job before it set."""
    import torch

    return torch.get_num_threads()


def set_torch_threads(threads: int | None, default: int | None) -> int:
    """Set torch's intra-op thread count to ``threads``, else ``default``, else torch's own;
    return the count in force."""
    import torch

    count = threads or default or torch_default_threads()
    torch.set_num_threads(count)
    return torch.get_num_threads()
