"""A group of jobs trained as one stacked model (``hydra/launcher=vectorized``), each job
left with the files a single run leaves (``job_report``)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from logreg_exp.errors import OutputError
from logreg_exp.files import settle, synced_together
from logreg_exp.job_report import (
    JOB_LOGGER,
    JobReport,
    log_what_trains,
    place,
    run_provenance,
    training_threads,
)
from logreg_exp.outcomes import failed
from logreg_exp.provenance import now
from logreg_exp.results import Monitor, Outcome, Status
from logreg_exp.tracking.images import Picture
from logreg_exp.tracking.plots import PicturesAhead, painter_for
from logreg_exp.training.build import Pipeline, build_loss, build_pipeline
from logreg_exp.training.interrupts import GracefulInterrupt
from logreg_exp.training.loop import FitResult, improvements
from logreg_exp.training.schedules import schedule_for
from logreg_exp.training.stacked import (
    ColumnLosses,
    StackedLogisticRegression,
    fit_stacked,
    stacked_updater,
)
from logreg_exp.training.updaters import ManualSGD

log = logging.getLogger(JOB_LOGGER)


@dataclass
class GroupMember:
    """A job of a group trained as one: its config, checked (``settings``), its updater
    built on a stand-in parameter (for its class and hyperparameters), dir, config group
    choices, the keys its sweep varies, and the log file (and its line format) that its
    lines go to."""

    cfg: DictConfig
    settings: Any
    updater: Any
    job_dir: Path
    choices: Mapping[str, Any]
    swept: Sequence[str] | None
    log_file: Path
    log_format: str
    resolved: dict[str, Any] | None = None  # the config resolved, as plain data
    config_text: str | None = None  # the same as YAML (OmegaConf.to_yaml), where known


def run_job_group(
    members: Sequence[GroupMember],
    default_threads: int | None = None,
) -> list[Outcome]:
    """The jobs ``members``, which differ only in elementwise updater hyperparameters, trained
    as one stacked model (``training.stacked``); each job's dir then gets what ``run_job``
    would leave in it, its log file the same lines. The console gets one line an epoch for
    the group. Ctrl-C stops the group: every job interrupted, its files written. Where
    neither the config nor the launcher sets the threads, a small stacked model gets one.
    A group that cannot be set up (its data cannot be read, its device is missing, it would
    not fit in memory) fails each of its jobs alone, as the basic launcher fails them."""
    start, started = time.perf_counter(), now()
    settings = [m.settings for m in members]
    first = settings[0]
    try:
        device, _ = place(first, default_threads)
        pipeline = build_pipeline(first, device)
    except Exception as err:
        return [fail_member(m, err, time.perf_counter() - start) for m in members]
    threads = training_threads(first, default_threads, pipeline, len(members))
    model = StackedLogisticRegression(pipeline.model, len(members))
    optimizer_cls, per_job = stacking_of([m.updater for m in members])
    updater = stacked_updater(list(model.parameters()), optimizer_cls, per_job)
    loss_fn = ColumnLosses(
        build_loss(
            OmegaConf.structured(first.loss),
            pipeline.model.n_classes,
            pipeline.class_weights,
            reduction="none",
        )
    )
    progress = GroupProgress(len(members), first.epochs, [m.job_dir.name for m in members])
    with GracefulInterrupt() as interrupt:
        results = fit_stacked(
            model, loss_fn, updater, pipeline.train_loader, pipeline.val_loader,
            epochs=first.epochs, device=device, monitor=Monitor(first.monitor),
            evaluators=pipeline.evaluators, on_epoch=progress, stop_requested=interrupt,
            schedule=schedule_for(updater, settings),
        )  # fmt: skip
        trained_s = time.perf_counter() - start
        stopped_by = interrupt.received.name if interrupt.received else None
        completed = any(r.status is Status.COMPLETED for r in results)
        painter = painter_for(pipeline) if completed else None  # made once for every job
        pictures = None
        if painter is not None:
            pictures = PicturesAhead(painter, pipeline, results, range(len(members)))
        outcomes = []
        try:
            with synced_together():
                for k, member in enumerate(members):
                    picture = None
                    if pictures is not None and results[k].status is Status.COMPLETED:
                        picture = pictures.picture(k)
                    try:
                        outcome = write_member(
                            member, settings[k], results[k], pipeline, threads, trained_s,
                            picture, stopped_by, started,
                        )  # fmt: skip
                        settle()  # its metrics.json on disk: the job counts as written
                    except OutputError as err:  # a full disk: this job failed, as alone
                        outcome = record_failed_member(member, err, trained_s)
                    outcomes.append(outcome)
        finally:
            if pictures is not None:
                pictures.close()
    progress.done(outcomes, trained_s, time.perf_counter() - start - trained_s)
    return outcomes


def write_member(
    member: GroupMember,
    settings: Any,
    result: FitResult,
    pipeline: Pipeline,
    threads: int,
    trained_s: float,
    picture: Picture | None,
    stopped_by: str | None = None,
    started: str | None = None,
) -> Outcome:
    """What ``run_job`` leaves in the dir of a group's job, its lines in its log file;
    ``stopped_by``: the signal that stopped the group; ``started``: when the group started
    (ISO 8601), for its provenance."""
    with logging_only_to(member.log_file, member.log_format):
        log_what_trains(pipeline, settings, pipeline.device, threads)
        report = JobReport(
            member.cfg, settings, member.job_dir, member.choices, member.swept,
            resolved=member.resolved, config_text=member.config_text,
            provenance=run_provenance(pipeline.device, threads, started),
        )  # fmt: skip
        try:
            for metrics, is_best in zip(
                result.history, improvements(result.history, result.monitor), strict=True
            ):
                report.log_epoch(metrics, is_best)
            return report.finish(result, pipeline, trained_s, picture, stopped_by)
        finally:
            report.close()


def fail_member(member: GroupMember, err: Exception, wall_s: float) -> Outcome:
    """A job of a group that could not be set up fails alone, as the entrypoint fails a job
    of the basic launcher: its line on the console and in its log file, its failure in its
    metrics.json."""
    console = logging.getLogger().handlers
    with logging_only_to(member.log_file, member.log_format, also=console):
        return failed(err, member.cfg, member.job_dir, True, wall_s)


def record_failed_member(member: GroupMember, err: OutputError, wall_s: float) -> Outcome:
    """A group's job whose files could not be written (a full disk) fails alone, as the
    entrypoint fails a job of the basic launcher: one line, its failure in metrics.json where
    the disk lets it. What it handed to the fsync pool is settled first, its errors dropped:
    they say the same."""
    with suppress(OutputError):
        settle()
    outcome = failed(err, member.cfg, member.job_dir, True, wall_s)
    try:
        settle()
    except OutputError as again:
        log.warning("the failure is not recorded either: %s", again)
    return outcome


def stacking_of(built: Sequence[Any]) -> tuple[type, list[dict[str, Any]]]:
    """The torch.optim class whose update the group's updaters (as ``build_updater`` builds
    them) share (``updater=manual`` is SGD's), and each job's hyperparameters as that class
    names them, defaults included."""
    optimizer_cls = torch.optim.SGD if isinstance(built[0], ManualSGD) else type(built[0])
    return optimizer_cls, [dict(b.defaults) for b in built]


class GroupProgress:
    """The console's line an epoch for a group: the best job so far, and how many stopped."""

    def __init__(self, size: int, epochs: int, names: Sequence[str]) -> None:
        self.size, self.epochs, self.names = size, epochs, names
        self.width = len(str(epochs))

    def __call__(self, epoch: int, results: Sequence[FitResult]) -> None:
        monitor = results[0].monitor
        scored = [(r.history[-1], k) for k, r in enumerate(results) if r.history]
        scored = [(m, k) for m, k in scored if m.epoch == epoch]
        diverged = sum(r.status is Status.DIVERGED for r in results)
        if not scored:
            return
        best, k = min(scored, key=lambda mk: monitor.sort_key(getattr(mk[0], monitor.value)))
        log.info(
            "epoch %*d/%d  %d jobs  best %s %.4f (%s)%s",
            self.width, epoch, self.epochs, len(scored), monitor.value,
            getattr(best, monitor.value), self.names[k],
            f"  {diverged} diverged" if diverged else "",
        )  # fmt: skip

    def done(self, outcomes: Sequence[Outcome], trained_s: float, written_s: float) -> None:
        counts = Counter(o.status.value for o in outcomes)
        log.info(
            "group of %d jobs done: %s; trained in %.2f s, their files written in %.2f s",
            self.size,
            ", ".join(f"{n} {status}" for status, n in counts.items()),
            trained_s,
            written_s,
        )


@contextmanager
def logging_only_to(
    log_file: Path, line_format: str, also: Sequence[logging.Handler] = ()
) -> Iterator[None]:
    """Log records go to ``log_file`` (and to the handlers ``also``) alone while in the block:
    a group's jobs write their own lines to their own log files, one job after another."""
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter(line_format))
    root.handlers = [*also, handler]
    try:
        yield
    finally:
        root.handlers = saved
        handler.close()
