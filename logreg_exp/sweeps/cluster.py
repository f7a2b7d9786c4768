"""Sweeps through submitit (``hydra/launcher=slurm`` and ``slurm_local``): submit every job,
then wait for each to its end and report it, however it ended.

hydra-submitit-launcher's own launcher reads its jobs' results one after another and raises
at the first job that left none (cancelled, or killed by the out-of-memory killer or a
failing node): the sweep then ends with a traceback and no summary, while its other jobs go
on. Here the sweep waits for all of them. A job without a result returns, as a job that
failed does (``cli.failed``), a value that ranks it last; its dir says what happened
(metrics.json ``interrupted`` for a cancelled job, none for a killed one), the sweep's log
says that it left no result, and the sweep ends as any other, with its summary and a
non-zero exit status (``sweeps.callback``).

submitit learns how a SLURM job ended from ``sacct``, which needs the cluster's accounting
(slurmdbd); without it, submitit would wait forever for a job that died. So the queue is
read too (``squeue``): a job it no longer lists, or lists in a final state, has ended.

A requeued job (preempted, timed out, ``scontrol requeue``) keeps its id and its dir and
stays in the queue: the sweep waits for it, and the job resumes from its ``last.pt``.
"""

from __future__ import annotations

import getpass
import logging
import math
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

from logreg_exp.hydra_compat import submitit_executor
from logreg_exp.results import Monitor, read_metrics
from logreg_exp.sweeps.summary import collect_jobs
from logreg_exp.training.interrupts import GracefulInterrupt

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often each job's result file is looked for
QUEUE_POLL_S = 15.0  # how often squeue is asked, for jobs that ended without a result
# How long a result file may take to show after its SLURM job ended (a shared file system's
# attribute cache), as submitit allows; waited once for all the jobs without one.
RESULT_GRACE_S = 15.0

# squeue's states of a job that has ended (any other: it is queued, running or requeued)
ENDED_STATES = frozenset(
    {
        "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
        "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT",
    }
)  # fmt: skip


def submit(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    """Submit the jobs as hydra-submitit-launcher's ``BaseSubmititLauncher.launch`` does
    (1.2 and 1.4: the same executor, parameters, log lines and job arguments); the submitit jobs."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    config = launcher.config
    executor_name = submitit_executor(launcher)
    params = launcher.params
    executor_keys = {"max_num_timeout", "python"}  # 1.4's plugin has python, 1.2's not
    init_keys = executor_keys | {"submitit_folder"}
    init_params = {"folder": params["submitit_folder"]}
    for key in executor_keys & set(params):
        init_params[f"{executor_name}_{key}"] = params[key]
    executor = submitit.AutoExecutor(cluster=executor_name, **init_params)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{
            key if key in base else f"{executor_name}_{key}": value
            for key, value in params.items()
            if key not in init_keys
        }
    )
    log.info(f"Submitit '{executor_name}' sweep output dir : {config.hydra.sweep.dir}")
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(config.hydra.sweep.mode), 8))
    job_params = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        job_params.append(
            (list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())
        )
    return executor.map_array(launcher, *zip(*job_params, strict=True))


class WaitingForEveryJob:
    """What the project's submitit launchers (``hydra_plugins.logreg_exp.launchers``) change
    in hydra-submitit-launcher's: ``launch`` waits for every job to its end."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        return launch_and_wait(self, job_overrides, initial_job_idx)


def launch_and_wait(
    launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> list[JobReturn]:
    """Submit the jobs, wait until every one has ended, and return each one's result.
    Ctrl-C stops the waiting and raises KeyboardInterrupt (SLURM jobs go on on the cluster;
    local ones, in the terminal's process group, get the Ctrl-C too)."""
    jobs = submit(launcher, job_overrides, initial_job_idx)
    with GracefulInterrupt() as interrupt:
        try:
            wait_for_all(jobs, interrupt)
        except KeyboardInterrupt:
            if submitit_executor(launcher) == "slurm":  # Ctrl-C reached this process, not the jobs
                ids = ",".join(sorted({str(job.job_id).split("_")[0] for job in jobs}))
                log.warning(
                    "stopped waiting; the jobs go on on the cluster (squeue --jobs=%s; "
                    "scancel %s stops them)", ids, ids.replace(",", " "),
                )  # fmt: skip
            raise
    config = launcher.config
    monitor = config.get("monitor", Monitor.val_loss)  # the schema's Monitor
    return job_returns(
        jobs, job_overrides, initial_job_idx, Path(str(config.hydra.sweep.dir)),
        str(getattr(monitor, "value", monitor)),
    )  # fmt: skip


def wait_for_all(
    jobs: Sequence[Any], stop_requested: Callable[[], bool], queue: Callable | None = None
) -> None:
    """Return once every job has ended: its result file is there, submitit's watcher says
    so, or (SLURM jobs) the queue says so. KeyboardInterrupt when ``stop_requested()``.
    ``queue``: reads the queue's states (``queue_states``)."""
    from submitit.slurm.slurm import SlurmJob

    queue = queue or queue_states
    pending = list(jobs)
    asked = -math.inf
    while pending:
        pending = [job for job in pending if not job.done()]
        queued = [job for job in pending if isinstance(job, SlurmJob)]
        if queued and time.monotonic() - asked >= QUEUE_POLL_S:
            asked = time.monotonic()
            states = queue(sorted({str(job.job_id).split("_")[0] for job in queued}))
            if states is not None:
                ended = {str(job.job_id) for job in queued if ended_in(states, str(job.job_id))}
                pending = [job for job in pending if str(job.job_id) not in ended]
        if stop_requested():
            raise KeyboardInterrupt
        if pending:
            time.sleep(POLL_S)


def ended_in(states: dict[str, str], job_id: str) -> bool:
    """Whether the queue's ``states`` say that the job has ended: not listed (the queue
    forgets a job some minutes after its end), or listed in a final state."""
    state = states.get(job_id)
    return state is None or state in ENDED_STATES


def queue_states(job_ids: Sequence[str]) -> dict[str, str] | None:
    """``{job id: state}`` of this user's jobs in the SLURM queue (an array's tasks one by
    one, as ``123_4``), or None when squeue does not answer."""
    command = ["squeue", "--noheader", "--array", "--format=%i %T", f"--user={getpass.getuser()}"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as err:
        log.debug("squeue did not answer: %s", err)
        return None
    wanted = tuple(job_ids)
    states = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].split("_")[0] in wanted:
            states[parts[0]] = parts[1]
    return states


def job_returns(
    jobs: Sequence[Any],
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    sweep_dir: Path,
    default_monitor: str,
) -> list[JobReturn]:
    """Each ended job's JobReturn; for a job that left no result, one whose value ranks it
    last, logged. ``default_monitor``: the sweep config's, for a job that did not say."""
    from submitit.slurm.slurm import SlurmJob

    deadline = time.monotonic() + RESULT_GRACE_S
    missing = [job for job in jobs if isinstance(job, SlurmJob)]
    while missing and time.monotonic() < deadline:
        missing = [job for job in missing if not job.paths.result_pickle.exists()]
        if missing:
            time.sleep(POLL_S)
    dirs = {job.num: job.dir for job in collect_jobs(sweep_dir) if job.dir is not None}
    returns = []
    for num, (job, overrides) in enumerate(
        zip(jobs, job_overrides, strict=True), start=initial_job_idx
    ):
        if job.paths.result_pickle.exists():
            try:
                returns.append(job.results()[0])
                continue
            except Exception as err:  # the job failed outside the run (submitit's own error)
                reason = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        else:
            reason = f"no result file (state {job.state})"
        log.error("job #%d (%s) ended without a result: %s; its log: %s",
                  num, job.job_id, reason, job.paths.stderr)  # fmt: skip
        monitor = job_monitor(dirs.get(num), overrides, default_monitor)
        returns.append(
            JobReturn(
                overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=monitor.worst
            )
        )
    return returns


def job_monitor(job_dir: Path | None, overrides: Sequence[str], default: str) -> Monitor:
    """The metric a job monitored: as its metrics.json says, else as its overrides set it."""
    said = read_metrics(job_dir).metrics.get("monitor") if job_dir is not None else None
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "monitor" and said is None:
            said = value
    try:
        return Monitor(said or default)
    except ValueError:
        return Monitor(default)
