"""One job: config -> pipeline -> training -> the best model on the test split, once ->
TensorBoard, console, metrics.json, best.pt, preprocessing.json and the picture, in the job's
output dir (``job_report``). The entrypoint passes the config, the dir and what it read from
Hydra. A group of jobs trained as one is ``group_run``'s: a single run imports neither the
stacked model nor the writer processes."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from logreg_exp.config import validated
from logreg_exp.errors import os_reason
from logreg_exp.files import display_path
from logreg_exp.job_report import (
    JOB_LOGGER,
    JobReport,
    log_what_trains,
    place,
    run_provenance,
    training_threads,
)
from logreg_exp.output_dirs import task_identity
from logreg_exp.provenance import now
from logreg_exp.results import Monitor, Outcome, Status, recorded_outcome
from logreg_exp.run_files import PROGRESS_FILE
from logreg_exp.tracking.mlflow_store import track_run
from logreg_exp.training.build import Pipeline, build_pipeline
from logreg_exp.training.checkpoints import (
    check_origin,
    load_progress,
    restore,
    run_origin,
    save_progress,
)
from logreg_exp.training.interrupts import GracefulInterrupt
from logreg_exp.training.loop import FitResult

log = logging.getLogger(JOB_LOGGER)


def run_job(
    cfg: DictConfig,
    job_dir: Path,
    default_threads: int | None = None,
    choices: Mapping[str, Any] | None = None,
    swept: Sequence[str] | None = None,
    track: bool = False,
) -> Outcome:
    """Train as ``cfg`` says, then, if training completed, evaluate the best epoch's model
    once on the test split; write TensorBoard events, ``last.pt`` after each epoch and the
    files of ``write_results`` into ``job_dir``, ``metrics.json`` last. A ``last.pt`` already
    in ``job_dir`` is an unfinished run of this config that the dir's claim kept for it
    (``output_dirs``): training goes on from its last finished epoch. Bad config raises
    ConfigError before anything is written; a file that cannot be written raises OutputError
    naming it. A stop signal (Ctrl-C, SIGTERM, SIGUSR1/2: ``training.interrupts``), from the
    moment it starts, ends training between minibatches, with what was reached written
    (status interrupted); the final writes are part of the run, so a signal during them lets
    them finish.
    ``default_threads`` is the torch thread count for ``threads: null``, from the launcher
    (None: torch's own); ``choices`` are the config group options it was composed from, and
    ``swept`` the keys its sweep varies (None: not in a sweep), for the HParams tab.
    ``track``: log the run to the config's tracker as it ends (a single run; a sweep's
    process logs its jobs at its end)."""
    start, started = time.perf_counter(), now()
    job_dir = Path(job_dir)
    report: JobReport | None = None
    try:
        with GracefulInterrupt() as interrupt:
            settings = validated(cfg)
            earlier = load_progress(job_dir)
            device, _ = place(settings, default_threads)
            pipeline = build_pipeline(settings, device)
            threads = training_threads(settings, default_threads, pipeline)
            log_what_trains(pipeline, settings, device, threads)
            origin = run_origin(task_identity(cfg), pipeline)
            done = None
            if earlier is not None:
                check_origin(job_dir, earlier, origin)
                done = restore(pipeline, earlier)
                start -= float(earlier["wall_s"])
                log_resume(job_dir, settings, len(done.history))
            provenance = run_provenance(device, threads, started)
            report = JobReport(
                cfg, settings, job_dir, choices, swept, done, writes_progress=True,
                provenance=provenance,
            )  # fmt: skip
            save = ProgressSaver(job_dir, pipeline, start, origin)
            if done is None:  # from here on, a run stopped at any moment resumes
                save(FitResult(Monitor(settings.monitor)))
            result = pipeline.fit(
                settings.epochs, Monitor(settings.monitor), on_epoch=report.log_epoch,
                stop_requested=interrupt, start=done, save_progress=save,
            )  # fmt: skip
            stopped_by = interrupt.received.name if interrupt.received else None
            late = stopped_by is not None and result.status is not Status.INTERRUPTED
            ended = report.finish(
                result, pipeline, time.perf_counter() - start, stopped_by=stopped_by
            )
    finally:
        if report is not None:  # an error or a second signal came first
            report.close()
    if late:
        log.warning("%s came after the last epoch; the run's files were all written", stopped_by)
    if track:
        track_run(job_dir, cfg.get("tracker"))
    return ended


def log_resume(job_dir: Path, settings: Any, done: int) -> None:
    epochs = settings.epochs
    where = f"at epoch {done + 1} of {epochs}" if done < epochs else "to write its results"
    log.info(
        "resume=%s: going on with the unfinished run in %s %s (%d epochs done, %s)",
        str(settings.resume).lower(), display_path(job_dir), where, done, PROGRESS_FILE,
    )  # fmt: skip


class ProgressSaver:
    """``save_progress`` for ``fit``: ``last.pt`` after each epoch. One that cannot be
    written (a full disk) is said in the log, and training goes on: a restart resumes from
    an earlier epoch. ``start``: the run's start by ``time.perf_counter``, earlier attempts
    included; ``origin``: what made the run (``run_origin``), kept in ``last.pt``."""

    def __init__(
        self, job_dir: Path, pipeline: Pipeline, start: float, origin: dict[str, Any] | None = None
    ) -> None:
        self.job_dir, self.pipeline, self.start = job_dir, pipeline, start
        self.origin = origin

    def __call__(self, result: FitResult) -> None:
        wall_s = time.perf_counter() - self.start
        try:
            save_progress(self.job_dir, self.pipeline, result, wall_s, self.origin)
        except OSError as err:
            done = len(result.history)
            log.warning(
                "%s not written %s (%s); a restart resumes from an earlier one",
                display_path(self.job_dir / PROGRESS_FILE),
                f"after epoch {done}" if done else "before the first epoch", os_reason(err),
            )  # fmt: skip


def ended_job(job_dir: Path, monitor: Monitor) -> Outcome:
    """A job of a sweep that goes on, whose run in ``job_dir`` ended before: its outcome, as
    its metrics.json records it (said in the log); its files stay as they are."""
    recorded = recorded_outcome(job_dir, monitor)
    assert recorded is not None  # the dir's claim found that the run ended
    log.info(
        "%s holds this job's %s run: its results stand", display_path(job_dir), recorded.status
    )
    return recorded
