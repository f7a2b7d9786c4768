"""Hydra callbacks that act when a sweep ends, whatever launcher ran its jobs."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from logreg_exp.artifacts import METRICS_FILE

log = logging.getLogger(__name__)


def job_statuses(sweep_dir: Path) -> dict[Path, str]:
    """Each job dir below ``sweep_dir`` and the status in its ``metrics.json``."""
    statuses = {}
    for path in sorted(Path(sweep_dir).rglob(METRICS_FILE)):
        try:
            statuses[path.parent] = json.loads(path.read_text()).get("status", "unknown")
        except (OSError, ValueError):
            statuses[path.parent] = "unreadable"
    return statuses


class ExitNonZeroOnFailedJobs(Callback):
    """After every job has run, exit 1 if any job failed, so scripts notice.

    A failed job does not stop the others (it returns a value that ranks it last); this
    is where the sweep as a whole reports it.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        statuses = job_statuses(Path(config.hydra.sweep.dir))
        failed = [job for job, status in statuses.items() if status in ("failed", "unreadable")]
        if failed:
            names = ", ".join(job.name for job in failed)
            log.error("%d of %d jobs failed: %s", len(failed), len(statuses), names)
            sys.exit(1)
