"""The Hydra callback that claims a single run's dir and a sweep's dir before Hydra writes
into it (``output_dirs``), configured first under ``hydra.callbacks`` in conf/config.yaml.
A dir it cannot claim ends the process (``EndProcess``) before anything runs; with
``dry_run=true`` it prints the plan (``sweeps.dry_run``) instead and ends it with status 0."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from logreg_exp.config import check_known_keys, validated, without_hydra
from logreg_exp.errors import ConfigError
from logreg_exp.outcomes import EndProcess
from logreg_exp.output_dirs import (
    Claim,
    claim_run_dir,
    claim_sweep_dir,
    resume_mode,
    undo_failed_start,
)
from logreg_exp.run_files import log_file_name

T = TypeVar("T")

# The guard of the single run under way, until its on_run_end: Hydra 1.3 does not call
# on_run_end for a run that ends by SystemExit (a RunFailed), 1.4 does.
RUNNING: list[OutputDirGuard] = []


class OutputDirGuard(Callback):
    """Claims a single run's dir and a sweep's dir (``output_dirs``) before Hydra writes into
    it: Hydra writes ``.hydra/`` before the task function runs, too late to keep the files
    of a run already there. Holds the dir's lock until the run or sweep ends. Configured
    first under ``hydra.callbacks`` in conf/config.yaml."""

    def __init__(self) -> None:
        self.claim: Claim | None = None
        self.run_dir: tuple[Path, str] | None = None  # a single run's dir and log file

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """With ``overwrite=true`` or ``resume=false``, which may delete the run that is
        there, the config's values are checked first: a typo must not cost that run. A key
        no schema declares (``+epoch=3``) is refused before anything is written."""
        HydraConfig.instance().set_config(config)  # for ${hydra:...} in the dir's name
        dry_run_or_go_on(config, sweep=False)
        path = Path(str(config.hydra.run.dir))
        log_file = log_file_name(config.hydra.job.name)
        checked_or_end(lambda: check_known_keys(config))
        if config.overwrite or resume_mode(config.resume) == "false":
            checked_or_end(lambda: validated(without_hydra(config)))
        self.claim = checked_or_end(
            lambda: claim_run_dir(path, config, config.overwrite, log_file, config.resume)
        )
        self.run_dir = (path, log_file)
        RUNNING.append(self)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        dry_run_or_go_on(config, sweep=True)
        path = Path(str(config.hydra.sweep.dir))
        log_file = log_file_name(config.hydra.job.name)
        self.claim = checked_or_end(
            lambda: claim_sweep_dir(path, config, config.overwrite, log_file, config.resume)
        )

    def on_run_end(self, *args: Any, job_return: JobReturn | None = None, **kwargs: Any) -> None:
        """A run that failed before it wrote a result leaves no dir behind, only its error."""
        failed = job_return is not None and job_return.status is JobStatus.FAILED
        self.end_run(failed)

    def end_run(self, failed: bool) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        if failed and self.claim is not None and self.run_dir is not None:
            undo_failed_start(self.claim, *self.run_dir)
            self.claim = None
        self.release()

    def on_multirun_end(self, *args: Any, **kwargs: Any) -> None:
        self.release()

    def release(self) -> None:
        if self.claim is not None:
            self.claim.release()
            self.claim = None


def dry_run_or_go_on(config: DictConfig, sweep: bool) -> None:
    """With ``dry_run=true``: print the plan and end the process (0), before any dir is
    claimed; a plan that cannot be made is one line and status 1."""
    if not config.get("dry_run", False):
        return
    from logreg_exp.sweeps.dry_run import plan_of

    plan = checked_or_end(lambda: plan_of(config, sweep))
    print(plan, end="", flush=True)
    raise EndProcess(0)


def end_failed_run() -> None:
    """What ``on_run_end`` does for a single run that failed, where Hydra did not call it."""
    while RUNNING:
        RUNNING[-1].end_run(failed=True)


def checked_or_end(check: Callable[[], T]) -> T:
    """``check()``; its ConfigError is one line on stderr and ends the process with exit
    status 1, and so does any other error, so that nothing runs in a dir that was not
    checked (Hydra would turn a callback's exception into a warning and go on)."""
    try:
        return check()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
    except Exception as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        print(f"error: cannot check the output dir: {type(err).__name__}: {err}", file=sys.stderr)
    raise EndProcess(1)
