"""``hydra/launcher=joblib``: the sweep's jobs in parallel worker processes, where a worker
that dies fails its own job alone.

hydra-joblib-launcher hands the whole sweep to one ``joblib.Parallel`` call. When a worker
process dies (the kernel's out-of-memory killer, a ``kill``), loky breaks the pool: the
jobs beside it are killed, the rest never start, and the sweep ends in
``TerminatedWorkerError`` without a summary. This launcher runs the same jobs, by the same
function (the plugin's ``execute_job``, so each job's config, dir and return are exactly
the plugin's), on ``n_jobs`` slots, each a loky executor of one worker process that is
reused from job to job. A worker that dies breaks only its slot: its job is recorded as
failed (``metrics.json`` in its dir, with the reason), the slot gets a new worker, and the
sweep goes on; the summary lists the job, and the sweep exits 1.

It takes the plugin's config keys (``hydra.launcher.n_jobs`` and the rest) and registers
itself under the plugin's name (``cli.register_configs``); of the keys, ``n_jobs`` counts
(as joblib reads it: -1 is every usable core); the others tune ``joblib.Parallel``, which
this launcher does not call.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from logreg_exp.hydra_compat import execute_joblib_job, store_replacing
from logreg_exp.results import Monitor, failure_metrics, read_metrics, write_metrics
from logreg_exp.run_files import HYDRA_DIR, HYDRA_YAML, METRICS_FILE, OVERRIDES_YAML
from logreg_exp.sweeps.launchers import jobs_at_once
from logreg_exp.training.interrupts import GracefulInterrupt

log = logging.getLogger(__name__)

# Hydra instantiates launchers only from the hydra_plugins namespace; the class there is this
# module's JoblibLauncher, by another name.
TARGET = "hydra_plugins.logreg_exp.launchers.JoblibLauncher"
# How often the sweep looks for a stop signal (Ctrl-C, SIGTERM: ``kill PID``) while its jobs
# run; the signal only records a request (``training.interrupts``).
STOP_POLL_S = 0.2


class JoblibLauncher(Launcher):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.joblib = kwargs
        self.pool: Slots | None = None  # kept from launch to launch (a search's batches)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        from joblib.externals.loky.process_executor import BrokenProcessPool

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        slots = min(jobs_at_once(self.joblib.get("n_jobs") or -1), len(job_overrides))
        log.info(
            "Launching %d jobs, %d at a time in worker processes of their own (loky), sweep "
            "output dir: %s",
            len(job_overrides),
            slots,
            sweep_dir,
        )
        for i, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + i, " ".join(filter_overrides(overrides)))

        state = Singleton.get_state()
        if self.pool is None or self.pool.n != slots:
            if self.pool is not None:
                self.pool.close()
            self.pool = pool = Slots(slots)
            atexit.register(pool.close)
        pool = self.pool
        waiting = deque(enumerate(job_overrides))
        returns: list[JobReturn | None] = [None] * len(job_overrides)
        started: dict[Future, tuple[int, int, float]] = {}  # future -> slot, job, start
        try:
            with GracefulInterrupt() as stop:  # a stop signal ends the sweep, as Ctrl-C does
                while waiting or started:
                    for slot in pool.free(busy={s for s, _, _ in started.values()}):
                        if not waiting:
                            break
                        i, overrides = waiting.popleft()
                        args = (initial_job_idx + i, overrides, self.hydra_context, self.config)
                        future = pool.submit(
                            slot, execute_joblib_job, *args, self.task_function, state
                        )
                        started[future] = (slot, i, time.perf_counter())
                    done, _ = wait(started, timeout=STOP_POLL_S, return_when=FIRST_COMPLETED)
                    if stop():
                        raise KeyboardInterrupt
                    for future in done:
                        slot, i, start = started.pop(future)
                        try:
                            returns[i] = future.result()
                        except Exception as err:  # the worker died, or the job could not start
                            if isinstance(err, BrokenProcessPool):
                                pool.replace(slot)
                            wall_s = time.perf_counter() - start
                            returns[i] = self.failed_job(
                                initial_job_idx + i, job_overrides[i], err, wall_s
                            )
        except BaseException:  # a stop signal, or a bug here: no worker outlives the sweep
            pool.close()
            raise
        assert all(ret is not None for ret in returns)
        return returns  # type: ignore[return-value]

    def failed_job(
        self, num: int, overrides: Sequence[str], err: BaseException, wall_s: float
    ) -> JobReturn:
        """The return of job ``num``, whose worker died or which could not start: a
        failed ``metrics.json`` in its dir, and the value a failed job returns (worst)."""
        reason = death_reason(err)
        sweep_config = self.job_config(num, overrides)
        job_dir = job_dir_of(sweep_config)
        log.error("job #%d (%s) failed: %s", num, " ".join(overrides), reason)
        monitor = Monitor(sweep_config.monitor)
        try:
            record_job(job_dir, sweep_config)
            if read_metrics(job_dir).status != "failed":
                write_metrics(job_dir, failure_metrics(monitor, reason, wall_s))
        except OSError as write_err:
            log.error("error: cannot write %s: %s", job_dir / METRICS_FILE, write_err)
        task_cfg = OmegaConf.masked_copy(sweep_config, [k for k in sweep_config if k != "hydra"])
        ret = JobReturn(
            overrides=list(overrides),
            cfg=task_cfg,
            hydra_cfg=sweep_config,
            working_dir=str(Path.cwd()),
            task_name=str(sweep_config.hydra.job.name),
            status=JobStatus.COMPLETED,  # the sweep goes on; metrics.json says it failed
        )
        ret.return_value = monitor.worst
        return ret

    def job_config(self, num: int, overrides: Sequence[str]) -> DictConfig:
        """Job ``num``'s config, as ``execute_job`` composes it in the worker."""
        assert self.hydra_context is not None and self.config is not None
        sweep_config = self.hydra_context.config_loader.load_sweep_config(
            self.config, list(overrides)
        )
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{num}"
            sweep_config.hydra.job.num = num
        HydraConfig.instance().set_config(sweep_config)
        return sweep_config


def register_config() -> None:
    """Register this launcher with Hydra, and store it in Hydra's ConfigStore as
    ``hydra/launcher/joblib``, with the plugin's keys and defaults. Hydra's plugin scan
    stores the plugin's own entry there, so the scan is run (once a process) first; it does
    not see the hydra_plugins module of an editable install, hence ``register``."""
    from hydra.core.plugins import Plugins
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf

    from hydra_plugins.logreg_exp.launchers import JoblibLauncher as Registered

    Plugins.instance().register(Registered)
    node = OmegaConf.structured(JobLibLauncherConf(_target_=TARGET))
    store_replacing(group="hydra/launcher", name="joblib", node=node, provider="logreg_exp")


def job_dir_of(sweep_config: DictConfig) -> Path:
    """Where Hydra's ``run_job`` puts a sweep job: ``hydra.sweep.dir``/``hydra.sweep.subdir``."""
    sweep = OmegaConf.select(sweep_config, "hydra.sweep.dir")
    return Path(str(sweep)) / str(OmegaConf.select(sweep_config, "hydra.sweep.subdir"))


def record_job(job_dir: Path, sweep_config: DictConfig) -> None:
    """Give a job that died before Hydra wrote its ``.hydra/`` the files that make it a job
    of the sweep (its number and overrides, for the summary), as Hydra writes them."""
    hydra_dir = job_dir / str(sweep_config.hydra.output_subdir or HYDRA_DIR)
    if (hydra_dir / HYDRA_YAML).exists():
        return
    hydra_dir.mkdir(parents=True, exist_ok=True)
    hydra_only = OmegaConf.masked_copy(sweep_config, ["hydra"])
    OmegaConf.save(hydra_only, hydra_dir / HYDRA_YAML)
    OmegaConf.save(sweep_config.hydra.overrides.task, hydra_dir / OVERRIDES_YAML)


def death_reason(err: BaseException) -> str:
    """Why a job's worker did not return: ``its worker process died (SIGKILL(-9): killed,
    e.g. by the out-of-memory killer)``, or the error it raised."""
    from joblib.externals.loky.process_executor import BrokenProcessPool

    if isinstance(err, BrokenProcessPool):
        codes = re.search(r"exit codes of the workers are \{(.*?)\}", str(err))
        how = codes.group(1) if codes else "no exit code"
        return f"its worker process died ({how}: killed, e.g. by the out-of-memory killer)"
    return f"{type(err).__name__}: {err}"


PR_SET_PDEATHSIG = 1  # prctl(2)


def stop_with_sweep(sweep_pid: int) -> None:
    """In a worker, first thing: have the kernel send it SIGTERM when the sweep's process
    ends, however it ends (``kill``, the out-of-memory killer), so that no worker trains on
    for nobody. Linux's ``PR_SET_PDEATHSIG``; elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != sweep_pid:  # it ended before the call
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Slots:
    """``n`` single-worker loky executors: one worker's death breaks only its own."""

    n: int

    def __post_init__(self) -> None:
        self.executors: list[Any] = [None] * self.n

    def free(self, busy: set[int]) -> list[int]:
        return [slot for slot in range(self.n) if slot not in busy]

    def submit(self, slot: int, fn: Any, *args: Any) -> Future:
        from joblib.externals.loky import ProcessPoolExecutor

        if self.executors[slot] is None:
            self.executors[slot] = ProcessPoolExecutor(
                max_workers=1, initializer=stop_with_sweep, initargs=(os.getpid(),)
            )
        return self.executors[slot].submit(fn, *args)

    def replace(self, slot: int) -> None:
        """Drop ``slot``'s executor (broken, or in doubt); the next job there gets a new one."""
        if self.executors[slot] is not None:
            self.executors[slot].shutdown(wait=False, kill_workers=True)
            self.executors[slot] = None

    def close(self) -> None:
        """Stop every worker: at exit, or when the sweep is interrupted."""
        for slot in range(self.n):
            if self.executors[slot] is not None:
                self.executors[slot].shutdown(wait=True, kill_workers=True)
                self.executors[slot] = None
