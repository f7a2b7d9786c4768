"""The Hydra entrypoint: ``python -m logreg_exp [overrides]`` (or ``logreg-exp``).

Hydra composes the config; ``main`` starts up, runs the job and maps its outcome to a value
for sweepers or an exit code. It knows the config, the output dir and how a job ends, not
tensors: the work is in ``job.run_job``. A user's mistake ends a single run with one line on
stderr and exit code 1 (``HYDRA_FULL_ERROR=1`` shows the traceback); in a sweep it fails
that job alone.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import hydra
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from logreg_exp.config import (
    DeviceConfig,
    JobConfig,
    LossConfig,
    ManualUpdaterConfig,
    OptimUpdaterConfig,
    UpdaterConfig,
    reference,
)
from logreg_exp.data.datasets import DATASETS
from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor, Outcome, Status, failure_metrics, write_metrics
from logreg_exp.startup import import_heavy_modules
from logreg_exp.sweeps.callback import summarize_unended_sweeps
from logreg_exp.sweeps.launchers import (
    default_threads,
    gpus_for_device,
    hidden_gpu_warning,
    jobs_at_once,
    missing_plugin,
    register_own_plugins,
)
from logreg_exp.training.interrupts import GracefulInterrupt

log = logging.getLogger("logreg_exp")


def path_safe(text: str) -> str:
    """A directory-name-safe form of ``text``: path separators become ``_``."""
    return text.replace("/", "_").replace("\\", "_")


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
    cs.store(group="schema/updater", name="optim", node=OptimUpdaterConfig)
    cs.store(group="schema/updater", name="manual", node=ManualUpdaterConfig)
    cs.store(group="schema", name="device", node=DeviceConfig)
    cs.store(group="schema", name="loss", node=LossConfig)


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
        from logreg_exp.job import run_job  # imported just now, with the collector paused

        warn_of_hidden_gpus(hydra_cfg.launcher, cfg.device.name)
        threads = default_threads(hydra_cfg.launcher)
        try:
            outcome = run_job(cfg, job_dir, threads, hydra_cfg.runtime.choices)
        except Exception as err:
            outcome = failed(err, cfg, job_dir, in_sweep, time.perf_counter() - start)
    return end_as(outcome, in_sweep)


def failed(
    err: Exception, cfg: DictConfig, job_dir: Path, in_sweep: bool, wall_s: float
) -> Outcome:
    """A run that raised. A single run ends here: one line for a user's mistake, else the
    traceback. A sweep's job records the failure in its metrics.json, and the sweep goes on
    (``HYDRA_FULL_ERROR=1`` stops it with the traceback)."""
    user_error = isinstance(err, ConfigError)
    if not in_sweep and user_error:
        raise RunFailed(f"error: {err}") from None
    if not in_sweep or os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise err
    if user_error:
        reason = str(err)
        log.error("error: %s", reason)
    else:
        reason = f"{type(err).__name__}: {err}"
        log.error("job failed", exc_info=err)
    monitor = Monitor(cfg.monitor)
    write_metrics(job_dir, failure_metrics(monitor, reason, wall_s))
    return Outcome(Status.FAILED, monitor.worst, reason)


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
    register_own_plugins()
    with GracefulInterrupt():
        try:
            main()
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        finally:
            summarize_unended_sweeps()
