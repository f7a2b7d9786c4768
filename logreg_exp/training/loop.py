"""The training loop: epochs of a train phase and a validation phase, keeping the best model.

It reads as the exercise's steps 6-9 and knows nothing of Hydra, files or TensorBoard: the
caller passes ``on_epoch`` to see each epoch's metrics. Each minibatch's loss and scores stay
on the device and are reduced and read once per epoch (``EpochTally``), so no minibatch waits
for the host and a step pays nothing for the metrics; a non-finite loss is found then too,
and stops the run with the exact step it appeared at.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from logreg_exp.results import Monitor, Status
from logreg_exp.training.schedules import Schedule

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


class Updater(Protocol):
    """What the training loop needs from an updater: torch.optim.Optimizer's two calls."""

    def zero_grad(self) -> None: ...

    def step(self) -> None: ...


@dataclass
class EpochMetrics:
    """One epoch's numbers; losses are averages over samples, accuracies at threshold 0.5.

    ``extra`` holds the validation-time evaluators' values (e.g. ``population_acc``).
    """

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    train_s: float
    val_s: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class FitResult:
    """How training ended, the best epoch by the monitored metric with a copy of its
    parameters (empty if no epoch finished), and every finished epoch's metrics.

    ``status`` is completed, diverged or interrupted (``stopped_at`` = (epoch, None)).
    Diverged: ``non_finite`` names what was not finite, ``train_loss`` (``stopped_at`` =
    (epoch, global step) of the first non-finite minibatch loss) or a validation metric
    (``stopped_at`` = (epoch, the epoch's last global step): the parameters that step left
    gave it). ``steps``: the training steps of the finished epochs.
    """

    monitor: Monitor
    status: Status = Status.COMPLETED
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[EpochMetrics] = field(default_factory=list)
    stopped_at: tuple[int, int | None] | None = None
    non_finite: str | None = None
    steps: int = 0
    stopped_early: int | None = None  # the last epoch, where early stopping ended training

    @property
    def best(self) -> EpochMetrics | None:
        return self.history[self.best_epoch - 1] if self.best_epoch else None

    def stop(self, status: Status, epoch: int, step: int | None = None) -> FitResult:
        """End training early with ``status`` in ``epoch`` (at global ``step``)."""
        self.status, self.stopped_at = status, (epoch, step)
        return self

    def diverge(self, non_finite: str, epoch: int, step: int) -> FitResult:
        """End training because ``non_finite`` (a metric's name) was not finite."""
        self.non_finite = non_finite
        return self.stop(Status.DIVERGED, epoch, step)

    @property
    def best_value(self) -> float | None:
        return getattr(self.best, self.monitor.value) if self.best else None

    def progress(self) -> dict[str, Any]:
        """The finished epochs and the best one, as plain values and tensors (for a
        checkpoint that ``torch.load(..., weights_only=True)`` reads back)."""
        return {
            "monitor": self.monitor.value,
            "best_epoch": self.best_epoch,
            "best_state": {k: v.detach().cpu() for k, v in self.best_state.items()},
            "history": [dataclasses.asdict(m) for m in self.history],
            "steps": self.steps,
        }

    @classmethod
    def from_progress(cls, progress: Mapping[str, Any]) -> FitResult:
        """The result after the finished epochs that ``progress()`` recorded, to go on from."""
        return cls(
            Monitor(progress["monitor"]),
            best_epoch=progress["best_epoch"],
            best_state=dict(progress["best_state"]),
            history=[EpochMetrics(**m) for m in progress["history"]],
            steps=progress["steps"],
        )


@dataclass
class TrainPhase:
    """A train phase's mean loss and accuracy, and the first minibatch (0-based) whose loss
    was not finite, if any; ``stopped`` if a stop request cut it short."""

    loss: float
    acc: float
    n_batches: int
    first_nonfinite_batch: int | None
    stopped: bool = False


def never() -> bool:
    return False


# A train phase: one pass over the training minibatches, checking the stop request between
# them (``train_one_epoch`` with its arguments bound, or a CUDA-graph version of it).
TrainEpoch = Callable[[Callable[[], bool]], TrainPhase]


class EpochTally:
    """Each minibatch's mean loss, scores and labels, kept on the device and reduced once.

    ``add`` is a list append per minibatch, so a step pays no arithmetic for the metrics; at
    the end of the epoch one vectorised pass weights each minibatch's mean loss by its size,
    counts the correct predictions (``count_correct``), and reads both to the host in one
    transfer. It holds one epoch's scores and labels: 8 bytes a sample (4 more a class
    beyond two).
    """

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.scores: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor) -> None:
        self.losses.append(loss.detach())
        self.scores.append(scores.detach())
        self.labels.append(labels)

    def __len__(self) -> int:
        return len(self.losses)

    def summary(self) -> tuple[float, float, int | None]:
        """Mean loss over samples, accuracy, and the index of the first minibatch whose loss
        was not finite (None if all were)."""
        sizes = torch.tensor([len(s) for s in self.scores], dtype=torch.float64)
        return tally_summary(
            torch.stack(self.losses), sizes, torch.cat(self.scores), torch.cat(self.labels)
        )

    def mean_loss_and_accuracy(self) -> tuple[float, float]:
        loss, acc, _ = self.summary()
        return loss, acc


def tally_summary(
    losses: torch.Tensor, sizes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor
) -> tuple[float, float, int | None]:
    """An epoch's numbers from each minibatch's mean loss (``losses``) and size (``sizes``,
    float64 on the host) and every sample's score and label: the mean loss over samples,
    the accuracy, and the index of the first minibatch whose loss was not finite (None if
    all were), read to the host in one transfer."""
    losses = losses.to(torch.float64)
    loss_sum = losses @ sizes.to(losses.device)
    correct = count_correct(scores, labels, multiclass=scores.dim() == 2)
    bad = ~torch.isfinite(losses)
    first_bad = torch.where(bad.any(), bad.to(torch.uint8).argmax(), -1)
    loss_sum, correct, first = torch.stack(
        [loss_sum, correct.to(torch.float64), first_bad.to(torch.float64)]
    ).tolist()
    n = len(labels)
    return loss_sum / n, correct / n, (int(first) if first >= 0 else None)


def count_correct(scores: torch.Tensor, labels: torch.Tensor, multiclass: bool) -> torch.Tensor:
    """How many samples the scores classify right, along the last dimension of the labels:
    a binary model's logit by its sign (probability > 0.5), K classes' scores (a last
    dimension of K) by the largest."""
    if multiclass:
        return (scores.argmax(-1) == labels.long()).sum(-1)
    return ((scores > 0) == (labels > 0.5)).sum(-1)


def epochs_without_improvement(
    history: Sequence[EpochMetrics], monitor: Monitor, min_delta: float
) -> int:
    """The epochs since the monitored metric last beat the best value before it by more
    than ``min_delta`` (Keras's ``EarlyStopping``): what ``patience`` counts. Computed from
    the finished epochs alone, so a resumed run counts as the run it goes on with did."""
    best: float | None = None
    waited = 0
    for metrics in history:
        value = getattr(metrics, monitor.value)
        shifted = value + min_delta if monitor.lower_is_better else value - min_delta
        if best is None or monitor.improves(shifted, best):
            best, waited = value, 0
        else:
            waited += 1
    return waited


def improvements(history: Sequence[EpochMetrics], monitor: Monitor) -> list[bool]:
    """For each epoch of ``history``, whether it improved on the epochs before it: the
    ``is_best`` that ``fit`` passes to ``on_epoch``."""
    best: float | None = None
    flags = []
    for metrics in history:
        value = getattr(metrics, monitor.value)
        flags.append(monitor.improves(value, best))
        best = value if flags[-1] else best
    return flags


def train_one_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    updater: Updater,
    loader: Batches,
    device: torch.device,
    stop_requested: Callable[[], bool] = never,
) -> TrainPhase:
    """Step 7: one pass over the training minibatches (until a stop is requested)."""
    model.train()
    tally = EpochTally()
    for x, y in loader:
        if stop_requested():
            return TrainPhase(math.nan, math.nan, len(tally), None, stopped=True)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        updater.zero_grad()
        scores = model(x)
        loss = loss_fn(scores, y)
        loss.backward()
        updater.step()
        tally.add(loss, scores, y)
    loss, acc, first_bad = tally.summary()
    return TrainPhase(loss, acc, len(tally), first_bad)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: nn.Module,
    loader: Batches,
    device: torch.device,
    stop_requested: Callable[[], bool] = never,
) -> tuple[float, float]:
    """Step 8: loss averaged over all validation samples, and accuracy at threshold 0.5
    (NaN for both if a stop request cut it short)."""
    model.eval()
    tally = EpochTally()
    for x, y in loader:
        if stop_requested():
            return math.nan, math.nan
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        scores = model(x)
        tally.add(loss_fn(scores, y), scores, y)
    return tally.mean_loss_and_accuracy()


@torch.no_grad()
def predict_scores(
    model: nn.Module, loader: Batches, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every sample's score (logit) and label, in the loader's order, on the CPU."""
    model.eval()
    scores, labels = [], []
    for x, y in loader:
        scores.append(model(x.to(device, non_blocking=True)))
        labels.append(y)
    return torch.cat(scores).cpu(), torch.cat(labels).cpu()


def first_non_finite(metrics: EpochMetrics) -> str | None:
    """The name of the first validation number of ``metrics`` that is NaN or infinite."""
    values = {"val_loss": metrics.val_loss, "val_acc": metrics.val_acc, **metrics.extra}
    return next((name for name, v in values.items() if not math.isfinite(v)), None)


def fit(
    model: nn.Module,
    loss_fn: nn.Module,
    updater: Updater,
    train_loader: Batches,
    val_loader: Batches,
    *,
    epochs: int,
    device: torch.device,
    monitor: Monitor = Monitor.val_loss,
    evaluators: Mapping[str, Callable[[nn.Module], float]] | None = None,
    on_epoch: Callable[[EpochMetrics, bool], None] | None = None,
    stop_requested: Callable[[], bool] = never,
    start: FitResult | None = None,
    save_progress: Callable[[FitResult], None] | None = None,
    train_epoch: TrainEpoch | None = None,
    schedule: Schedule | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
) -> FitResult:
    """Steps 6-9: train and validate for ``epochs``; return the best model's parameters.

    The best state is a detached copy taken when ``monitor`` improves, so later epochs,
    which update the parameters in place, cannot overwrite it. A non-finite training loss
    ends training after that epoch's train phase, a non-finite validation number (the last
    step made the parameters overflow) after its validation phase: status diverged, and
    that epoch is neither kept nor reported; ``stop_requested()``
    turning true, checked between minibatches, or a KeyboardInterrupt ends it with status
    interrupted. Either way the result holds every finished epoch, and only those.

    ``start``: the result of the epochs already finished (a resumed run; the model, updater
    and loaders are where those epochs left them), to go on from. ``save_progress`` is called
    with the result so far at the end of each epoch, before ``on_epoch``: a caller saves
    there what a run needs to resume.

    ``train_epoch`` replaces ``train_one_epoch`` for the train phase (the CUDA-graph
    version, ``graphs.CapturedTraining.train_one_epoch``); it must keep its results.
    ``schedule`` sets the next epoch's learning rate after each epoch, before
    ``save_progress`` (so ``last.pt`` holds it). ``patience``: end training, completed,
    once that many epochs in a row have not improved the monitored metric by more than
    ``min_delta`` (``stopped_early`` is then the last epoch).
    """
    if train_epoch is None:

        def train_epoch(stop: Callable[[], bool]) -> TrainPhase:
            return train_one_epoch(model, loss_fn, updater, train_loader, device, stop)

    result = FitResult(Monitor(monitor))
    if start is not None:
        result = dataclasses.replace(
            start, monitor=Monitor(monitor), status=Status.COMPLETED, stopped_at=None,
            history=list(start.history), best_state=dict(start.best_state),
        )  # fmt: skip
    best_value = result.best_value
    global_step = result.steps
    epoch = len(result.history)
    try:
        for epoch in range(len(result.history) + 1, epochs + 1):
            if (
                patience
                and epochs_without_improvement(result.history, result.monitor, min_delta)
                >= patience
            ):
                result.stopped_early = epoch - 1
                break
            t0 = time.perf_counter()
            phase = train_epoch(stop_requested)
            t1 = time.perf_counter()
            if phase.stopped:
                return result.stop(Status.INTERRUPTED, epoch)
            if phase.first_nonfinite_batch is not None or not math.isfinite(phase.loss):
                bad = phase.first_nonfinite_batch or 0
                return result.diverge("train_loss", epoch, global_step + bad + 1)
            global_step += phase.n_batches
            val_loss, val_acc = evaluate(model, loss_fn, val_loader, device, stop_requested)
            if stop_requested():
                return result.stop(Status.INTERRUPTED, epoch)
            extra = {name: fn(model) for name, fn in (evaluators or {}).items()}
            t2 = time.perf_counter()
            metrics = EpochMetrics(
                epoch, phase.loss, phase.acc, val_loss, val_acc, t1 - t0, t2 - t1, extra
            )
            non_finite = first_non_finite(metrics)
            if non_finite is not None:
                return result.diverge(non_finite, epoch, global_step)
            result.history.append(metrics)
            result.steps = global_step

            value = getattr(metrics, result.monitor.value)
            improved = result.monitor.improves(value, best_value)
            if improved:
                best_value, result.best_epoch = value, epoch
                result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if schedule is not None:
                schedule.after_epoch([value])
            if save_progress is not None:
                save_progress(result)
            if on_epoch is not None:
                on_epoch(metrics, improved)
    except KeyboardInterrupt:  # a second Ctrl-C, which does not wait for the minibatch
        return result.stop(Status.INTERRUPTED, epoch)
    return result
