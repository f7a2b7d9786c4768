"""One run: build from config, train, log, and leave metrics and the best model in the run dir."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from logreg_exp.artifacts import save_checkpoint, write_metrics
from logreg_exp.builders import build_experiment
from logreg_exp.config import Monitor
from logreg_exp.devices import describe, resolve_device
from logreg_exp.startup import long_lived_objects
from logreg_exp.tracking import ConsoleLogger, TensorBoardLogger
from logreg_exp.train import EpochMetrics, FitResult, fit

log = logging.getLogger(__name__)


def display_path(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it, as a user typed it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def summarize(result: FitResult, wall_s: float, n_train: int) -> dict[str, Any]:
    """The contents of ``metrics.json`` for a completed run."""
    final = result.history[-1]
    train_s = sum(m.train_s for m in result.history)
    val_s = sum(m.val_s for m in result.history)
    return {
        "status": "completed",
        "monitor": result.monitor,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best.val_loss,
        "best_val_acc": result.best.val_acc,
        "final_val_loss": final.val_loss,
        "final_val_acc": final.val_acc,
        "epochs_run": len(result.history),
        "train_s": train_s,
        "val_s": val_s,
        "wall_s": wall_s,
        "train_samples_per_s": n_train * len(result.history) / train_s if train_s > 0 else None,
    }


def run(cfg: Any, run_dir: Path) -> float:
    """Train as ``cfg`` says, write TensorBoard events, ``metrics.json`` and ``best.pt`` into
    ``run_dir``; return the best value of the monitored metric."""
    start = time.perf_counter()
    run_dir = Path(run_dir)
    monitor = Monitor(cfg.monitor).value
    device = resolve_device(cfg.device.name)
    torch.manual_seed(cfg.seed)
    with long_lived_objects():  # the first torch.optim optimizer imports torch._dynamo
        exp = build_experiment(cfg, device)
    log.info(
        "%d train / %d val samples, %d features, device %s, updater %s (lr %g)",
        exp.n_train,
        exp.n_val,
        exp.model.n_features,
        describe(device),
        cfg.updater.name,
        cfg.updater.lr,
    )

    console = ConsoleLogger(cfg.epochs)
    tensorboard = TensorBoardLogger(run_dir)

    def on_epoch(metrics: EpochMetrics, is_best: bool) -> None:
        console.log_epoch(metrics, is_best)
        tensorboard.log_epoch(metrics, is_best)

    try:
        result = fit(
            exp.model,
            exp.loss_fn,
            exp.updater,
            exp.train_loader,
            exp.val_loader,
            epochs=cfg.epochs,
            device=device,
            monitor=monitor,
            on_epoch=on_epoch,
        )
    finally:
        tensorboard.close()

    save_checkpoint(run_dir, result.best_state, result.best_epoch, monitor, result.best_value)
    write_metrics(run_dir, summarize(result, time.perf_counter() - start, exp.n_train))
    best = result.best
    log.info(
        "best epoch %d by %s: val_loss %.4f  val_acc %.4f; run dir %s",
        result.best_epoch,
        monitor,
        best.val_loss,
        best.val_acc,
        display_path(run_dir),
    )
    log.info("view it: tensorboard --logdir %s", display_path(run_dir))
    return result.best_value
