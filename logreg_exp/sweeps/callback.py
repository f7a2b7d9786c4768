"""Hydra callback for sweeps: the plan at the start, each job's place in its log, and at the
end the summary, the picture and the sweep's exit status (an ``EndProcess`` the entrypoint
exits with).

Configured (on by default) under ``hydra.callbacks.sweep`` in conf/config.yaml; remove it
with ``~hydra.callbacks.sweep``. Everything it passes between the sweep's process and the
jobs goes through files in the sweep dir, so it works with any launcher whose jobs share
that dir (the jobs write their results there anyway).

Hydra calls no callback for a sweep that stops early (a job interrupted, a launcher or
sweeper that raised); the entrypoint then calls ``summarize_unended_sweeps``, so a sweep
always ends with its summary.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from logreg_exp.errors import ConfigError
from logreg_exp.files import atomic_write, display_path
from logreg_exp.hydra_compat import (
    apply_overrides,
    basic_sweep_jobs,
    is_plain_change,
    set_override_dirname,
)
from logreg_exp.outcomes import EndProcess
from logreg_exp.results import Monitor, Status
from logreg_exp.run_files import PLAN_FILE, SETTINGS_CSV, SUMMARY_CSV, SUMMARY_MD, SWEEP_PNG
from logreg_exp.sweeps.launchers import BASIC_SWEEPER, why_a_sweep_cannot_resume
from logreg_exp.sweeps.plots import draw_sweep
from logreg_exp.sweeps.summary import Job, collect_jobs, sweep_monitor, write_summary
from logreg_exp.sweeps.swept import planned_jobs_count
from logreg_exp.training.interrupts import ignore_interrupts, in_command

log = logging.getLogger(__name__)


def planned_jobs(config: DictConfig) -> list[list[str]] | None:
    """Each job's overrides, in the order of ``hydra.job.num``, as Hydra's BasicSweeper will
    launch them; None for another sweeper (Optuna, Ax, ... decide as they go).

    It runs the BasicSweeper's own steps: ``hydra.sweeper.params`` then the command line's
    overrides, parsed by Hydra's override parser (with the config loader, so ``glob(...)``
    over config groups works), expanded as the BasicSweeper expands them.
    """
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    params = OmegaConf.to_container(sweeper.params, resolve=True) if sweeper.get("params") else {}
    assert isinstance(params, dict)
    arguments = [f"{key}={value}" for key, value in params.items()]
    arguments += OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    hydra = GlobalHydra.instance()
    parser = OverridesParser.create(hydra.config_loader() if hydra.is_initialized() else None)
    try:
        return basic_sweep_jobs(parser.parse_overrides(arguments))
    except HydraException as err:  # the sweeper reports it when it parses the same overrides
        log.debug("no sweep plan: %s", err)
        return None


def shared_job_dir(config: DictConfig, jobs: list[list[str]]) -> str | None:
    """Why two of the planned ``jobs`` would write into one dir (``hydra.sweep.subdir``
    resolved as each job's config resolves it, from its number and overrides), in one line;
    None where each has its own, or where the subdir cannot be told before the jobs run (it
    reads the Hydra config, or a key a config group choice of a job sets)."""
    raw = str(OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"])
    keys = re.findall(r"\$\{([\w.]+)\}", raw)
    reads_task = any(not key.startswith("hydra.") for key in keys)
    if "${hydra:" in raw or re.search(r"\$\{hydra\.job\.(num|id)\}", raw):
        return None  # the job's number names its dir (the default): a dir of its own
    probe = OmegaConf.create(OmegaConf.to_container(config, resolve=False))
    parser = OverridesParser.create()
    seen: dict[str, int] = {}
    try:
        for num, job in enumerate(jobs):
            parsed = parser.parse_overrides(job)
            if reads_task and not all(is_plain_change(o) for o in parsed):
                return None
            with open_dict(probe):
                probe.hydra.job.num, probe.hydra.job.id = num, str(num)
                probe.hydra.overrides.task = list(job)
                set_override_dirname(probe, parsed)
                if reads_task:
                    apply_overrides(parsed, probe, public=True)
            subdir = str(probe.hydra.sweep.subdir)
            if subdir in seen:
                shown = display_path(Path(str(config.hydra.sweep.dir)) / subdir)
                return (
                    f"hydra.sweep.subdir={raw} gives jobs #{seen[subdir]} and #{num} the same "
                    f"dir {shown}; make it name each job (with ${{hydra.job.num}}, as the "
                    "default does)"
                )
            seen[subdir] = num
    except Exception as err:  # a subdir that resolves only in the job: the job says so
        log.debug("job dirs not compared before the sweep: %s", err)
    return None


def launcher_problem(config: DictConfig) -> str | None:
    """What is wrong with the launcher's own settings (``hydra.launcher.prune``), in one line;
    None where nothing is."""
    prune = config.hydra.launcher.get("prune")
    if prune is None:
        return None
    from logreg_exp.training.pruning import SuccessiveHalving

    try:
        SuccessiveHalving.from_config(
            OmegaConf.to_container(prune) if isinstance(prune, DictConfig) else prune
        )
    except ConfigError as err:
        return str(err)
    return None


def job_line(num: int, total: int | None, overrides: list[str]) -> str:
    """``job 3/9 (#2): updater.lr=0.01 batch_size=8``: the place in the sweep, counted from 1,
    then Hydra's job number (the job dir's prefix, zero-padded there), then its overrides."""
    place = f"job {num + 1}/{total}" if total is not None else "job"
    return f"{place} (#{num}): {' '.join(overrides) or '(no overrides)'}"


# The dirs of the sweeps that started in this process and have not ended.
UNENDED_SWEEPS: dict[Path, tuple[Any, Any]] = {}  # and their launcher's and sweeper's _target_
# The sweeps of this process with a tracker: their config's tracker node, and their writer
# process (tracking.mlflow_writer.SweepWriter, from the sweep's start; None: this process
# writes the sweep at its end), for their end.
TRACKED_SWEEPS: dict[Path, tuple[Any, Any]] = {}


class SweepCallback(Callback):
    """See the module docstring; a single run (no ``-m``) passes through untouched."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        hydra = config.hydra
        UNENDED_SWEEPS[sweep_dir] = (hydra.launcher.get("_target_"), hydra.sweeper.get("_target_"))
        plan_file = sweep_dir / PLAN_FILE
        jobs = planned_jobs(config)
        shared = launcher_problem(config)
        if shared is None and jobs is not None:
            shared = shared_job_dir(config, jobs)
        if shared is not None:  # before anything runs, and before the sweep counts as begun
            UNENDED_SWEEPS.pop(sweep_dir, None)
            print(f"error: {shared}", file=sys.stderr)
            raise EndProcess(1)
        tracker = config.get("tracker")
        if tracker is not None and tracker.get("name") == "mlflow":
            from logreg_exp.tracking.mlflow_store import tracker_settings
            from logreg_exp.tracking.mlflow_writer import SweepWriter

            TRACKED_SWEEPS[sweep_dir] = (tracker, SweepWriter.start(tracker_settings(tracker)))
        if jobs is None:
            plan_file.unlink(missing_ok=True)  # a plan of an earlier sweep in this dir
            return
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # one job a line, in job order: readable, and still JSON
        text = '{"jobs": [\n' + ",\n".join(f"  {json.dumps(job)}" for job in jobs) + "\n]}\n"
        atomic_write(plan_file, lambda f: f.write(text.encode()))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        total = planned_jobs_count(Path(config.hydra.sweep.dir))
        overrides = list(config.hydra.overrides.task)
        log.info(job_line(config.hydra.job.num, total, overrides))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Write the summary and draw the picture, then end the process non-zero if a job
        failed or was interrupted, so scripts notice. A failed job does not stop the others (it
        returns a value that ranks it last); this is where the sweep as a whole reports it. A
        job dir without a readable metrics.json counts as failed: its job was killed (out of
        memory, by a cluster) before it could say. Hydra 1.4 calls it for a sweep that stopped
        early too (the exception on its way out): that sweep ends as the entrypoint ends one.
        Its jobs have ended: from here a stop signal changes nothing (``settle_the_end``)."""
        settle_the_end()
        if sys.exc_info()[0] is not None:
            summarize_unended_sweeps()
            return
        jobs = summarize(Path(config.hydra.sweep.dir))
        exit_on_unfinished_jobs(jobs)


def summarize(sweep_dir: Path) -> list[Job]:
    """Write and print the summary of the sweep in ``sweep_dir`` and draw its picture, from
    its files, and log it to its tracker; its jobs."""
    UNENDED_SWEEPS.pop(sweep_dir, None)
    jobs = collect_jobs(sweep_dir)
    _, writer = TRACKED_SWEEPS.get(sweep_dir, (None, None))
    if writer is not None and jobs:  # it writes the job runs while the summary is made
        writer.hand(sweep_dir, jobs)
    monitor = sweep_monitor(jobs)
    try:
        text = write_summary(sweep_dir, monitor, jobs)
    except OSError as err:
        log.error("error: sweep summary not written: %s", err)
        text = ""
    picture = draw_picture(sweep_dir, jobs, monitor) if jobs else None
    if text is None:
        log.warning("no jobs in %s, no sweep summary", sweep_dir)
    elif text:
        files = [SUMMARY_MD, SUMMARY_CSV]
        files += [name for name in (SETTINGS_CSV, SWEEP_PNG) if (sweep_dir / name).exists()]
        listed = ", ".join(files[:-1]) + f" and {files[-1]}"
        print(f"\n{text}(in {listed} of the sweep dir)", flush=True)
    if picture:
        log.info(picture)
    if sweep_dir in TRACKED_SWEEPS:
        from logreg_exp.tracking.mlflow_store import track_sweep

        tracker, writer = TRACKED_SWEEPS.pop(sweep_dir)
        if jobs:
            track_sweep(sweep_dir, jobs, tracker, writer)
        elif writer is not None:
            writer.close()
    return jobs


def summarize_unended_sweeps() -> None:
    """The summary of each sweep of this process that stopped before its end; the exit
    status stays the one it stopped with (non-zero)."""
    if UNENDED_SWEEPS:
        settle_the_end()
    while UNENDED_SWEEPS:
        sweep_dir, (launcher, sweeper) = next(reversed(UNENDED_SWEEPS.items()))
        why_not = why_a_sweep_cannot_resume(launcher, sweeper)
        goes_on = f"starts it over ({why_not})" if why_not else "finishes it (jobs resume)"
        log.warning(
            "the sweep stopped early; the same command with hydra.sweep.dir=%s %s. Its "
            "summary, from the files:", display_path(sweep_dir), goes_on,
        )  # fmt: skip
        summarize(sweep_dir)


def settle_the_end() -> None:
    """The sweep's jobs have ended, and its summary says how: in the command's process, a
    stop signal from now on is ignored, as after a single run's files (a Ctrl-C as the
    summary is printed must not end a complete sweep with a traceback or another status)."""
    if in_command():
        ignore_interrupts()


def draw_picture(sweep_dir: Path, jobs: list[Job], monitor: Monitor) -> str | None:
    """Draw the sweep's picture; return the line that says what it shows. One that cannot be
    drawn is logged here (None), and the sweep still ends as its jobs say."""
    try:
        return draw_sweep(sweep_dir, jobs, monitor)
    except OSError as err:
        log.error("error: sweep picture not drawn: %s", err)
    except Exception:
        log.exception("sweep picture not drawn")
    return None


def exit_on_unfinished_jobs(jobs: list[Job]) -> None:
    """End the process with exit status 1, naming them, if any job that ran counts as
    failed; else 130 (as a shell reports Ctrl-C) if any was interrupted (cancelled, stopped
    by a signal, and not resumed to its end)."""
    ran = [job for job in jobs if job.dir is not None]
    failed = [job for job in ran if job.result.counts_as_failure]
    interrupted = [job for job in ran if job.status == Status.INTERRUPTED]
    if failed:
        log.error("%d of %d jobs failed: %s", len(failed), len(ran), names(failed))
        raise EndProcess(1)
    if interrupted:
        log.error("%d of %d jobs interrupted: %s", len(interrupted), len(ran), names(interrupted))
        raise EndProcess(130)


def names(jobs: list[Job]) -> str:
    return ", ".join(job.dir.name for job in jobs if job.dir is not None)
