"""One run: build from config, train, log, and leave metrics and the best model in the run dir."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from logreg_exp.artifacts import (
    DECISION_BOUNDARY_FILE,
    display_path,
    save_checkpoint,
    write_bytes,
)
from logreg_exp.builders import Experiment, build_experiment
from logreg_exp.config import ExperimentConfig, validated
from logreg_exp.devices import describe, resolve_device
from logreg_exp.hparams import run_hparams
from logreg_exp.interrupts import GracefulInterrupt
from logreg_exp.launchers import is_installed
from logreg_exp.model import LogisticRegression
from logreg_exp.plots import DecisionBoundary, draw_decision_boundary, grid_over
from logreg_exp.results import Monitor, Outcome, Status, fit_metrics, write_metrics
from logreg_exp.threads import set_torch_threads
from logreg_exp.tracking import ConsoleLogger, TensorBoardLogger
from logreg_exp.train import EpochMetrics, FitResult, fit

log = logging.getLogger(__name__)


def fit_experiment(exp: Experiment, cfg: ExperimentConfig, **fit_kwargs: Any) -> FitResult:
    """``train.fit`` on a built experiment, for ``cfg.epochs`` epochs, keeping the best epoch
    by ``cfg.monitor``; ``fit_kwargs``: ``on_epoch``, ``stop_requested``."""
    return fit(
        exp.model,
        exp.loss_fn,
        exp.updater,
        exp.train_loader,
        exp.val_loader,
        epochs=cfg.epochs,
        device=exp.device,
        monitor=Monitor(cfg.monitor),
        evaluators=exp.evaluators,
        **fit_kwargs,
    )


def probability_on_grid(
    model: LogisticRegression, grid0: np.ndarray, grid1: np.ndarray, like: torch.Tensor
) -> np.ndarray:
    """The model's p(y=1 | x) at the points of a ``np.meshgrid``, computed in the dtype and on
    the device of ``like``; shaped like the grid."""
    points = torch.as_tensor(np.stack([grid0.ravel(), grid1.ravel()], axis=1), dtype=like.dtype)
    with torch.no_grad():
        proba = model.predict_proba(points.to(like.device))
    return proba.cpu().double().numpy().reshape(grid0.shape)


def log_decision_boundary(
    exp: Experiment,
    result: FitResult,
    run_dir: Path,
    tensorboard: TensorBoardLogger | None,
) -> None:
    """The best model's decision boundary over the validation points, for 2-feature data:
    ``decision_boundary.png`` in the run dir and the same image in TensorBoard (if on). Loads
    the best state into ``exp.model``, so call it once training is over. Without matplotlib
    it says so in one log line; it is a picture, not a result."""
    x, y = exp.val_set.tensors
    if x.shape[1] != 2:
        log.debug("no decision boundary picture: the data has %d features, not 2", x.shape[1])
        return
    if not is_installed("matplotlib"):
        log.info(
            "decision boundary picture skipped: matplotlib is not installed "
            "(pip install 'logreg-exp[plots]')"
        )
        return
    exp.model.load_state_dict(result.best_state)
    points = x.cpu().double().numpy()
    grid0, grid1 = grid_over(points)
    proba = probability_on_grid(exp.model, grid0, grid1, like=x)
    title = f"best epoch {result.best_epoch}: val_acc {result.best.val_acc:.4f}"
    boundary = DecisionBoundary(grid0, grid1, proba, points, y.cpu().numpy(), title)
    picture = draw_decision_boundary(boundary)
    write_bytes(run_dir / DECISION_BOUNDARY_FILE, picture.png)
    if tensorboard is not None:
        tensorboard.log_png(
            "decision_boundary", picture.png, picture.width, picture.height, result.best_epoch
        )


def run(
    cfg: Any,
    run_dir: Path,
    default_threads: int | None = None,
) -> Outcome:
    """Train as ``cfg`` says, write TensorBoard events, ``metrics.json`` and ``best.pt`` into
    ``run_dir``. Bad config raises ConfigError before anything is written; Ctrl-C ends it
    between minibatches, with what was reached written (status interrupted).
    ``default_threads`` is the torch thread count for ``threads: null``, from the launcher
    (None: torch's own)."""
    start = time.perf_counter()
    run_dir = Path(run_dir)
    settings = validated(cfg)
    monitor = Monitor(settings.monitor)
    device = resolve_device(settings.device.name)
    threads = set_torch_threads(settings.threads, default_threads)
    torch.manual_seed(settings.seed)
    exp = build_experiment(settings, device)
    log.info(
        "%d train / %d val samples, %d features, device %s, %d torch thread%s, updater %s (lr %g)",
        exp.n_train,
        exp.n_val,
        exp.model.n_features,
        describe(device),
        threads,
        "" if threads == 1 else "s",
        settings.updater.name,
        settings.updater.lr,
    )

    console = ConsoleLogger(settings.epochs)
    tensorboard = TensorBoardLogger(run_dir) if settings.tensorboard else None
    if tensorboard is not None:
        tensorboard.log_config(OmegaConf.to_yaml(cfg, resolve=True))
        tensorboard.start_session(run_hparams(cfg))

    def on_epoch(metrics: EpochMetrics, is_best: bool) -> None:
        console.log_epoch(metrics, is_best)
        if tensorboard is not None:
            tensorboard.log_epoch(metrics, is_best)

    try:
        with GracefulInterrupt() as interrupt:
            result = fit_experiment(exp, settings, on_epoch=on_epoch, stop_requested=interrupt)
        if result.best_epoch:
            save_checkpoint(
                run_dir, result.best_state, result.best_epoch, monitor.value, result.best_value
            )
        metrics = fit_metrics(result, time.perf_counter() - start, exp.n_train)
        write_metrics(run_dir, metrics)
        if tensorboard is not None:
            tensorboard.end_session(metrics, step=len(result.history))
        if result.status is Status.COMPLETED:
            log_decision_boundary(exp, result, run_dir, tensorboard)
    finally:
        if tensorboard is not None:
            tensorboard.close()

    if result.status is Status.INTERRUPTED:
        log.warning(
            "interrupted in epoch %d; metrics.json and best.pt hold the best epoch so far (%s)",
            result.stopped_at[0],
            display_path(run_dir),
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
        log.error("%s (run dir %s)", message, display_path(run_dir))
        return Outcome(Status.DIVERGED, monitor.worst, message)

    best = result.best
    log.info(
        "best epoch %d by %s: val_loss %.4f  val_acc %.4f; run dir %s",
        result.best_epoch,
        monitor.value,
        best.val_loss,
        best.val_acc,
        display_path(run_dir),
    )
    if tensorboard is not None:
        log.info("view it: tensorboard --logdir %s", display_path(run_dir))
    return Outcome(Status.COMPLETED, result.best_value)
