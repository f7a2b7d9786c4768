"""One job: config -> pipeline -> training -> TensorBoard, console, metrics.json, best.pt and the
picture, in the job's output dir; or a group of jobs trained as one stacked model, each job
left with the same files. The entrypoint and the launcher pass the config, the dir and what
they read from Hydra."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from logreg_exp.config import validated
from logreg_exp.files import display_path
from logreg_exp.results import (
    Monitor,
    Outcome,
    Status,
    fit_metrics,
    recorded_outcome,
    write_metrics,
)
from logreg_exp.tracking.loggers import ConsoleLogger, TensorBoardLogger, run_hparams
from logreg_exp.tracking.plots import log_decision_boundary
from logreg_exp.training.build import Pipeline, build_pipeline
from logreg_exp.training.checkpoints import (
    PROGRESS_FILE,
    SavedRun,
    discard_progress,
    ended_run_of,
    restore,
    resume_mode,
    run_to_resume,
    save_checkpoint,
    save_progress,
    unfinished_run,
)
from logreg_exp.training.devices import describe, resolve_device, set_torch_threads
from logreg_exp.training.interrupts import GracefulInterrupt
from logreg_exp.training.loop import EpochMetrics, FitResult, improvements
from logreg_exp.training.stacked import (
    ColumnLosses,
    StackedLogisticRegression,
    fit_stacked,
    stacked_updater,
)
from logreg_exp.training.updaters import ManualSGD, build_updater

log = logging.getLogger(__name__)


def run_job(
    cfg: DictConfig,
    job_dir: Path,
    default_threads: int | None = None,
    choices: Mapping[str, Any] | None = None,
) -> Outcome:
    """Train as ``cfg`` says; write TensorBoard events, ``metrics.json``, ``best.pt`` and
    ``last.pt`` into ``job_dir``. Bad config raises ConfigError before anything is written.
    A stop signal (Ctrl-C, SIGTERM, SIGUSR1/2; see ``training.interrupts``), from the moment
    it starts, ends it between minibatches with what was reached written (status
    interrupted). An unfinished run of the same config in ``job_dir`` goes on where it
    stopped, as ``resume`` says; with ``resume=auto``, one that ended stands as it is.
    ``default_threads`` is the torch thread count for ``threads: null``, from the launcher
    (None: torch's own); ``choices`` are the config group options it was composed from, for
    the HParams tab."""
    start = time.perf_counter()
    job_dir = Path(job_dir)
    with GracefulInterrupt() as interrupt:
        settings = validated(cfg)
        config, mode = run_config(cfg), resume_mode(settings.resume)
        ended = outcome_of_ended_run(job_dir, config, mode, Monitor(settings.monitor))
        if ended is not None:
            return ended
        earlier = run_to_resume(job_dir, config, mode)
        device, threads = place(settings, default_threads)
        pipeline = build_pipeline(settings, device)
        log_what_trains(pipeline, settings, device, threads)
        done = FitResult(Monitor(settings.monitor))
        replace = earlier is not None  # the event files of an earlier attempt
        if earlier is not None:
            log_resume(earlier, mode, settings.epochs)
            done = restore(pipeline, earlier.progress)
            start -= earlier.wall_s
        else:
            replace = start_over(job_dir, mode)

        def save(result: FitResult) -> None:
            try:
                save_progress(job_dir, pipeline, result, config, time.perf_counter() - start)
            except OSError as err:  # a full disk: training goes on, resuming goes back further
                log.warning(
                    "%s not written after epoch %d (%s); a restart resumes from an earlier one",
                    PROGRESS_FILE, len(result.history), err,
                )  # fmt: skip

        if earlier is None:
            job_dir.mkdir(parents=True, exist_ok=True)
            save(done)  # from here on, a run stopped at any moment resumes
        report = JobReport(cfg, settings, job_dir, choices, done, replace)
        try:
            result = pipeline.fit(
                settings.epochs, Monitor(settings.monitor), on_epoch=report.log_epoch,
                stop_requested=interrupt, start=done, save_progress=save,
            )  # fmt: skip
            stopped_by = interrupt.received.name if interrupt.received else None
            return report.finish(result, pipeline, time.perf_counter() - start, stopped_by)
        finally:
            report.close()


def run_config(cfg: DictConfig) -> dict[str, Any]:
    """The job config, resolved, as plain values: what ``last.pt`` records and compares."""
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(config, dict)
    return config


def outcome_of_ended_run(
    job_dir: Path, config: dict[str, Any], mode: str, monitor: Monitor
) -> Outcome | None:
    """With ``resume=auto``, a run of the same config in ``job_dir`` that has ended (said in
    the log): its outcome, as its metrics.json records it; its files stay as they are."""
    ended = ended_run_of(job_dir, config) if mode == "auto" else None
    recorded = recorded_outcome(job_dir, monitor) if ended is not None else None
    if ended is not None and recorded is not None:
        log.info(
            "resume=auto: %s (%s, %d epochs) has the same config: its results stand "
            "(resume=false trains it again)", ended, recorded.status, ended.epochs_done,
        )  # fmt: skip
    return recorded


def log_resume(earlier: SavedRun, mode: str, epochs: int) -> None:
    done = earlier.epochs_done
    where = f"at epoch {done + 1} of {epochs}" if done < epochs else "to write its results"
    log.info(
        "resume=%s: going on with %s %s (%d epochs done, %s)",
        mode, earlier, where, done, PROGRESS_FILE,
    )  # fmt: skip


def start_over(job_dir: Path, mode: str) -> bool:
    """With ``resume=false``, discard an unfinished run in ``job_dir`` (said in the log);
    whether there was one, whose event files the new run's replace."""
    found = unfinished_run(job_dir) if mode == "false" else None
    if found is None:
        return False
    log.info(
        "resume=false: starting over; %s (%d epochs done) is discarded",
        found, found.epochs_done,
    )  # fmt: skip
    discard_progress(job_dir)
    return True


@dataclass
class GroupMember:
    """A job of a group trained as one: its config, dir, config group choices, and the log
    file (and its line format) that its lines go to."""

    cfg: DictConfig
    job_dir: Path
    choices: Mapping[str, Any]
    log_file: Path
    log_format: str


def run_job_group(
    members: Sequence[GroupMember], default_threads: int | None = None
) -> list[Outcome]:
    """The jobs ``members``, which differ only in elementwise updater hyperparameters, trained
    as one stacked model (``training.stacked``); each job's dir then gets what ``run_job``
    would leave in it, its log file the same lines. The console gets one line an epoch for
    the group. Ctrl-C stops the group: every job interrupted, its files written."""
    start = time.perf_counter()
    settings = [validated(m.cfg) for m in members]
    first = settings[0]
    device, threads = place(first, default_threads)
    pipeline = build_pipeline(first, device)
    model = StackedLogisticRegression(pipeline.model, len(members))
    optimizer_cls, per_job = stacking_of([s.updater for s in settings])
    updater = stacked_updater(list(model.parameters()), optimizer_cls, per_job)
    loss_fn = ColumnLosses(instantiate(OmegaConf.structured(first.loss), reduction="none"))
    progress = GroupProgress(len(members), first.epochs, [m.job_dir.name for m in members])
    with GracefulInterrupt() as interrupt:
        results = fit_stacked(
            model, loss_fn, updater, pipeline.train_loader, pipeline.val_loader,
            epochs=first.epochs, device=device, monitor=Monitor(first.monitor),
            evaluators=pipeline.evaluators, on_epoch=progress, stop_requested=interrupt,
        )  # fmt: skip
    trained_s = time.perf_counter() - start
    outcomes = []
    for member, job_settings, result in zip(members, settings, results, strict=True):
        with logging_only_to(member.log_file, member.log_format):
            log_what_trains(pipeline, job_settings, device, threads)
            report = JobReport(member.cfg, job_settings, member.job_dir, member.choices)
            try:
                for metrics, is_best in zip(
                    result.history, improvements(result.history, result.monitor), strict=True
                ):
                    report.log_epoch(metrics, is_best)
                outcomes.append(report.finish(result, pipeline, trained_s))
            finally:
                report.close()
    progress.done(outcomes)
    return outcomes


def stacking_of(updaters: Sequence[Any]) -> tuple[type, list[dict[str, Any]]]:
    """The torch.optim class whose update the group's updaters share (``updater=manual`` is
    SGD's), and each job's hyperparameters as that class names them, defaults included."""
    dummy = [torch.zeros(1, requires_grad=True)]
    built = [build_updater(dummy, u) for u in updaters]
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

    def done(self, outcomes: Sequence[Outcome]) -> None:
        counts = Counter(o.status.value for o in outcomes)
        log.info(
            "group of %d jobs done: %s",
            self.size,
            ", ".join(f"{n} {status}" for status, n in counts.items()),
        )


@contextmanager
def logging_only_to(log_file: Path, line_format: str) -> Iterator[None]:
    """Log records go to ``log_file`` alone while in the block (not to the console): a group's
    jobs write their own lines to their own log files, one job after another."""
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter(line_format))
    root.handlers = [handler]
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
    log.info(
        "%d train / %d val samples, %d features, device %s, %d torch thread%s, updater %s (lr %g)",
        pipeline.n_train,
        pipeline.n_val,
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
    so a job that never ends still has its row."""

    def __init__(
        self,
        cfg: DictConfig,
        settings: Any,
        job_dir: Path,
        choices: Mapping[str, Any] | None = None,
        done: FitResult | None = None,
        replace: bool = False,
    ) -> None:
        """``done``: the epochs a resumed run finished before, and ``replace``: whether the
        dir holds an earlier attempt's event files; the new file starts with what those
        epochs logged, and takes their place (``TensorBoardLogger``)."""
        self.settings, self.job_dir = settings, job_dir
        self.console = ConsoleLogger(settings.epochs)
        self.tensorboard = TensorBoardLogger(job_dir, replace) if settings.tensorboard else None
        if self.tensorboard is not None:
            self.tensorboard.log_config(OmegaConf.to_yaml(cfg, resolve=True))
            self.tensorboard.start_session(run_hparams(cfg, choices))
            if done is not None:
                for metrics, is_best in zip(
                    done.history, improvements(done.history, done.monitor), strict=True
                ):
                    self.tensorboard.log_epoch(metrics, is_best)
            self.tensorboard.drop_replaced()

    def log_epoch(self, metrics: EpochMetrics, is_best: bool) -> None:
        self.console.log_epoch(metrics, is_best)
        if self.tensorboard is not None:
            self.tensorboard.log_epoch(metrics, is_best)

    def finish(
        self, result: FitResult, pipeline: Pipeline, wall_s: float, stopped_by: str | None = None
    ) -> Outcome:
        """Write what the job leaves behind; ``pipeline`` gives the validation points and a
        model to draw the best state with. ``wall_s``: the job's time until now;
        ``stopped_by``: the signal that interrupted it."""
        start = time.perf_counter()
        monitor = result.monitor
        if result.best_epoch:
            save_checkpoint(
                self.job_dir, result.best_state, result.best_epoch, monitor.value,
                result.best_value,
            )  # fmt: skip
        wall_s += time.perf_counter() - start
        metrics = fit_metrics(result, wall_s, pipeline.n_train, stopped_by)
        write_metrics(self.job_dir, metrics)
        if self.tensorboard is not None:
            self.tensorboard.end_session(metrics, step=len(result.history))
        if result.status is Status.COMPLETED:
            log_decision_boundary(pipeline, result, self.job_dir, self.tensorboard)
        self.close()
        return outcome(
            result, self.settings, self.job_dir, self.tensorboard is not None, stopped_by
        )

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def outcome(
    result: FitResult,
    settings: Any,
    job_dir: Path,
    has_events: bool,
    stopped_by: str | None = None,
) -> Outcome:
    """How the job ended, told in the log: its best epoch, or why it stopped."""
    monitor = result.monitor
    if result.status is Status.INTERRUPTED:
        log.warning(
            "interrupted%s in epoch %d; metrics.json and best.pt hold the best epoch so far, "
            "last.pt the %d finished: run again in %s with the same config to resume",
            f" by {stopped_by}" if stopped_by else "",
            result.stopped_at[0],
            len(result.history),
            display_path(job_dir),
        )
        return Outcome(Status.INTERRUPTED, monitor.worst, "interrupted")
    if result.status is Status.DIVERGED:
        epoch, step = result.stopped_at
        knobs = f"updater.lr={settings.updater.lr:g}"
        if settings.updater.weight_decay:
            knobs += f" and updater.weight_decay={settings.updater.weight_decay:g}"
        message = (
            f"training diverged: non-finite loss at epoch {epoch}, step {step} with {knobs}; "
            "try a smaller updater.lr"
        )
        log.error("%s (run dir %s)", message, display_path(job_dir))
        return Outcome(Status.DIVERGED, monitor.worst, message)

    best = result.best
    log.info(
        "best epoch %d by %s: val_loss %.4f  val_acc %.4f; run dir %s",
        result.best_epoch,
        monitor.value,
        best.val_loss,
        best.val_acc,
        display_path(job_dir),
    )
    if has_events:
        log.info("view it: tensorboard --logdir %s", display_path(job_dir))
    return Outcome(Status.COMPLETED, result.best_value)
