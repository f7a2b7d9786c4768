"""One job: config -> pipeline -> training -> the best model on the test split, once ->
TensorBoard, console, metrics.json, best.pt, preprocessing.json and the picture, in the job's
output dir; or a group of jobs trained as one stacked model, each job left with the same
files. The entrypoint and the launcher pass the config, the dir and what they read from
Hydra."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from logreg_exp.config import validated
from logreg_exp.data.preprocessing import PREPROCESSING_FILE, save_preprocessing
from logreg_exp.errors import OutputError, os_reason, writing
from logreg_exp.files import display_path, settle, synced_together
from logreg_exp.results import (
    METRICS_FILE,
    Monitor,
    Outcome,
    Status,
    divergence,
    fit_metrics,
    recorded_outcome,
    write_metrics,
)
from logreg_exp.tracking.images import Picture
from logreg_exp.tracking.loggers import ConsoleLogger, TensorBoardLogger, run_hparams
from logreg_exp.tracking.plots import (
    DECISION_BOUNDARY_FILE,
    PicturesAhead,
    log_decision_boundary,
    painter_for,
)
from logreg_exp.training.build import Pipeline, build_loss, build_pipeline
from logreg_exp.training.checkpoints import (
    CHECKPOINT_FILE,
    PROGRESS_FILE,
    load_progress,
    restore,
    save_checkpoint,
    save_progress,
)
from logreg_exp.training.devices import describe, resolve_device, set_torch_threads
from logreg_exp.training.interrupts import GracefulInterrupt
from logreg_exp.training.loop import EpochMetrics, FitResult, improvements
from logreg_exp.training.stacked import (
    ColumnLosses,
    StackedLogisticRegression,
    fit_stacked,
    one_thread_is_enough,
    stacked_updater,
)
from logreg_exp.training.updaters import ManualSGD

log = logging.getLogger(__name__)


def run_job(
    cfg: DictConfig,
    job_dir: Path,
    default_threads: int | None = None,
    choices: Mapping[str, Any] | None = None,
    swept: Sequence[str] | None = None,
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
    ``swept`` the keys its sweep varies (None: not in a sweep), for the HParams tab."""
    start = time.perf_counter()
    job_dir = Path(job_dir)
    report: JobReport | None = None
    try:
        with GracefulInterrupt() as interrupt:
            settings = validated(cfg)
            earlier = load_progress(job_dir)
            device, threads = place(settings, default_threads)
            pipeline = build_pipeline(settings, device)
            log_what_trains(pipeline, settings, device, threads)
            done = None
            if earlier is not None:
                done = restore(pipeline, earlier)
                start -= float(earlier["wall_s"])
                log_resume(job_dir, settings, len(done.history))
            report = JobReport(cfg, settings, job_dir, choices, swept, done, writes_progress=True)
            save = ProgressSaver(job_dir, pipeline, start)
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
    included."""

    def __init__(self, job_dir: Path, pipeline: Pipeline, start: float) -> None:
        self.job_dir, self.pipeline, self.start = job_dir, pipeline, start

    def __call__(self, result: FitResult) -> None:
        wall_s = time.perf_counter() - self.start
        try:
            save_progress(self.job_dir, self.pipeline, result, wall_s)
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
    config_text: str | None = None  # the same as YAML (OmegaConf.to_yaml)


def run_job_group(
    members: Sequence[GroupMember],
    default_threads: int | None = None,
) -> list[Outcome]:
    """The jobs ``members``, which differ only in elementwise updater hyperparameters, trained
    as one stacked model (``training.stacked``); each job's dir then gets what ``run_job``
    would leave in it, its log file the same lines. The console gets one line an epoch for
    the group. Ctrl-C stops the group: every job interrupted, its files written. Where
    neither the config nor the launcher sets the threads, a small stacked model gets one."""
    start = time.perf_counter()
    settings = [m.settings for m in members]
    first = settings[0]
    device, threads = place(first, default_threads)
    pipeline = build_pipeline(first, device)
    batch_sizes = (first.batch_size, first.val_batch_size)
    if default_threads is None and one_thread_is_enough(
        len(members), pipeline.model.n_features, batch_sizes
    ):
        threads = set_torch_threads(first.threads, 1)
    model = StackedLogisticRegression(pipeline.model, len(members))
    optimizer_cls, per_job = stacking_of([m.updater for m in members])
    updater = stacked_updater(list(model.parameters()), optimizer_cls, per_job)
    loss_fn = ColumnLosses(build_loss(OmegaConf.structured(first.loss), reduction="none"))
    progress = GroupProgress(len(members), first.epochs, [m.job_dir.name for m in members])
    with GracefulInterrupt() as interrupt:
        results = fit_stacked(
            model, loss_fn, updater, pipeline.train_loader, pipeline.val_loader,
            epochs=first.epochs, device=device, monitor=Monitor(first.monitor),
            evaluators=pipeline.evaluators, on_epoch=progress, stop_requested=interrupt,
        )  # fmt: skip
        trained_s = time.perf_counter() - start
        completed = any(r.status is Status.COMPLETED for r in results)
        painter = painter_for(pipeline) if completed else None  # made once for every job

        def write_share(share: Sequence[int], report: Callable[[int, Outcome], None]) -> None:
            pictures = None
            if painter is not None:
                pictures = PicturesAhead(painter, pipeline, results, share)
            try:
                with synced_together():
                    for k in share:
                        picture = None
                        if pictures is not None and results[k].status is Status.COMPLETED:
                            picture = pictures.picture(k)
                        try:
                            outcome = write_member(
                                members[k], settings[k], results[k], pipeline, threads,
                                trained_s, picture,
                            )  # fmt: skip
                            settle()  # its metrics.json on disk: the job counts as written
                            report(k, outcome)
                        except OutputError as err:  # a full disk: this job failed, as alone
                            report(k, record_failed_member(members[k], err, trained_s))
            finally:
                if pictures is not None:
                    pictures.close()

        written: dict[int, Outcome] = {}
        write_share(range(len(members)), written.__setitem__)
        outcomes = [written[k] for k in range(len(members))]
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
) -> Outcome:
    """What ``run_job`` leaves in the dir of a group's job, its lines in its log file."""
    with logging_only_to(member.log_file, member.log_format):
        log_what_trains(pipeline, settings, pipeline.device, threads)
        report = JobReport(
            member.cfg, settings, member.job_dir, member.choices, member.swept,
            resolved=member.resolved, config_text=member.config_text,
        )  # fmt: skip
        try:
            for metrics, is_best in zip(
                result.history, improvements(result.history, result.monitor), strict=True
            ):
                report.log_epoch(metrics, is_best)
            return report.finish(result, pipeline, trained_s, picture)
        finally:
            report.close()


def record_failed_member(member: GroupMember, err: OutputError, wall_s: float) -> Outcome:
    """A group's job whose files could not be written (a full disk) fails alone, as the
    entrypoint fails a job of the basic launcher: one line, its failure in metrics.json where
    the disk lets it. What it handed to the fsync pool is settled first, its errors dropped:
    they say the same."""
    from logreg_exp.cli import failed  # the entrypoint's rules

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


def place(settings: Any, default_threads: int | None) -> tuple[torch.device, int]:
    """The device, the torch threads in force, and the global seed, as the job's config says."""
    device = resolve_device(settings.device.name)
    threads = set_torch_threads(settings.threads, default_threads)
    torch.manual_seed(settings.seed)
    return device, threads


def log_what_trains(pipeline: Pipeline, settings: Any, device: torch.device, threads: int) -> None:
    test_samples = f" / {pipeline.n_test} test" if pipeline.n_test else ""
    log.info(
        "%d train / %d val%s samples, %d features, device %s, %d torch thread%s, updater %s "
        "(lr %g)",
        pipeline.n_train,
        pipeline.n_val,
        test_samples,
        pipeline.model.n_features,
        describe(device),
        threads,
        "" if threads == 1 else "s",
        settings.updater.name,
        settings.updater.lr,
    )


class JobReport:
    """Everything a job reports, in its dir and on the console: each epoch's line and curves,
    and at the end best.pt, metrics.json, the HParams results, the picture and the last line.
    The TensorBoard file is open from the start (the config and the HParams session first),
    so a job that never ends still has its row. A file that cannot be written is an
    OutputError naming it."""

    def __init__(
        self,
        cfg: DictConfig,
        settings: Any,
        job_dir: Path,
        choices: Mapping[str, Any] | None = None,
        swept: Sequence[str] | None = None,
        done: FitResult | None = None,
        writes_progress: bool = False,
        resolved: dict[str, Any] | None = None,
        config_text: str | None = None,
    ) -> None:
        """``done``: the epochs a resumed run finished before, and ``replace``: whether the
        dir holds an earlier attempt's event files; the new file starts with what those
        epochs logged, and takes their place (``TensorBoardLogger``). ``resolved`` and
        ``config_text``: ``cfg`` resolved as plain data and as YAML, where they are known
        already."""
        self.settings, self.job_dir = settings, job_dir
        self.console = ConsoleLogger(settings.epochs)
        self.tensorboard: TensorBoardLogger | None = None
        self.events: str | Path = f"a TensorBoard event file in {display_path(job_dir)}"
        self.writes_progress = writes_progress
        if settings.tensorboard:
            with writing(self.events):
                self.tensorboard = TensorBoardLogger(job_dir, replace=done is not None)
            self.events = display_path(self.tensorboard.path)
            with writing(self.events):
                self.tensorboard.log_config(config_text or OmegaConf.to_yaml(cfg, resolve=True))
                self.tensorboard.start_session(run_hparams(resolved or cfg, choices, swept))
                if done is not None:
                    for metrics, is_best in zip(
                        done.history, improvements(done.history, done.monitor), strict=True
                    ):
                        self.tensorboard.log_epoch(metrics, is_best)
                    self.tensorboard.drop_replaced()

    def log_epoch(self, metrics: EpochMetrics, is_best: bool) -> None:
        self.console.log_epoch(metrics, is_best)
        if self.tensorboard is not None:
            with writing(self.events):
                self.tensorboard.log_epoch(metrics, is_best)

    def finish(
        self,
        result: FitResult,
        pipeline: Pipeline,
        wall_s: float,
        picture: Picture | None = None,
        stopped_by: str | None = None,
    ) -> Outcome:
        """Evaluate the best model on the test split and write what the job leaves behind;
        ``pipeline`` gives the splits and a model to draw the best state with (``picture``:
        the picture, where it was painted already). ``wall_s``: the job's time until now;
        ``stopped_by``: the signal that interrupted it."""
        start = time.perf_counter()
        test = None
        if result.status is Status.COMPLETED:
            test = pipeline.test(result.best_state)
        wall_s += time.perf_counter() - start
        metrics = fit_metrics(result, wall_s, pipeline.n_train, test, stopped_by)
        has_events = self.tensorboard is not None
        tensorboard, self.tensorboard = self.tensorboard, None  # write_results closes it
        write_results(result, metrics, pipeline, self.job_dir, tensorboard, self.events, picture)
        return outcome(
            result, self.settings, self.job_dir, has_events, metrics, self.writes_progress
        )

    def close(self) -> None:
        if self.tensorboard is not None:
            with suppress(OSError):
                self.tensorboard.close()
            self.tensorboard = None


def write_results(
    result: FitResult,
    metrics: dict[str, Any],
    pipeline: Pipeline,
    job_dir: Path,
    tensorboard: TensorBoardLogger | None,
    events: str | Path,
    picture: Picture | None = None,
) -> None:
    """``preprocessing.json`` and ``best.pt`` (where an epoch finished), the picture, the end
    of the TensorBoard session, and ``metrics.json`` last: it says how the run ended only once
    every other file is written, so a run that could not write them all never claims
    success, and one that says completed has the others from the same run."""
    if result.best_epoch:
        with writing(job_dir / PREPROCESSING_FILE):
            save_preprocessing(job_dir, pipeline.preprocessing)
        with writing(job_dir / CHECKPOINT_FILE):
            save_checkpoint(job_dir, result.best_state, result.best_epoch, *best_of(result))
    if result.status is Status.COMPLETED:
        with writing(job_dir / DECISION_BOUNDARY_FILE):
            log_decision_boundary(pipeline, result, job_dir, tensorboard, picture)
    if tensorboard is not None:
        with writing(events):
            tensorboard.end_session(metrics, step=len(result.history))
            tensorboard.close()
    settle()  # the files above are durable (where synced_together left them to a pool)
    with writing(job_dir / METRICS_FILE):
        write_metrics(job_dir, metrics)


def best_of(result: FitResult) -> tuple[str, float]:
    assert result.best_value is not None
    return result.monitor.value, result.best_value


def outcome(
    result: FitResult,
    settings: Any,
    job_dir: Path,
    has_events: bool,
    metrics: Mapping[str, Any] | None = None,
    resumable: bool = False,
) -> Outcome:
    """How the job ended, told in the log: its best epoch, or why it stopped (and, for a
    ``resumable`` run, which writes last.pt, how to go on with it)."""
    monitor = result.monitor
    metrics = metrics or {}
    if result.status is Status.INTERRUPTED:
        by = metrics.get("interrupted_by")
        if resumable:
            where = (
                f"last.pt the {len(result.history)} finished: run again in "
                f"{display_path(job_dir)} with the same config to resume"
            )
        else:
            where = f"({display_path(job_dir)})"
        log.warning(
            "interrupted%s in epoch %d; metrics.json and best.pt hold the best epoch so far%s%s",
            f" by {by}" if by else "",
            result.stopped_at[0],
            ", " if resumable else " ",
            where,
        )
        return Outcome(Status.INTERRUPTED, monitor.worst, "interrupted")
    if result.status is Status.DIVERGED:
        epoch, step = result.stopped_at
        knobs = f"updater.lr={settings.updater.lr:g}"
        if settings.updater.weight_decay:
            knobs += f" and updater.weight_decay={settings.updater.weight_decay:g}"
        where = divergence(result.non_finite, epoch, step)
        message = f"training diverged: {where} with {knobs}; try a smaller updater.lr"
        log.error("%s (run dir %s)", message, display_path(job_dir))
        return Outcome(Status.DIVERGED, monitor.worst, message)

    best = result.best
    test = ""
    if metrics.get("test_loss") is not None:
        test = f"  test_loss {metrics['test_loss']:.4f}  test_acc {metrics['test_acc']:.4f}"
    log.info(
        "best epoch %d by %s: val_loss %.4f  val_acc %.4f%s; run dir %s",
        result.best_epoch,
        monitor.value,
        best.val_loss,
        best.val_acc,
        test,
        display_path(job_dir),
    )
    if has_events:
        log.info("view it: tensorboard --logdir %s", display_path(job_dir))
    return Outcome(Status.COMPLETED, result.best_value)
