"""The Hydra entrypoint: ``python -m logreg_exp [overrides]`` (or ``logreg-exp``).

Hydra composes the config; ``main`` starts up, runs the job and maps its outcome to a value
for sweepers or an exit code. It knows the config, the output dir and how a job ends, not
tensors: the work is in ``job.run_job``. A user's mistake ends a single run with one line on
stderr and exit code 1 (``HYDRA_FULL_ERROR=1`` shows the traceback); in a sweep it fails
that job alone.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import hydra
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from logreg_exp.config import (
    UPDATER_SCHEMAS,
    DeviceConfig,
    JobConfig,
    LossConfig,
    UpdaterConfig,
    reference,
    validated,
)
from logreg_exp.data.datasets import DATASETS
from logreg_exp.errors import ConfigError, OutputError, os_reason
from logreg_exp.files import display_path
from logreg_exp.output_dirs import (
    Claim,
    OutputDirInUse,
    Start,
    claim_job_dir,
    claim_run_dir,
    claim_sweep_dir,
    resume_mode,
)
from logreg_exp.results import (
    METRICS_FILE,
    Monitor,
    Outcome,
    Status,
    failure_metrics,
    write_metrics,
)
from logreg_exp.startup import import_heavy_modules
from logreg_exp.sweeps.callback import summarize_unended_sweeps
from logreg_exp.sweeps.launchers import (
    JOBLIB,
    default_threads,
    gpus_for_device,
    hidden_gpu_warning,
    is_installed,
    jobs_at_once,
    missing_plugin,
    register_own_plugins,
)
from logreg_exp.sweeps.swept import keys_the_sweep_varies
from logreg_exp.training.interrupts import GracefulInterrupt, ignore_interrupts

log = logging.getLogger("logreg_exp")
T = TypeVar("T")


NAME_BYTES = 150  # of a job dir's name after its number; file systems allow 255
KEPT_BYTES = 120  # of a name too long for that, kept before its hash


def path_safe(text: str) -> str:
    """A directory-name-safe form of ``text`` (a job's overrides): path separators become
    ``_``, and a name longer than NAME_BYTES in UTF-8 keeps its first KEPT_BYTES and ends in
    ``-`` and 12 hex digits of its SHA-256, the same on every machine and in every launcher.
    The job's full overrides are in its ``.hydra/overrides.yaml`` and the sweep summary."""
    name = text.replace("/", "_").replace("\\", "_")
    encoded = name.encode()
    if len(encoded) <= NAME_BYTES:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:12]
    return encoded[:KEPT_BYTES].decode(errors="ignore") + "-" + digest


def zero_pad(number: int, width: int) -> str:
    """``number`` with leading zeros to ``width`` digits (``0007``), so that names holding it
    sort in numeric order as text; a longer number is written whole."""
    return f"{int(number):0{int(width)}d}"


def register_configs() -> None:
    """Put every schema in Hydra's ConfigStore and our resolvers in OmegaConf; call before
    Hydra composes the config.

    Each schema is stored under ``schema/`` (``schema/dataset/gaussian2d`` validates
    ``dataset/gaussian2d.yaml``), apart from the groups a user chooses from, so
    ``updater=foo`` lists only real options; each YAML file lists its schema first in its
    defaults list, placed at its own package with ``@_here_``.
    """
    resolvers = {
        "path_safe": path_safe,
        "zero_pad": zero_pad,
        "gpus_for_device": gpus_for_device,
        "jobs_at_once": jobs_at_once,
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
    cs = ConfigStore.instance()
    cs.store(group="schema", name="job", node=JobConfig)
    for name, dataset in DATASETS.items():
        cs.store(group="schema/dataset", name=name, node=dataset.schema)
    for name, schema in UPDATER_SCHEMAS.items():
        cs.store(group="schema/updater", name=name, node=schema)
    cs.store(group="schema", name="device", node=DeviceConfig)
    cs.store(group="schema", name="loss", node=LossConfig)


def register_plugins() -> None:
    """This package's launchers, registered with Hydra: hydra/launcher=vectorized, and the
    joblib launcher that replaces the plugin's. It runs Hydra's plugin scan, so the command
    line's check for a missing extra (``missing_plugin``) comes first."""
    register_own_plugins()  # hydra/launcher=vectorized
    if is_installed(JOBLIB.package):
        from logreg_exp.sweeps.joblib_launcher import register_config

        register_config()


register_configs()


def config_reference() -> str:
    """The README's table of every key's allowed values, from the schemas."""
    return reference(
        [
            ("", JobConfig, "every run"),
            ("updater.", UpdaterConfig, "both updaters"),
            *(("dataset.", d.schema, f"dataset={name}") for name, d in DATASETS.items()),
        ]
    )


def compose(*overrides: str, with_hydra: bool = False) -> DictConfig:
    """The config ``python -m logreg_exp OVERRIDES`` would run with, composed outside a run
    (tests, benchmarks); ``with_hydra``: with its ``hydra`` node (launcher, sweeper, dirs)."""
    register_plugins()
    with initialize_config_module(config_module="logreg_exp.conf", version_base="1.3"):
        return hydra.compose(
            config_name="config", overrides=list(overrides), return_hydra_config=with_hydra
        )


class RunFailed(CompactHydraException):
    """Hydra prints this exception's message alone, without a traceback."""


@hydra.main(version_base="1.3", config_path="pkg://logreg_exp.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """One job in its Hydra output dir: start up, run, and end as the outcome says; return
    the best monitored value, for sweepers.

    A stop signal from its first line on (while torch is imported, the data are built) ends
    the job as soon as it would train, with its files written. In a submitit job this takes
    the signals over from submitit's handlers, and hands a SIGUSR2 on to submitit's once the
    files are written: submitit then requeues the job (``training.interrupts``).
    """
    with GracefulInterrupt():
        start = time.perf_counter()
        hydra_cfg = HydraConfig.get()
        job_dir = Path(hydra_cfg.runtime.output_dir)
        in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
        import_heavy_modules(cfg)
        from logreg_exp.job import ended_job, run_job  # imported now, with the collector paused

        warn_of_hidden_gpus(hydra_cfg.launcher, cfg.device.name)
        threads = default_threads(hydra_cfg.launcher)
        swept = None
        if in_sweep:  # the HParams of a sweep's job: what the sweep varies
            swept = keys_the_sweep_varies(Path(hydra_cfg.sweep.dir), hydra_cfg.sweeper)
        try:
            # a single run's dir was claimed before Hydra wrote into it (OutputDirGuard)
            claim = None
            if in_sweep:
                claim = claim_job_dir(job_dir, cfg, bool(cfg.overwrite), cfg.resume)
            try:
                if claim is not None and claim.start is Start.ENDED:
                    outcome = ended_job(job_dir, Monitor(cfg.monitor))
                else:
                    outcome = run_job(cfg, job_dir, threads, hydra_cfg.runtime.choices, swept)
            finally:
                if claim is not None:
                    claim.release()
        except Exception as err:
            outcome = failed(err, cfg, job_dir, in_sweep, time.perf_counter() - start)
    if not in_sweep:  # its files say how it ended: a signal from now on cannot change that
        ignore_interrupts()
    return end_as(outcome, in_sweep)


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
    if not in_sweep and user_error:
        raise RunFailed(f"error: {err}") from None
    if not in_sweep or os.environ.get("HYDRA_FULL_ERROR") == "1":
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
    """What the entrypoint makes of a job's outcome: its value for a sweeper (a job that did
    not complete ranks last); for a diverged single run, a one-line error and exit code 1;
    interrupted, exit code 130, as a shell reports Ctrl-C (a sweep stops there too)."""
    if outcome.status is Status.INTERRUPTED:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    if outcome.status is Status.DIVERGED and not in_sweep:
        raise RunFailed(f"error: {outcome.message}")
    return outcome.value


class OutputDirGuard(Callback):
    """Claims a single run's dir and a sweep's dir (``output_dirs``) before Hydra writes into
    it: Hydra writes ``.hydra/`` before the task function runs, too late to keep the files
    of a run already there. Holds the dir's lock until the run or sweep ends. Configured
    first under ``hydra.callbacks`` in conf/config.yaml."""

    def __init__(self) -> None:
        self.claim: Claim | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """With ``overwrite=true`` or ``resume=false``, which may delete the run that is
        there, the config's values are checked first: a typo must not cost that run."""
        HydraConfig.instance().set_config(config)  # for ${hydra:...} in the dir's name
        path = Path(str(config.hydra.run.dir))
        log_file = f"{config.hydra.job.name}.log"
        if config.overwrite or resume_mode(config.resume) == "false":
            one_line(lambda: validated(task_config(config)))
        self.claim = one_line(
            lambda: claim_run_dir(path, config, config.overwrite, log_file, config.resume)
        )

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        path = Path(str(config.hydra.sweep.dir))
        log_file = f"{config.hydra.job.name}.log"
        self.claim = one_line(
            lambda: claim_sweep_dir(path, config, config.overwrite, log_file, config.resume)
        )

    def on_run_end(self, *args: Any, **kwargs: Any) -> None:
        self.release()

    def on_multirun_end(self, *args: Any, **kwargs: Any) -> None:
        self.release()

    def release(self) -> None:
        if self.claim is not None:
            self.claim.release()
            self.claim = None


def task_config(config: DictConfig) -> DictConfig:
    """``config`` without its ``hydra`` node: what the task function gets."""
    task = copy.deepcopy(config)
    with open_dict(task):
        del task["hydra"]
    return task


def one_line(check: Callable[[], T]) -> T:
    """``check()``; its ConfigError is one line on stderr and exit status 1, and so is any
    other error, so that nothing runs in a dir that was not checked (Hydra would turn a
    callback's exception into a warning and go on)."""
    try:
        return check()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
    except Exception as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        print(f"error: cannot check the output dir: {type(err).__name__}: {err}", file=sys.stderr)
    sys.exit(1)


def warn_of_hidden_gpus(launcher: DictConfig, device: str) -> None:
    warning = hidden_gpu_warning(launcher, device)
    if warning:
        log.warning(warning)


def run_cli() -> None:
    """``python -m logreg_exp``: ``main`` after checking that the launcher or sweeper the
    command line chooses is installed. A stop signal before a job starts stops it as soon as
    it does (``main``); a sweep that stops early (a job interrupted, a launcher that raised)
    still writes its summary."""
    problem = missing_plugin(sys.argv[1:])
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(1)
    register_plugins()
    with GracefulInterrupt():
        try:
            main()
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        finally:
            summarize_unended_sweeps()
