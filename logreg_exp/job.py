"""One job: config -> pipeline -> training -> TensorBoard, console, metrics.json, best.pt and the
picture, in the job's output dir. Knows nothing of Hydra: the entrypoint passes the config,
the dir and what it read from Hydra."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from logreg_exp.config import validated
from logreg_exp.errors import writing
from logreg_exp.files import display_path
from logreg_exp.results import (
    METRICS_FILE,
    Monitor,
    Outcome,
    Status,
    fit_metrics,
    write_metrics,
)
from logreg_exp.tracking.loggers import ConsoleLogger, TensorBoardLogger, run_hparams
from logreg_exp.tracking.plots import DECISION_BOUNDARY_FILE, log_decision_boundary
from logreg_exp.training.build import build_pipeline
from logreg_exp.training.checkpoints import CHECKPOINT_FILE, save_checkpoint
from logreg_exp.training.devices import describe, resolve_device, set_torch_threads
from logreg_exp.training.interrupts import GracefulInterrupt
from logreg_exp.training.loop import EpochMetrics, FitResult

log = logging.getLogger(__name__)


def run_job(
    cfg: DictConfig,
    job_dir: Path,
    default_threads: int | None = None,
    choices: Mapping[str, Any] | None = None,
) -> Outcome:
    """Train as ``cfg`` says; write TensorBoard events, ``best.pt``, the picture and, last,
    ``metrics.json`` into ``job_dir``. Bad config raises ConfigError before anything is
    written; a file that cannot be written raises OutputError naming it. Ctrl-C ends
    training between minibatches, with what was reached written (status interrupted); the
    final writes are part of the run, so a Ctrl-C during them lets them finish.
    ``default_threads`` is the torch thread count for ``threads: null``, from the launcher
    (None: torch's own); ``choices`` are the config group options it was composed from, for
    the HParams tab."""
    start = time.perf_counter()
    job_dir = Path(job_dir)
    settings = validated(cfg)
    monitor = Monitor(settings.monitor)
    device = resolve_device(settings.device.name)
    threads = set_torch_threads(settings.threads, default_threads)
    torch.manual_seed(settings.seed)
    pipeline = build_pipeline(settings, device)
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

    console = ConsoleLogger(settings.epochs)
    tensorboard: TensorBoardLogger | None = None
    events: str | Path = f"a TensorBoard event file in {display_path(job_dir)}"

    def on_epoch(metrics: EpochMetrics, is_best: bool) -> None:
        console.log_epoch(metrics, is_best)
        if tensorboard is not None:
            with writing(events):
                tensorboard.log_epoch(metrics, is_best)

    try:
        with GracefulInterrupt() as interrupt:
            if settings.tensorboard:
                with writing(events):
                    tensorboard = TensorBoardLogger(job_dir)
                events = display_path(tensorboard.path)
                with writing(events):
                    tensorboard.log_config(OmegaConf.to_yaml(cfg, resolve=True))
                    tensorboard.start_session(run_hparams(cfg, choices))
            result = pipeline.fit(
                settings.epochs, monitor, on_epoch=on_epoch, stop_requested=interrupt
            )
            late = interrupt.requested and result.status is not Status.INTERRUPTED
            metrics = fit_metrics(result, time.perf_counter() - start, pipeline.n_train)
            write_results(result, metrics, pipeline, job_dir, tensorboard, events)
            tensorboard = None
    finally:
        if tensorboard is not None:  # an error or a second Ctrl-C came first
            with suppress(OSError):
                tensorboard.close()
    if late:
        log.warning("Ctrl-C came after the last epoch; the run's files were all written")
    return outcome(result, settings, job_dir, settings.tensorboard)


def write_results(
    result: FitResult,
    metrics: dict[str, Any],
    pipeline: Any,
    job_dir: Path,
    tensorboard: TensorBoardLogger | None,
    events: str | Path,
) -> None:
    """``best.pt``, the picture, the end of the TensorBoard session, and ``metrics.json``
    last: it says how the run ended only once every other file is written, so a run that
    could not write them all never claims success."""
    if result.best_epoch:
        path = job_dir / CHECKPOINT_FILE
        with writing(display_path(path)):
            save_checkpoint(job_dir, result.best_state, result.best_epoch, *best_of(result))
    if result.status is Status.COMPLETED:
        with writing(display_path(job_dir / DECISION_BOUNDARY_FILE)):
            log_decision_boundary(pipeline, result, job_dir, tensorboard)
    if tensorboard is not None:
        with writing(events):
            tensorboard.end_session(metrics, step=len(result.history))
            tensorboard.close()
    with writing(display_path(job_dir / METRICS_FILE)):
        write_metrics(job_dir, metrics)


def best_of(result: FitResult) -> tuple[str, float]:
    assert result.best_value is not None
    return result.monitor.value, result.best_value


def outcome(result: FitResult, settings: Any, job_dir: Path, has_events: bool) -> Outcome:
    """How the job ended, told in the log: its best epoch, or why it stopped."""
    monitor = result.monitor
    if result.status is Status.INTERRUPTED:
        log.warning(
            "interrupted in epoch %d; metrics.json and best.pt hold the best epoch so far (%s)",
            result.stopped_at[0],
            display_path(job_dir),
        )
        return Outcome(Status.INTERRUPTED, monitor.worst, "interrupted")
    if result.status is Status.DIVERGED:
        epoch, step = result.stopped_at
        knobs = f"updater.lr={settings.updater.lr:g}"
        if settings.updater.weight_decay:
            knobs += f" and updater.weight_decay={settings.updater.weight_decay:g}"
        if result.non_finite == "train_loss":
            where = f"non-finite loss at epoch {epoch}, step {step}"
        else:  # the parameters overflowed in the epoch's last step
            where = f"non-finite {result.non_finite} at epoch {epoch}, after step {step}"
        message = f"training diverged: {where} with {knobs}; try a smaller updater.lr"
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
