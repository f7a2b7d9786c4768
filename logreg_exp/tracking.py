"""Where each epoch's metrics go: TensorBoard event files and one console line per epoch."""

from __future__ import annotations

import logging
from pathlib import Path

from logreg_exp.train import EpochMetrics

log = logging.getLogger(__name__)

SCALAR_TAGS = {
    "train/loss": "train_loss",
    "train/acc": "train_acc",
    "val/loss": "val_loss",
    "val/acc": "val_acc",
}


class TensorBoardLogger:
    """Scalars ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc`` at steps 1..epochs.

    The event file goes directly into the job's output dir, so TensorBoard's run list names
    the run by that dir.
    """

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log_epoch(self, metrics: EpochMetrics, is_best: bool) -> None:
        for tag, attr in SCALAR_TAGS.items():
            self.writer.add_scalar(tag, getattr(metrics, attr), metrics.epoch)
        for name, value in metrics.extra.items():
            self.writer.add_scalar(f"val/{name}", value, metrics.epoch)

    def close(self) -> None:
        self.writer.close()


class ConsoleLogger:
    """``epoch  3/12  train_loss 0.4821  ...  val_acc 0.7856  population_acc 0.7830  *best``"""

    def __init__(self, epochs: int) -> None:
        self.width = len(str(epochs))
        self.epochs = epochs

    def log_epoch(self, metrics: EpochMetrics, is_best: bool) -> None:
        extra = "".join(f"  {name} {value:.4f}" for name, value in metrics.extra.items())
        log.info(
            "epoch %*d/%d  train_loss %.4f  train_acc %.4f  val_loss %.4f  val_acc %.4f%s%s",
            self.width,
            metrics.epoch,
            self.epochs,
            metrics.train_loss,
            metrics.train_acc,
            metrics.val_loss,
            metrics.val_acc,
            extra,
            "  *best" if is_best else "",
        )
