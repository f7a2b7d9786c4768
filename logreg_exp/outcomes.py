"""How a job's end becomes what the world sees: a failure recorded in its metrics.json, its
value for a sweeper, and the exit status of the process.

The rules are here, below the entrypoint, so that the launchers' own jobs (a vectorized
group's, a joblib worker's) end by them too; only the entrypoint (``cli``) exits the process,
with the status an ``EndProcess`` raised here carries.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from logreg_exp.errors import ConfigError, OutputError, os_reason
from logreg_exp.files import display_path
from logreg_exp.output_dirs import OutputDirInUse
from logreg_exp.results import Monitor, Outcome, Status, failure_metrics, write_metrics
from logreg_exp.run_files import METRICS_FILE

log = logging.getLogger("logreg_exp")  # the entrypoint's lines, under the name they have had


class EndProcess(SystemExit):
    """The process ends with exit status ``code``, what it says printed already (or, where
    given, ``message``, which the entrypoint prints). Raised where Hydra runs this package's
    code (a callback, a launcher, a job), which lets a SystemExit through, up to the
    entrypoint, which exits with ``code``; a job process of its own (submitit's, a joblib
    worker) that has no entrypoint around the job ends with it too."""

    code: int

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(code)
        self.message = message

    def __reduce__(self) -> tuple:
        return type(self), (self.code, self.message)


class RunFailed(EndProcess):
    """A single run that failed by a user's mistake or diverged: its one line, and exit
    status 1. Not an exception for Hydra to report: Hydra 1.4 prints a job's exception with
    its traceback, 1.3 between lines of its own."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(code, message)

    def __reduce__(self) -> tuple:
        return type(self), (self.message, self.code)

    def __str__(self) -> str:
        return self.message or ""


def failed(
    err: Exception, cfg: DictConfig, job_dir: Path, in_sweep: bool, wall_s: float
) -> Outcome:
    """A run that raised. A single run ends here: one line for a user's mistake, else the
    traceback. A sweep's job records the failure in its metrics.json, and the sweep goes on
    (``HYDRA_FULL_ERROR=1`` stops it with the traceback). A file that could not be written
    is recorded in a single run too: its run had started writing."""
    user_error = isinstance(err, ConfigError)
    reason = str(err) if user_error else f"{type(err).__name__}: {err}"
    monitor = Monitor(cfg.monitor)
    if (in_sweep or isinstance(err, OutputError)) and not isinstance(err, OutputDirInUse):
        record_failure(job_dir, failure_metrics(monitor, reason, wall_s))
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    if not in_sweep and user_error and not full_error:
        raise RunFailed(f"error: {err}") from None
    if not in_sweep or full_error:
        raise err
    if user_error:
        log.error("error: %s", reason)
    else:
        log.error("job failed", exc_info=err)
    return Outcome(Status.FAILED, monitor.worst, reason)


def record_failure(job_dir: Path, metrics: dict) -> None:
    """Write a failed job's metrics.json if the disk lets it; say so in the log if not."""
    try:
        write_metrics(job_dir, metrics)
    except OSError as err:
        path = display_path(job_dir / METRICS_FILE)
        log.warning("%s not written either: %s", path, os_reason(err))


def end_as(outcome: Outcome, in_sweep: bool) -> float:
    """What a job's outcome makes of it: its value for a sweeper (a job that did not complete
    ranks last); for a diverged single run, a one-line error and exit code 1; interrupted,
    exit code 130, as a shell reports Ctrl-C (a sweep stops there too)."""
    if outcome.status is Status.INTERRUPTED:
        print("interrupted", file=sys.stderr)
        raise EndProcess(130)
    if outcome.status is Status.DIVERGED and not in_sweep:
        raise RunFailed(f"error: {outcome.message}")
    return outcome.value
