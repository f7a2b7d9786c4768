"""The train phase as CUDA graphs: an epoch's steps recorded once and replayed.

At the exercise's size a training step is a couple of dozen tiny kernels, and on a GPU
launching them costs more than running them. A CUDA graph (``torch.cuda.CUDAGraph``) records
a run of steps once, the kernels and the addresses they read and write, and replays the
whole run with one launch. What is recorded is the eager loop's own step (``zero_grad``,
forward, loss, backward, the updater's ``step``) and the per-batch tally's writes, on the
same data in the same order, so a captured run's numbers equal the eager run's up to float
rounding.

How an epoch runs (``CapturedTraining.train_one_epoch``): the loader's ``Minibatches``
reorders the training set with the same generator as the eager loop; the full minibatches
run ``steps_per_graph`` at a time as replays of one graph (its inputs copied in, its losses
and scores copied out); a last, smaller minibatch runs eagerly. The first run of steps
runs eagerly too, on the stream the graphs are captured on: that warms up what a capture
must not do (creating the updater's state, cuBLAS's workspace), as the PyTorch docs ask.
A stop request is checked between replays. A graph replays the learning rate it was recorded
with, so when a schedule (``training.schedules``) changes it, the graphs are recorded again.

The same code runs on the CPU with ``capture=False`` (every run of steps eager), which is
how the chunking, the tally and the stops are tested without a GPU.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from logreg_exp.data.loaders import Minibatches
from logreg_exp.training.loop import TrainPhase, Updater, never, tally_summary
from logreg_exp.training.schedules import learning_rates
from logreg_exp.training.updaters import ManualSGD

log = logging.getLogger(__name__)

# Steps recorded in one graph: an epoch of the exercise (500 steps) or of 4M samples at batch
# 4096 (782) is one replay; longer epochs replay it several times. A graph's size grows with
# its steps (a few dozen nodes a step), so this bounds it.
STEPS_PER_GRAPH = 1024


def cannot_capture(updater: Updater) -> str | None:
    """Why ``updater``'s step cannot be recorded in a CUDA graph, or None if it can.

    SGD and the manual step keep no count on the host; optimizers with a ``capturable``
    option (Adam, AdamW, RMSprop, ...) keep their step count on the device once it is set.
    Others (Adagrad, anything unknown) read or write host state each step.
    """
    if isinstance(updater, ManualSGD) or type(updater) is torch.optim.SGD:
        return None
    if isinstance(updater, torch.optim.Optimizer):
        if all("capturable" in group for group in updater.param_groups):
            return None
        name = f"torch.optim.{type(updater).__name__}"
        return f"{name} keeps its step count on the host (it has no capturable option)"
    return f"{type(updater).__name__} is not an updater known to be capturable"


def make_capturable(updater: Updater) -> None:
    """Set ``capturable=True`` where the optimizer has the option: its step count and bias
    corrections then live on the device, which a replayed graph can update. A step count
    already kept on the host (state restored by a resumed run) moves to its parameter's
    device, where a capturable step expects it."""
    if not isinstance(updater, torch.optim.Optimizer):
        return
    for group in updater.param_groups:
        if "capturable" not in group:
            continue
        group["capturable"] = True
        for param in group["params"]:
            state = updater.state.get(param, {})
            step = state.get("step")
            if isinstance(step, torch.Tensor) and step.device != param.device:
                state["step"] = step.to(param.device)


class StepGraph:
    """``steps`` training steps of ``batch_size`` recorded as one CUDA graph, with static
    inputs (features, labels) and outputs (each step's loss, each sample's score)."""

    def __init__(
        self,
        record: Callable[..., None],
        steps: int,
        batch_size: int,
        like: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        stream: torch.cuda.Stream,
    ) -> None:
        x, y, scores = like  # a sample's scores: one logit, or one per class (K >= 3)
        n = steps * batch_size
        self.x = torch.empty((n, *x.shape[1:]), dtype=x.dtype, device=x.device)
        self.y = torch.empty(n, dtype=y.dtype, device=y.device)
        self.losses = torch.empty(steps, dtype=x.dtype, device=x.device)
        self.scores = torch.empty((n, *scores.shape[1:]), dtype=x.dtype, device=x.device)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=stream):
            record(self.x, self.y, self.losses, self.scores, batch_size)

    def replay(
        self, x: torch.Tensor, y: torch.Tensor, losses: torch.Tensor, scores: torch.Tensor
    ) -> None:
        """Run the recorded steps on ``x``, ``y``; their losses and scores into ``losses``,
        ``scores``."""
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        losses.copy_(self.losses)
        scores.copy_(self.scores)


class CapturedTraining:
    """``loop.train_one_epoch`` for one model, its loss and updater over one training
    loader, with runs of full minibatches replayed as CUDA graphs (see the module's
    docstring). ``capture=False`` runs every step eagerly through the same code."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        updater: Updater,
        loader: DataLoader,
        *,
        capture: bool = True,
        steps_per_graph: int = STEPS_PER_GRAPH,
    ) -> None:
        self.model, self.loss_fn, self.updater = model, loss_fn, updater
        self.batches: Minibatches = loader.dataset
        self.capture = capture
        self.steps_per_graph = steps_per_graph
        self.graphs: dict[int, StepGraph] = {}
        self.recorded_lrs: list[float] | None = None  # the learning rates the graphs hold
        self.warmed_up = False
        self.stream = torch.cuda.Stream() if capture else None
        if capture:
            make_capturable(updater)

    def record_steps(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        losses: torch.Tensor,
        scores: torch.Tensor,
        batch_size: int,
    ) -> None:
        """The eager loop's step for each ``batch_size`` minibatch of ``x``, ``y``, each
        step's mean loss written to ``losses`` and its scores to ``scores``: what a graph
        records, and what runs eagerly otherwise."""
        for i, (xb, yb) in enumerate(zip(x.split(batch_size), y.split(batch_size), strict=True)):
            self.updater.zero_grad()
            batch_scores = self.model(xb)
            loss = self.loss_fn(batch_scores, yb)
            loss.backward()
            self.updater.step()
            losses[i].copy_(loss.detach())
            scores[i * batch_size : i * batch_size + len(yb)].copy_(batch_scores.detach())

    def run_steps(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        losses: torch.Tensor,
        scores: torch.Tensor,
        batch_size: int,
    ) -> None:
        """``len(losses)`` full minibatches: replayed from their graph (captured the first
        time this many are asked for) once warmed up, else eagerly on the capture stream."""
        if self.capture and self.warmed_up:
            steps = len(losses)
            if steps not in self.graphs:
                log.debug("capturing %d training steps as a CUDA graph", steps)
                self.graphs[steps] = StepGraph(
                    self.record_steps, steps, batch_size, (x, y, scores), self.stream
                )
            self.graphs[steps].replay(x, y, losses, scores)
            return
        if self.stream is None:
            self.record_steps(x, y, losses, scores, batch_size)
            return
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            self.record_steps(x, y, losses, scores, batch_size)
        torch.cuda.current_stream().wait_stream(self.stream)
        self.warmed_up = True

    def train_one_epoch(self, stop_requested: Callable[[], bool] = never) -> TrainPhase:
        """Step 7: one pass over the training minibatches, in the eager loop's order, with
        the eager loop's metrics (until a stop is requested)."""
        self.model.train()
        lrs = learning_rates(self.updater)
        if lrs != self.recorded_lrs:  # a schedule changed them: record the graphs again
            self.graphs.clear()
            self.recorded_lrs = lrs
        if self.batches.shuffle:
            self.batches.reshuffle()
        x, y = self.batches.dataset.tensors
        size = self.batches.batch_size
        n_full, rest = divmod(len(y), size)
        n_batches = n_full + (rest > 0)
        losses = torch.empty(n_batches, dtype=x.dtype, device=x.device)
        score_shape = getattr(self.model, "score_shape", ())
        scores = torch.empty((len(y), *score_shape), dtype=x.dtype, device=x.device)
        done = 0
        while done < n_batches:
            if stop_requested():
                return TrainPhase(math.nan, math.nan, done, None, stopped=True)
            steps = min(self.steps_per_graph, n_full - done) or 1  # the last, smaller one
            rows = slice(done * size, (done + steps) * size)
            if done < n_full:
                self.run_steps(x[rows], y[rows], losses[done : done + steps], scores[rows], size)
            else:
                self.record_steps(x[rows], y[rows], losses[done:], scores[rows], size)
            done += steps
        sizes = torch.full((n_batches,), float(size), dtype=torch.float64)
        if rest:
            sizes[-1] = rest
        loss, acc, first_bad = tally_summary(losses, sizes, scores, y)
        return TrainPhase(loss, acc, n_batches, first_bad)


def captured_training(
    model: nn.Module, loss_fn: nn.Module, updater: Updater, loader: DataLoader
) -> CapturedTraining | None:
    """The CUDA-graph train phase where it applies (the model on a GPU, the training set on
    it too, an updater whose step can be captured), else None (the eager loop), the log
    saying which and why."""
    if next(model.parameters()).device.type != "cuda":
        return None
    if loader.dataset.dataset.tensors[0].device.type != "cuda":
        log.info("device.cuda_graphs: the training set is on the host, so the steps run eagerly")
        return None
    reason = cannot_capture(updater)
    if reason is not None:
        log.info("device.cuda_graphs: %s, so the steps run eagerly", reason)
        return None
    log.info("device.cuda_graphs: training steps replayed as CUDA graphs")
    return CapturedTraining(model, loss_fn, updater, loader)
