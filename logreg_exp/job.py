"""One job: config -> pipeline -> training -> the best model on the test split, once ->
TensorBoard, console, metrics.json, best.pt, preprocessing.json and the picture, in the job's
output dir. Knows nothing of Hydra: the entrypoint passes the config, the dir and what it
read from Hydra."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from logreg_exp.config import validated
from logreg_exp.data.preprocessing import Preprocessing, save_preprocessing
from logreg_exp.files import display_path
from logreg_exp.results import Monitor, Outcome, Status, fit_metrics, write_metrics
from logreg_exp.tracking.loggers import ConsoleLogger, TensorBoardLogger, run_hparams
from logreg_exp.tracking.plots import log_decision_boundary
from logreg_exp.training.build import build_pipeline
from logreg_exp.training.checkpoints import save_checkpoint
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
    """Train as ``cfg`` says, then, if training completed, evaluate the best epoch's model
    once on the test split; write TensorBoard events and the files of ``write_run_files``
    into ``job_dir``. Bad config raises ConfigError before anything is written; Ctrl-C ends
    it between minibatches, with what was reached written (status interrupted).
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

    console = ConsoleLogger(settings.epochs)
    tensorboard = TensorBoardLogger(job_dir) if settings.tensorboard else None
    if tensorboard is not None:
        tensorboard.log_config(OmegaConf.to_yaml(cfg, resolve=True))
        tensorboard.start_session(run_hparams(cfg, choices))

    def on_epoch(metrics: EpochMetrics, is_best: bool) -> None:
        console.log_epoch(metrics, is_best)
        if tensorboard is not None:
            tensorboard.log_epoch(metrics, is_best)

    try:
        with GracefulInterrupt() as interrupt:
            result = pipeline.fit(
                settings.epochs, monitor, on_epoch=on_epoch, stop_requested=interrupt
            )
        test = None
        if result.status is Status.COMPLETED:
            test = pipeline.test(result.best_state)
        metrics = fit_metrics(result, time.perf_counter() - start, pipeline.n_train, test)
        write_run_files(job_dir, result, pipeline.preprocessing, metrics)
        if tensorboard is not None:
            tensorboard.end_session(metrics, step=len(result.history))
        if result.status is Status.COMPLETED:
            log_decision_boundary(pipeline, result, job_dir, tensorboard)
    finally:
        if tensorboard is not None:
            tensorboard.close()
    return outcome(result, settings, job_dir, tensorboard is not None, metrics)


def write_run_files(
    job_dir: Path, result: FitResult, preprocessing: Preprocessing, metrics: dict[str, Any]
) -> None:
    """A trained job's files: ``preprocessing.json`` and ``best.pt`` (where an epoch
    finished), then ``metrics.json``, last, so that a run whose metrics.json says completed
    has the other two from the same run, whatever stopped an earlier run in the same dir."""
    if result.best_epoch:
        save_preprocessing(job_dir, preprocessing)
        save_checkpoint(
            job_dir, result.best_state, result.best_epoch, result.monitor.value, result.best_value
        )
    write_metrics(job_dir, metrics)


def outcome(
    result: FitResult,
    settings: Any,
    job_dir: Path,
    has_events: bool,
    metrics: Mapping[str, Any] | None = None,
) -> Outcome:
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
        message = (
            f"training diverged: non-finite loss at epoch {epoch}, step {step} with {knobs}; "
            "try a smaller updater.lr"
        )
        log.error("%s (run dir %s)", message, display_path(job_dir))
        return Outcome(Status.DIVERGED, monitor.worst, message)

    best = result.best
    metrics = metrics or {}
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
