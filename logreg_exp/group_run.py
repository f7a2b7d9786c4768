"""A group of jobs trained as one stacked model (``hydra/launcher=vectorized``), each job
left with the files a single run leaves (``job_report``)."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from logreg_exp.data.loaders import rebatched
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
from logreg_exp.training.column_data import ColumnBatches
from logreg_exp.training.interrupts import GracefulInterrupt
from logreg_exp.training.loop import FitResult, improvements
from logreg_exp.training.penalties import penalized
from logreg_exp.training.pruning import SuccessiveHalving
from logreg_exp.training.schedules import schedule_for
from logreg_exp.training.stacked import (
    BatchSizes,
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
    prune: SuccessiveHalving | None = None,
) -> list[Outcome]:
    """The jobs ``members``, which differ only in elementwise updater hyperparameters, their
    seed, their fold and their batch size, trained as one stacked model
    (``training.stacked``); each job's dir then gets what ``run_job`` would leave in it, its
    log file the same lines. The console gets one line an epoch for the group. Ctrl-C stops
    the group: every job interrupted, its files written. Where neither the config nor the
    launcher sets the threads, a small stacked model gets one. Jobs of other seeds or folds
    train on their own data (``training.column_data``); a seed or fold whose data cannot be
    built fails its jobs alone, and data of other sizes train as a group of their own,
    after. A group that cannot be set up (its data cannot be read, its device is missing, it
    would not fit in memory) fails each of its jobs alone, as the basic launcher fails them.
    ``prune``: the successive halving of the columns (``hydra.launcher.prune``), None for
    none."""
    start = time.perf_counter()
    try:
        device, _ = place(members[0].settings, default_threads)
    except Exception as err:  # a missing device: each job fails alone, as alone
        return [fail_member(m, err, time.perf_counter() - start) for m in members]
    outcomes: dict[int, Outcome] = {}
    interrupted = False
    for part in data_parts(members, device, outcomes, start):
        jobs = [members[i] for i in part.jobs]
        # after Ctrl-C, a later part's jobs end interrupted at once, with their files
        trained = train_part(jobs, part, device, default_threads, prune, interrupted)
        outcomes.update(zip(part.jobs, trained, strict=True))
        interrupted |= any(o.status is Status.INTERRUPTED for o in trained)
    return [outcomes[i] for i in range(len(members))]


def data_key(settings: Any) -> tuple[Any, ...]:
    """What of a group's job decides its data (``vectorized.DATA_COLUMNS``)."""
    return (settings.seed, settings.dataset.fold)


@dataclass
class DataPart:
    """Jobs of a group (indices into its members) that train as one: the pipelines of their
    distinct data sets, and each job's (an index into ``pipelines``)."""

    jobs: list[int]
    pipelines: list[Pipeline]
    data_of: list[int]
    # what building each pipeline logged (the data read), for its jobs' log files
    data_lines: list[list[logging.LogRecord]]


def data_parts(
    members: Sequence[GroupMember], device: torch.device, outcomes: dict[int, Outcome], start: float
) -> list[DataPart]:
    """The group's jobs by the data they train on: one part where they share it (the whole
    group, as a learning-rate sweep); else a pipeline per seed and fold, those whose splits
    have the same sizes in one part (two classes, no class weights; else one part a data
    set). A data set that cannot be built fails its jobs (``outcomes``) and leaves the
    others to train. A part's jobs are in order of their batch size."""
    by_data: dict[tuple[Any, ...], list[int]] = {}
    for i, member in enumerate(members):
        by_data.setdefault(data_key(member.settings), []).append(i)
    by_size: dict[Any, list[tuple[list[int], Pipeline, list[logging.LogRecord]]]] = {}
    for key, jobs in by_data.items():
        try:
            with recorded_lines() as lines:
                pipeline = build_pipeline(members[jobs[0]].settings, device)
        except Exception as err:  # this seed's or fold's data: its jobs fail, as alone
            for i in jobs:
                outcomes[i] = fail_member(members[i], err, time.perf_counter() - start)
            continue
        # C classes, or class weights of each split's own counts: a data set at a time
        shared = pipeline.model.n_classes == 2 and pipeline.class_weights is None
        size = (pipeline.n_train, pipeline.n_val) if shared else key
        by_size.setdefault(size, []).append((jobs, pipeline, lines))
    parts = []
    for same_size in by_size.values():
        data_of = {i: d for d, (jobs, _, _) in enumerate(same_size) for i in jobs}
        # the columns of a batch size side by side (``stacked.BatchSizes``)
        jobs = sorted(data_of, key=lambda i: (members[i].settings.batch_size, i))
        pipelines = [pipeline for _, pipeline, _ in same_size]
        data_lines = [lines for _, _, lines in same_size]
        parts.append(DataPart(jobs, pipelines, [data_of[i] for i in jobs], data_lines))
    return parts


@contextmanager
def recorded_lines() -> Iterator[list[logging.LogRecord]]:
    """The log records of the block, logged as ever and kept: what building a data set
    says (``load_dataset``: the table read, its labels) goes into each of its jobs' log
    files too, as a job alone logs it."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


def train_part(
    members: Sequence[GroupMember],
    part: DataPart,
    device: torch.device,
    default_threads: int | None,
    prune: SuccessiveHalving | None,
    interrupted: bool = False,
) -> list[Outcome]:
    """``members`` (the jobs of ``part``) trained as one stacked model, then their files."""
    start, started = time.perf_counter(), now()
    settings = [m.settings for m in members]
    first = settings[0]
    pipelines, data_of = part.pipelines, part.data_of
    pipeline = pipelines[0]
    threads = training_threads(first, default_threads, pipeline, len(members))
    sizes = [s.batch_size for s in settings]
    chunk = math.gcd(*sizes) if len(set(sizes)) > 1 else None
    if len(pipelines) == 1:
        model = StackedLogisticRegression(pipeline.model, len(members))
        train_loader, val_loader = pipeline.train_loader, pipeline.val_loader
        if chunk is not None:
            train_loader = rebatched(train_loader, chunk)
    else:
        model = StackedLogisticRegression.of_columns([pipelines[d].model for d in data_of])
        train_loader = ColumnBatches([p.train_loader for p in pipelines], data_of, chunk)
        val_loader = ColumnBatches([p.val_loader for p in pipelines], data_of)
    optimizer_cls, per_job = stacking_of([m.updater for m in members])

    def make_updater(params: list[torch.nn.Parameter], columns: slice) -> Any:
        built = stacked_updater(params, optimizer_cls, per_job[columns])
        return penalized(built, params[0], settings[columns])

    loss_fn = ColumnLosses(
        build_loss(
            OmegaConf.structured(first.loss),
            pipeline.model.n_classes,
            pipeline.class_weights,
            reduction="none",
        )
    )
    batch_sizes = None
    if chunk is None:
        updater = make_updater(list(model.parameters()), slice(None))
    else:
        updater = batch_sizes = BatchSizes(model, loss_fn, sizes, pipeline.n_train, make_updater)
    progress = GroupProgress(len(members), first.epochs, [m.job_dir.name for m in members])
    with GracefulInterrupt() as interrupt:
        results = fit_stacked(
            model, loss_fn, updater, train_loader, val_loader,
            epochs=first.epochs, device=device, monitor=Monitor(first.monitor),
            evaluators=[pipelines[d].epoch_evaluators for d in data_of], on_epoch=progress,
            stop_requested=(lambda: True) if interrupted else interrupt,
            schedule=schedule_for(updater, settings), prune=prune, batch_sizes=batch_sizes,
        )  # fmt: skip
        trained_s = time.perf_counter() - start
        stopped_by = interrupt.received.name if interrupt.received else None
        pictures = pictures_ahead(pipelines, data_of, results)
        outcomes = []
        try:
            with synced_together():
                for k, member in enumerate(members):
                    picture = None
                    if pictures[data_of[k]] is not None and results[k].status is Status.COMPLETED:
                        picture = pictures[data_of[k]].picture(k)  # type: ignore[union-attr]
                    try:
                        outcome = write_member(
                            member, settings[k], results[k], pipelines[data_of[k]], threads,
                            trained_s, picture, stopped_by, started, part.data_lines[data_of[k]],
                        )  # fmt: skip
                        settle()  # its metrics.json on disk: the job counts as written
                    except OutputError as err:  # a full disk: this job failed, as alone
                        outcome = record_failed_member(member, err, trained_s)
                    outcomes.append(outcome)
        finally:
            for ahead in pictures:
                if ahead is not None:
                    ahead.close()
    progress.done(outcomes, trained_s, time.perf_counter() - start - trained_s)
    return outcomes


def pictures_ahead(
    pipelines: Sequence[Pipeline], data_of: Sequence[int], results: Sequence[FitResult]
) -> list[PicturesAhead | None]:
    """For each data set, the pictures of its completed jobs, painted over its validation
    points (a painter made once for all its jobs); None where it has no picture."""
    aheads: list[PicturesAhead | None] = []
    for d, pipeline in enumerate(pipelines):
        jobs = [k for k, of in enumerate(data_of) if of == d]
        completed = any(results[k].status is Status.COMPLETED for k in jobs)
        painter = painter_for(pipeline) if completed else None
        aheads.append(None if painter is None else PicturesAhead(painter, pipeline, results, jobs))
    return aheads


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
    data_lines: Sequence[logging.LogRecord] = (),
) -> Outcome:
    """What ``run_job`` leaves in the dir of a group's job, its lines in its log file;
    ``stopped_by``: the signal that stopped the group; ``started``: when the group started
    (ISO 8601), for its provenance; ``data_lines``: what building its data logged."""
    with logging_only_to(member.log_file, member.log_format):
        for record in data_lines:
            logging.getLogger(record.name).handle(record)
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
        pruned = sum(r.status is Status.PRUNED for r in results)
        stopped = (f"  {diverged} diverged" if diverged else "") + (
            f"  {pruned} pruned" if pruned else ""
        )
        if not scored:
            return
        best, k = min(scored, key=lambda mk: monitor.sort_key(getattr(mk[0], monitor.value)))
        log.info(
            "epoch %*d/%d  %d jobs  best %s %.4f (%s)%s",
            self.width, epoch, self.epochs, len(scored), monitor.value,
            getattr(best, monitor.value), self.names[k],
            stopped,
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
