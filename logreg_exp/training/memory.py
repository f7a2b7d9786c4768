"""What a run will hold in memory, against what the machine has: checked before any data are
loaded, so a run too large for the machine ends with one line at once, not with a
MemoryError (or the out-of-memory killer) after its first epoch.

The estimate follows ``build.build_pipeline`` phase by phase, and the largest phase is the
peak: the data as loaded, held twice while the split shuffles them out of place (``python
-m benchmarks.bench`` measures about 2.04x the data at 1M x 64). What the machine has is the
least of: the kernel's estimate of memory available without swapping (``MemAvailable``), the
room left under the process's cgroup limit (a container, a SLURM job) and its address-space
limit (``ulimit -v``). Where none can be read, nothing is checked.
"""

from __future__ import annotations

import contextlib
import math
import resource
from pathlib import Path
from typing import Any

import numpy as np

from logreg_exp.errors import ConfigError

CGROUP = Path("/sys/fs/cgroup")
OPTIMIZER_COPIES = 4  # parameters, gradients and up to two optimizer states (Adam's)


def memory_needed(cfg: Any, dataset: Any) -> int:
    """Bytes the run ``cfg`` will hold at its peak, from the shape the dataset reports
    before it is loaded (``Dataset.shape``)."""
    n, d = dataset.shape()
    load = np.dtype(dataset.load_dtype(np.dtype(cfg.dtype.value))).itemsize
    run = np.dtype(cfg.dtype.value).itemsize
    n_train = n - round(cfg.dataset.val_fraction * n)
    row_load, row_run = (d + 1) * load, (d + 1) * run  # features and label
    phases = (
        n * row_load + n * dataset.load_overhead(d),  # loading, with its temporaries
        2 * n * row_load,  # the split's shuffled copy beside the loaded data
        n * row_load + (n * row_run if run != load else 0),  # tensors of the run's dtype
        n * row_run + n_train * row_run + 2 * n * run,  # training: reorder buffer, scores
    )
    return max(phases) + OPTIMIZER_COPIES * (d + 1) * run


def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping, as far as the machine
    tells (Linux); None where it does not."""
    limits = [meminfo_available(), cgroup_room(), address_space_room()]
    known = [limit for limit in limits if limit is not None]
    return min(known) if known else None


def meminfo_available() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def cgroup_room() -> int | None:
    """The room under this process's cgroup memory limit (v2, else v1); None if unlimited."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        own = Path("/proc/self/cgroup").read_text().splitlines()
        v2 = next((line.split(":", 2)[2] for line in own if line.startswith("0::")), None)
        if v2 is not None:
            group = CGROUP / v2.lstrip("/")
            limit = (group / "memory.max").read_text().strip()
            if limit != "max":
                return int(limit) - int((group / "memory.current").read_text())
            return None
        v1 = CGROUP / "memory"
        limit_v1 = int((v1 / "memory.limit_in_bytes").read_text())
        if limit_v1 < 2**60:  # v1 writes a huge number for "no limit"
            return limit_v1 - int((v1 / "memory.usage_in_bytes").read_text())
    return None


def address_space_room() -> int | None:
    """The room under ``ulimit -v`` (RLIMIT_AS), from this process's size; None if unset."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        return soft - size
    return None


def size_text(nbytes: float) -> str:
    """``3.2 GiB``: a size in binary units, as ``free -h`` shows them."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = min(int(math.log(max(nbytes, 1), 1024)), len(units) - 1)
    return f"{nbytes / 1024**power:.1f} {units[power]}"


def check_memory(cfg: Any, dataset: Any) -> None:
    """ConfigError, naming the sizes, if the run ``cfg`` needs more memory than the machine
    has available."""
    available = available_memory()
    if available is None:
        return
    needed = memory_needed(cfg, dataset)
    if needed > available:
        n, d = dataset.shape()
        raise ConfigError(
            f"{dataset.describe()}: this run needs about {size_text(needed)} of memory "
            f"({n:,} samples x {d:,} features, held twice while they are split), but "
            f"{size_text(max(available, 0))} is available; use less data"
            + (" or dtype=float32" if cfg.dtype.value != "float32" else "")
        )
