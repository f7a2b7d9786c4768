"""The Hydra entrypoint: ``python -m logreg_exp [overrides]`` (or ``logreg-exp``).

Hydra composes the config (its schemas, resolvers and launchers: ``registry``), and the dir
of a single run or a sweep is claimed before Hydra writes into it (``output_dir_guard``).
``main`` claims a sweep job's dir, runs the job (``single_run``) and makes its outcome a
value for sweepers or an exit status (``outcomes``). A user's mistake ends a single run with
one line on stderr and exit code 1 (``HYDRA_FULL_ERROR=1`` shows the traceback); in a sweep
it fails that job alone. This is the one module that exits the process: what ends it from
below raises ``EndProcess``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import hydra
from hydra import initialize_config_module
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from logreg_exp.hydra_compat import MAIN_ARGUMENTS, VERSION_BASE, with_mode_of_groups
from logreg_exp.outcomes import EndProcess, RunFailed, end_as, failed
from logreg_exp.output_dir_guard import end_failed_run
from logreg_exp.output_dirs import Start, claim_job_dir
from logreg_exp.provenance import COMMAND_VARIABLE, command_line
from logreg_exp.registry import register_configs, register_plugins, unknown_key
from logreg_exp.results import Monitor
from logreg_exp.startup import import_heavy_modules
from logreg_exp.sweeps.callback import summarize_unended_sweeps
from logreg_exp.sweeps.launchers import default_threads, hidden_gpu_warning, missing_plugin
from logreg_exp.sweeps.swept import keys_the_sweep_varies
from logreg_exp.training.interrupts import (
    GracefulInterrupt,
    catch_stop_signals_early,
    ignore_interrupts,
    stopped_early,
)

log = logging.getLogger("logreg_exp")

register_configs()


def compose(*overrides: str, with_hydra: bool = False) -> DictConfig:
    """The config ``python -m logreg_exp OVERRIDES`` would run with, composed outside a run
    (tests, benchmarks); ``with_hydra``: with its ``hydra`` node (launcher, sweeper, dirs)."""
    register_plugins()
    with initialize_config_module(config_module="logreg_exp.conf", **VERSION_BASE):
        return hydra.compose(
            config_name="config", overrides=list(overrides), return_hydra_config=with_hydra
        )


@hydra.main(**MAIN_ARGUMENTS, config_path="pkg://logreg_exp.conf", config_name="config")
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
        from logreg_exp.single_run import ended_job, run_job  # now: the collector is paused

        warn_of_hidden_gpus(hydra_cfg.launcher, cfg.device.name)
        threads = default_threads(hydra_cfg.launcher)
        swept = None
        if in_sweep:  # the HParams of a sweep's job: what the sweep varies
            swept = keys_the_sweep_varies(Path(hydra_cfg.sweep.dir), hydra_cfg.sweeper)
        try:
            # a single run's dir was claimed before Hydra wrote into it (OutputDirGuard)
            claim = None
            if in_sweep:
                num = OmegaConf.select(hydra_cfg, "job.num", default=None)  # None: not numbered
                job = None if num is None else str(num)
                claim = claim_job_dir(job_dir, cfg, bool(cfg.overwrite), cfg.resume, job)
            try:
                if claim is not None and claim.start is Start.ENDED:
                    outcome = ended_job(job_dir, Monitor(cfg.monitor))
                else:
                    choices = hydra_cfg.runtime.choices
                    outcome = run_job(cfg, job_dir, threads, choices, swept, not in_sweep)
            finally:
                if claim is not None:
                    claim.release()
        except Exception as err:
            outcome = failed(err, cfg, job_dir, in_sweep, time.perf_counter() - start)
    if not in_sweep:  # its files say how it ended: a signal from now on cannot change that
        ignore_interrupts()
    return end_as(outcome, in_sweep)


def warn_of_hidden_gpus(launcher: DictConfig, device: str) -> None:
    warning = hidden_gpu_warning(launcher, device)
    if warning:
        log.warning(warning)


def run_cli() -> None:
    """``python -m logreg_exp``: ``main`` after checking that the launcher or sweeper the
    command line chooses is installed. A stop signal while it imports ends it there, with
    nothing written; one before a job starts stops it as soon as it does (``main``); a sweep
    that stops early (a job interrupted, a launcher that raised) still writes its summary."""
    catch_stop_signals_early()  # where ``python -m logreg_exp`` has not already
    problem = missing_plugin(sys.argv[1:]) or unknown_key(sys.argv[1:])
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(1)
    # the command as typed, for each job's provenance.json, in this and in worker processes
    os.environ.setdefault(COMMAND_VARIABLE, command_line())
    register_plugins()
    if stopped_early():  # while it imported: nothing is written yet
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.argv[1:] = with_mode_of_groups(sys.argv[1:], "logreg_exp.conf")
    with GracefulInterrupt():
        try:
            main()
        except EndProcess as end:  # the status a job or the sweep decided (outcomes)
            if isinstance(end, RunFailed):  # a single run's user error or divergence
                end_failed_run()
                print(end.message, file=sys.stderr)
            sys.exit(end.code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        finally:
            ignore_interrupts()  # its files say how it ended; the summary is written whatever
            summarize_unended_sweeps()
