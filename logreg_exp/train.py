"""The training loop: epochs of a train phase and a validation phase, keeping the best model.

It reads as the exercise's steps 6-9 and knows nothing of Hydra, files or TensorBoard: the
caller passes ``on_epoch`` to see each epoch's metrics. Each minibatch's loss and scores stay
on the device and are reduced and read once per epoch (``EpochTally``), so no minibatch waits
for the host and a step pays nothing for the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from logreg_exp.updaters import Updater

LOWER_IS_BETTER = {"val_loss": True, "val_acc": False}


@dataclass
class EpochMetrics:
    """One epoch's numbers; losses are averages over samples, accuracies at threshold 0.5."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    train_s: float
    val_s: float


@dataclass
class FitResult:
    """The best epoch by the monitored metric, with a copy of its parameters, and the history."""

    monitor: str
    best_epoch: int
    best_state: dict[str, torch.Tensor]
    history: list[EpochMetrics] = field(default_factory=list)

    @property
    def best(self) -> EpochMetrics:
        return self.history[self.best_epoch - 1]

    @property
    def best_value(self) -> float:
        return getattr(self.best, self.monitor)


def is_improvement(monitor: str, value: float, best: float | None) -> bool:
    """Whether ``value`` of metric ``monitor`` strictly beats ``best`` (None: nothing yet)."""
    if best is None:
        return True
    return value < best if LOWER_IS_BETTER[monitor] else value > best


class EpochTally:
    """Each minibatch's mean loss, scores and labels, kept on the device and reduced once.

    ``add`` is a list append per minibatch, so a step pays no arithmetic for the metrics; at
    the end of the epoch one vectorised pass weights each minibatch's mean loss by its size,
    counts the correct predictions (score > 0, i.e. probability > 0.5), and reads both to
    the host in one transfer. It holds one epoch's scores and labels: 8 bytes a sample.
    """

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.scores: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor) -> None:
        self.losses.append(loss.detach())
        self.scores.append(scores.detach())
        self.labels.append(labels)

    def mean_loss_and_accuracy(self) -> tuple[float, float]:
        scores, labels = torch.cat(self.scores), torch.cat(self.labels)
        sizes = torch.tensor([len(s) for s in self.scores], dtype=torch.float64)
        losses = torch.stack(self.losses).to(torch.float64)
        loss_sum = losses @ sizes.to(losses.device)
        correct = ((scores > 0) == (labels > 0.5)).sum()
        loss_sum, correct = torch.stack([loss_sum, correct.to(torch.float64)]).tolist()
        return loss_sum / len(labels), correct / len(labels)


def train_one_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    updater: Updater,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
) -> tuple[float, float]:
    """Step 7: one pass over the training minibatches; returns (mean loss, accuracy)."""
    model.train()
    tally = EpochTally()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        updater.zero_grad()
        scores = model(x)
        loss = loss_fn(scores, y)
        loss.backward()
        updater.step()
        tally.add(loss, scores, y)
    return tally.mean_loss_and_accuracy()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
) -> tuple[float, float]:
    """Step 8: loss averaged over all validation samples, and accuracy at threshold 0.5."""
    model.eval()
    tally = EpochTally()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        scores = model(x)
        tally.add(loss_fn(scores, y), scores, y)
    return tally.mean_loss_and_accuracy()


def fit(
    model: nn.Module,
    loss_fn: nn.Module,
    updater: Updater,
    train_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    val_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    epochs: int,
    device: torch.device,
    monitor: str = "val_loss",
    on_epoch: Callable[[EpochMetrics, bool], None] | None = None,
) -> FitResult:
    """Steps 6-9: train and validate for ``epochs``; return the best model's parameters.

    The best state is a detached copy taken when ``monitor`` improves, so later epochs,
    which update the parameters in place, cannot overwrite it.
    """
    if monitor not in LOWER_IS_BETTER:
        raise ValueError(f"monitor must be one of {sorted(LOWER_IS_BETTER)}, got {monitor!r}")
    history: list[EpochMetrics] = []
    best_value: float | None = None
    best_epoch = 0
    best_state: dict[str, torch.Tensor] = {}
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        train_loss, train_acc = train_one_epoch(model, loss_fn, updater, train_loader, device)
        t1 = time.perf_counter()
        val_loss, val_acc = evaluate(model, loss_fn, val_loader, device)
        t2 = time.perf_counter()
        metrics = EpochMetrics(epoch, train_loss, train_acc, val_loss, val_acc, t1 - t0, t2 - t1)
        history.append(metrics)

        value = getattr(metrics, monitor)
        improved = is_improvement(monitor, value, best_value)
        if improved:
            best_value, best_epoch = value, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch(metrics, improved)
    return FitResult(monitor, best_epoch, best_state, history)
