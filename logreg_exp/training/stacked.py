"""K logistic regressions trained as one: a column each, on the same data and minibatches.

The jobs of a learning-rate sweep share the data, the initial weights, the shuffling order and
every step's shape; they differ only in the arithmetic of their update. So they train as one
stacked model: weights of shape (n_features, K) and a bias of shape (K,), one matmul a
minibatch for all K, and one loss that is the sum of the K models' mean losses, so that
backward gives each column exactly its own model's gradient. The updaters here apply
``torch.optim``'s update formulas column by column, each column with its own hyperparameters
(tensors of shape (K,), which broadcast along the last dimension of both parameters). Only
optimizers whose update is elementwise are here: a column's step never reads another column,
so a column that diverges leaves the others' numbers as they are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from logreg_exp.results import Monitor, Status
from logreg_exp.training.loop import (
    Batches,
    EpochMetrics,
    FitResult,
    count_correct,
    evaluated,
    first_non_finite,
    never,
)
from logreg_exp.training.model import LogisticRegression
from logreg_exp.training.pruning import SuccessiveHalving
from logreg_exp.training.schedules import Schedule, learning_rates, set_learning_rates

Hyper = dict[str, torch.Tensor]  # hyperparameter name -> one value per column, shape (K,)


class StackedLogisticRegression(nn.Module):
    """K copies of a ``LogisticRegression``, model k being the last index k of the
    parameters. Two classes: weights (n_features, K), scores (K, B), model by model, so that
    each model's loss is a contiguous row: the per-model reductions then stay small loops
    rather than strided ones. C >= 3 classes: weights (n_features, C, K) and a bias (C, K),
    scores (K, B, C). Either way each hyperparameter's (K,) values broadcast along the
    parameters' last dimension."""

    def __init__(self, template: LogisticRegression, k: int) -> None:
        super().__init__()
        self.n_features = template.n_features
        self.n_classes = template.n_classes
        if self.n_classes == 2:
            self.w = nn.Parameter(template.w.detach().repeat(1, k))
            self.bias = nn.Parameter(template.bias.detach().repeat(k))
        else:
            self.w = nn.Parameter(template.w.detach().unsqueeze(-1).repeat(1, 1, k))
            self.bias = nn.Parameter(template.bias.detach().unsqueeze(-1).repeat(1, k))

    @classmethod
    def of_columns(cls, templates: Sequence[LogisticRegression]) -> StackedLogisticRegression:
        """Column k a copy of ``templates[k]``: each seed's own initial weights (two classes:
        ``group_run.data_parts`` trains C classes one data set at a time)."""
        model = cls(templates[0], len(templates))
        assert model.n_classes == 2
        with torch.no_grad():
            model.w.copy_(torch.cat([t.w.detach() for t in templates], dim=1))
            model.bias.copy_(torch.cat([t.bias.detach() for t in templates]))
        return model

    @property
    def k(self) -> int:
        return self.w.shape[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores (K, B) of a minibatch (B, F) that every column shares, or of one of its own
        for each column, (K, B, F) (``column_data``: seeds, folds; two classes); (K, B, C) for
        C classes."""
        if x.dim() == 3:
            return torch.baddbmm(self.bias[:, None, None], x, self.w.t().unsqueeze(2)).squeeze(2)
        if self.n_classes == 2:
            return torch.addmm(self.bias.unsqueeze(1), self.w.t(), x.t())
        scores = torch.addmm(self.bias.reshape(-1), x, self.w.reshape(self.n_features, -1))
        return scores.view(len(x), self.n_classes, self.k).permute(2, 0, 1)

    def column_state(self, k: int) -> dict[str, torch.Tensor]:
        """Model k's state dict, as ``LogisticRegression.state_dict()`` has it."""
        return column_of(self.w.detach(), self.bias.detach(), k, clone=True)

    def column(self, k: int, into: LogisticRegression | None = None) -> LogisticRegression:
        """Model k as a plain ``LogisticRegression``: a copy, in ``into`` where given."""
        model = into or LogisticRegression(
            self.n_features, dtype=self.w.dtype, n_classes=self.n_classes
        ).to(self.w.device)
        model.load_state_dict(self.column_state(k))
        return model


def column_of(
    w: torch.Tensor, bias: torch.Tensor, k: int, clone: bool = False
) -> dict[str, torch.Tensor]:
    """Model k's ``w`` and ``bias`` out of stacked ones (k the last index), in the shapes
    of a single model's: (n_features, 1) and (1,) for two classes, (n_features, C) and (C,)
    beyond (told apart by ``w``'s dimensions)."""
    if w.dim() == 2:
        column = {"w": w[:, k : k + 1], "bias": bias[k : k + 1]}
    else:
        column = {"w": w[..., k], "bias": bias[..., k]}
    return {name: t.clone() if clone else t for name, t in column.items()}


class ColumnLosses(nn.Module):
    """Each model's mean loss over the minibatch, shape (K,), from scores (K, B) and a loss
    module built with ``reduction="none"`` (the single model's loss, per sample)."""

    def __init__(self, per_sample: nn.Module) -> None:
        super().__init__()
        self.per_sample = per_sample
        # the logistic loss with logits, unweighted: its gradient has a closed form
        self.closed_form = (
            type(per_sample) is nn.BCEWithLogitsLoss
            and per_sample.weight is None
            and per_sample.pos_weight is None
        )

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if scores.dim() == 3:  # (K, B, C): each model's class scores, one loss per sample
            k, b, c = scores.shape
            return self.per_sample(scores.reshape(k * b, c), target.repeat(k)).view(k, b).mean(1)
        return self.per_sample(scores, target.expand_as(scores).contiguous()).mean(1)


def losses_and_gradients(
    model: StackedLogisticRegression,
    loss_fn: ColumnLosses,
    x: torch.Tensor,
    y: torch.Tensor,
    summed: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One minibatch's forward and backward: the columns' mean losses (K,) and scores (K, B),
    and in ``.grad`` the gradients of the losses' sum, each column its own model's.
    ``summed``: each column's gradient of its loss summed over the samples rather than
    averaged (``BatchSizes`` adds a minibatch's chunks up).

    For the logistic loss with logits (``closed_form``) they are written out, with the ops
    autograd runs for it (``binary_cross_entropy_with_logits_backward``: (sigmoid(s) - y)
    times the mean's 1/B; ``addmm``'s backward for the transposed weights: x^T times that,
    transposed; its sum over the batch for the bias). So they are autograd's numbers, bit
    for bit (``tests/training/test_stacked.py``), without building the graph, which took two
    thirds of a stacked step. Any other loss goes through autograd."""
    if not loss_fn.closed_form:
        scores = model(x)
        losses = loss_fn(scores, y)
        (losses * scores.shape[1] if summed else losses).sum().backward()
        return losses.detach(), scores.detach()
    with torch.no_grad():
        scores = model(x)
        losses = loss_fn(scores, y)
        per_score = torch.sigmoid(scores).sub_(y)  # (K, B)
        if not summed:
            per_score.mul_(1.0 / scores.shape[1])
        if x.dim() == 3:  # each column's own minibatch: x_k^T per_score_k
            model.w.grad = torch.bmm(per_score.unsqueeze(1), x).squeeze(1).t().contiguous()
        else:
            model.w.grad = torch.mm(x.t(), per_score.t())  # as mm_mat1_backward for w.t()
        model.bias.grad = per_score.sum(1)
    return losses, scores


def columns(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(list(values), dtype=like.dtype, device=like.device)


class StackedUpdater:
    """``zero_grad()`` and ``step()`` for the stacked parameters, as the loop calls them."""

    def __init__(self, params: Sequence[nn.Parameter]) -> None:
        self.params = list(params)
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self.update(i, p, p.grad)

    def update(self, i: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        raise NotImplementedError

    hyper: Hyper

    def learning_rates(self) -> list[float]:
        return self.hyper["lr_f64"].tolist()

    def set_learning_rates(self, lrs: Sequence[float]) -> None:
        """Each column's lr for the next steps (a schedule's, ``training.schedules``),
        written into the tensors every update reads."""
        self.hyper["lr"].copy_(columns(lrs, self.hyper["lr"]))
        self.hyper["lr_f64"].copy_(torch.tensor(list(lrs), dtype=torch.float64))


class StackedSGD(StackedUpdater):
    """``torch.optim.SGD`` (and ``ManualSGD``, the same with dampening 0): per column lr,
    momentum, dampening, weight_decay; nesterov and maximize for all columns alike. A column
    with momentum 0 steps on its gradient, as torch does, whatever its dampening."""

    def __init__(self, params: Sequence[nn.Parameter], hyper: Hyper, flags: Mapping[str, Any]):
        super().__init__(params)
        self.hyper = hyper
        self.lr, self.weight_decay = hyper["lr"], hyper["weight_decay"]
        self.momentum, self.dampening = hyper["momentum"], hyper["dampening"]
        self.nesterov, self.maximize = bool(flags["nesterov"]), bool(flags["maximize"])
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)
        self.without_momentum = self.momentum == 0
        self.any_momentum = not bool(self.without_momentum.all())

    def update(self, i: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        grad = -grad if self.maximize else grad
        grad = grad + self.weight_decay * p
        if self.any_momentum:
            buf = self.buffers[i]
            if buf is None:
                buf = self.buffers[i] = grad.clone()
            else:
                buf.mul_(self.momentum).add_((1 - self.dampening) * grad)
            step = grad + self.momentum * buf if self.nesterov else buf
            grad = torch.where(self.without_momentum, grad, step)
        p.sub_(self.lr * grad)


class StackedAdam(StackedUpdater):
    """``torch.optim.Adam`` and ``AdamW`` (decoupled weight decay): per column lr, both betas,
    eps, weight_decay; amsgrad and maximize for all columns alike. The bias corrections are
    computed in float64, as torch computes them in Python floats."""

    def __init__(self, params: Sequence[nn.Parameter], hyper: Hyper, flags: Mapping[str, Any]):
        super().__init__(params)
        self.hyper = hyper
        self.amsgrad, self.maximize = bool(flags["amsgrad"]), bool(flags["maximize"])
        self.decoupled = bool(flags["decoupled_weight_decay"])
        self.state = [
            [torch.zeros_like(p) for _ in range(3 if self.amsgrad else 2)] for p in self.params
        ]

    def update(self, i: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        h = self.hyper
        lr, wd, eps = h["lr"], h["weight_decay"], h["eps"]
        beta1, beta2 = h["beta1"], h["beta2"]
        grad = -grad if self.maximize else grad
        if self.decoupled:
            p.mul_(1 - lr * wd)
        else:
            grad = grad + wd * p
        exp_avg, exp_avg_sq, *max_sq = self.state[i]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).add_((1 - beta2) * grad * grad)
        step = float(self.steps)
        bias1 = 1 - h["beta1_f64"] ** step
        bias2_sqrt = (1 - h["beta2_f64"] ** step) ** 0.5
        step_size = (h["lr_f64"] / bias1).to(p.dtype)
        if self.amsgrad:
            torch.maximum(max_sq[0], exp_avg_sq, out=max_sq[0])
            exp_avg_sq = max_sq[0]
        denom = exp_avg_sq.sqrt() / bias2_sqrt.to(p.dtype) + eps
        p.sub_(step_size * (exp_avg / denom))


class StackedRMSprop(StackedUpdater):
    """``torch.optim.RMSprop``: per column lr, alpha, eps, weight_decay, momentum; centered and
    maximize for all columns alike."""

    def __init__(self, params: Sequence[nn.Parameter], hyper: Hyper, flags: Mapping[str, Any]):
        super().__init__(params)
        self.hyper = hyper
        self.centered, self.maximize = bool(flags["centered"]), bool(flags["maximize"])
        self.state = [[torch.zeros_like(p) for _ in range(3)] for p in self.params]
        self.with_momentum = hyper["momentum"] > 0
        self.any_momentum = bool(self.with_momentum.any())

    def update(self, i: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        h = self.hyper
        lr, alpha, momentum = h["lr"], h["alpha"], h["momentum"]
        grad = -grad if self.maximize else grad
        grad = grad + h["weight_decay"] * p
        square_avg, grad_avg, buf = self.state[i]
        square_avg.mul_(alpha).add_((1 - alpha) * grad * grad)
        if self.centered:
            grad_avg.lerp_(grad, 1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg + h["eps"]
        scaled = grad / avg
        if self.any_momentum:
            buf.mul_(momentum).add_(scaled)
            scaled = torch.where(self.with_momentum, buf, scaled)
        p.sub_(lr * scaled)


class StackedAdagrad(StackedUpdater):
    """``torch.optim.Adagrad``: per column lr, lr_decay, weight_decay, eps and
    initial_accumulator_value; maximize for all columns alike."""

    def __init__(self, params: Sequence[nn.Parameter], hyper: Hyper, flags: Mapping[str, Any]):
        super().__init__(params)
        self.hyper = hyper
        self.maximize = bool(flags["maximize"])
        start = hyper["initial_accumulator_value"]
        self.sums = [torch.zeros_like(p) + start for p in self.params]

    def update(self, i: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        h = self.hyper
        grad = -grad if self.maximize else grad
        grad = grad + h["weight_decay"] * p
        clr = (h["lr_f64"] / (1 + (self.steps - 1) * h["lr_decay_f64"])).to(p.dtype)
        self.sums[i].add_(grad * grad)
        std = self.sums[i].sqrt() + h["eps"]
        p.sub_(clr * (grad / std))


# torch.optim class -> (its stacked update, the hyperparameters that may differ by column, the
# settings that must be the same for all columns). The classes whose update is elementwise.
ELEMENTWISE: dict[type, tuple[type[StackedUpdater], tuple[str, ...], tuple[str, ...]]] = {
    torch.optim.SGD: (
        StackedSGD,
        ("lr", "momentum", "dampening", "weight_decay"),
        ("nesterov", "maximize"),
    ),
    torch.optim.Adam: (
        StackedAdam,
        ("lr", "betas", "eps", "weight_decay"),
        ("amsgrad", "maximize", "decoupled_weight_decay"),
    ),
    torch.optim.AdamW: (
        StackedAdam,
        ("lr", "betas", "eps", "weight_decay"),
        ("amsgrad", "maximize", "decoupled_weight_decay"),
    ),
    torch.optim.RMSprop: (
        StackedRMSprop,
        ("lr", "alpha", "eps", "weight_decay", "momentum"),
        ("centered", "maximize"),
    ),
    torch.optim.Adagrad: (
        StackedAdagrad,
        ("lr", "lr_decay", "weight_decay", "eps", "initial_accumulator_value"),
        ("maximize",),
    ),
}


def stacked_updater(
    params: Sequence[nn.Parameter], optimizer_cls: type, settings: Sequence[Mapping[str, Any]]
) -> StackedUpdater:
    """The stacked update of ``optimizer_cls`` with column k's hyperparameters from
    ``settings[k]`` (an optimizer's ``defaults``: every hyperparameter torch would use,
    its own defaults included)."""
    updater_cls, per_column, _ = ELEMENTWISE[optimizer_cls]
    like = params[0]
    hyper: Hyper = {}
    for name in per_column:
        if name == "betas":
            for j, beta in enumerate(("beta1", "beta2")):
                values = [float(s["betas"][j]) for s in settings]
                hyper[beta] = columns(values, like)
                hyper[f"{beta}_f64"] = torch.tensor(values, dtype=torch.float64)
        else:
            values = [float(s[name]) for s in settings]
            hyper[name] = columns(values, like)
            hyper[f"{name}_f64"] = torch.tensor(values, dtype=torch.float64)
    flags = {
        "nesterov": False,
        "maximize": False,
        "decoupled_weight_decay": optimizer_cls is torch.optim.AdamW,
        **settings[0],
    }
    return updater_cls(params, hyper, flags)


class BatchSizes:
    """Columns of several batch sizes trained on one pass over the data, each stepping at its
    own minibatch boundaries. With one seed the basic launcher's order of the samples is one
    permutation an epoch whatever the batch size, so the epoch is walked in chunks of the
    sizes' greatest common divisor: each column's gradient summed over the samples
    accumulates chunk by chunk (its weights do not change until it steps) and, where its
    minibatch ends (the last one, partial, as the loader makes it), its block steps on that
    sum over the minibatch's size. The columns of one batch size are a contiguous block
    (``blocks``: its columns as a slice) with an updater of its own on views of the stacked
    parameters (``make_updater``), so its step count, state, penalty and learning rates
    are those of a group of that batch size alone. ``learning_rates`` and
    ``set_learning_rates`` span all columns, for ``training.schedules``."""

    def __init__(
        self,
        model: StackedLogisticRegression,
        loss_fn: ColumnLosses,
        sizes: Sequence[int],
        n_train: int,
        make_updater: Callable[[list[nn.Parameter], slice], Any],
    ) -> None:
        self.model, self.loss_fn, self.n_train = model, loss_fn, n_train
        self.blocks: list[slice] = []
        for k, size in enumerate(sizes):
            if k and size == sizes[k - 1]:
                self.blocks[-1] = slice(self.blocks[-1].start, k + 1)
            else:
                self.blocks.append(slice(k, k + 1))
        self.sizes = [sizes[block.start] for block in self.blocks]
        if len(set(self.sizes)) != len(self.sizes):
            raise ValueError(f"the columns of a batch size must be contiguous: {list(sizes)}")
        self.chunk = math.gcd(*self.sizes)
        self.column_sizes = list(sizes)
        self.steps_per_epoch = [math.ceil(n_train / size) for size in sizes]
        self.params = list(model.parameters())
        self.sums = [torch.zeros_like(p) for p in self.params]
        self.updaters = []
        for block in self.blocks:  # views: a block's step writes into the stacked parameters
            views = [nn.Parameter(p.detach()[..., block]) for p in self.params]
            sums = [total[..., block] for total in self.sums]
            self.updaters.append((views, sums, make_updater(views, block)))
        self.done = 0  # samples of the epoch so far
        self.started = [0] * len(self.blocks)  # where each block's minibatch started

    def step_of(self, k: int, chunk: int) -> int:
        """The minibatch (0-based, of its epoch) of column ``k`` that holds ``chunk``."""
        return chunk * self.chunk // self.column_sizes[k]

    def train_chunk(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A chunk's forward and gradient sums; then the step of each block whose minibatch
        it completes. The columns' mean losses (K,) over the chunk and its scores."""
        for p in self.params:
            p.grad = None
        losses, scores = losses_and_gradients(self.model, self.loss_fn, x, y, summed=True)
        with torch.no_grad():
            for total, p in zip(self.sums, self.params, strict=True):
                total.add_(p.grad)
            self.done += y.shape[-1]
            end = self.done == self.n_train
            for j, size in enumerate(self.sizes):
                if self.done % size and not end:
                    continue
                views, sums, updater = self.updaters[j]
                scale = 1.0 / (self.done - self.started[j])
                for view, total in zip(views, sums, strict=True):
                    view.grad = total * scale
                updater.step()
                for total in sums:
                    total.zero_()
                self.started[j] = 0 if end else self.done
            if end:
                self.done = 0
        return losses, scores

    def learning_rates(self) -> list[float]:
        return [lr for *_, updater in self.updaters for lr in learning_rates(updater)]

    def set_learning_rates(self, lrs: Sequence[float]) -> None:
        for block, (*_, updater) in zip(self.blocks, self.updaters, strict=True):
            set_learning_rates(updater, list(lrs)[block])


class StackedTally:
    """``EpochTally`` for K models: each minibatch's K mean losses, the (K, B) scores and the
    labels, kept on the device and reduced once an epoch per model."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.scores: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def add(self, losses: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor) -> None:
        self.losses.append(losses.detach())
        self.scores.append(scores.detach())
        self.labels.append(labels)

    def __len__(self) -> int:
        return len(self.losses)

    def summary(self) -> tuple[list[float], list[float], list[int | None]]:
        """Per column: mean loss over samples, accuracy, first non-finite minibatch. Labels
        (B,) that every column shares, or (K, B) of each column's own minibatch."""
        scores, labels = torch.cat(self.scores, dim=1), torch.cat(self.labels, dim=-1)
        sizes = torch.tensor([y.shape[-1] for y in self.labels], dtype=torch.float64)
        losses = torch.stack(self.losses).to(torch.float64)  # (batches, K)
        loss_sum = sizes.to(losses.device) @ losses
        correct = count_correct(scores, labels, multiclass=scores.dim() == 3)
        bad = ~torch.isfinite(losses)
        first_bad = torch.where(bad.any(0), bad.to(torch.uint8).argmax(0), -1)
        loss_sum, correct, first_bad = (
            t.cpu().tolist() for t in (loss_sum, correct.to(torch.float64), first_bad)
        )
        n = labels.shape[-1]
        first = [int(f) if f >= 0 else None for f in first_bad]
        return [s / n for s in loss_sum], [c / n for c in correct], first


def fit_stacked(
    model: StackedLogisticRegression,
    loss_fn: ColumnLosses,
    updater: StackedUpdater,
    train_loader: Batches,
    val_loader: Batches,
    *,
    epochs: int,
    device: torch.device,
    monitor: Monitor,
    evaluators: Mapping[str, Callable[[nn.Module], float]]
    | Sequence[Mapping[str, Callable[[nn.Module], float]]]
    | None = None,
    on_epoch: Callable[[int, list[FitResult]], None] | None = None,
    stop_requested: Callable[[], bool] = never,
    schedule: Schedule | None = None,
    prune: SuccessiveHalving | None = None,
    batch_sizes: BatchSizes | None = None,
) -> list[FitResult]:
    """``loop.fit`` for the K columns at once: one ``FitResult`` per column, each what
    ``fit`` would return for that model alone. A column whose training loss or validation
    numbers turn non-finite ends diverged at that epoch, as alone; the others train on. A
    stop request (or a second Ctrl-C) ends every column still training, interrupted.
    ``schedule`` sets each column's next learning rate after each epoch, as ``fit`` does.
    ``evaluators``: one mapping for every column, or a mapping per column (its own data's).
    ``prune``: after each epoch but the last, the columns it names stop, pruned.
    ``batch_sizes``: columns of several batch sizes, which it steps chunk by chunk (the
    loader's minibatches are its chunks; ``updater`` is unused)."""
    results = [FitResult(monitor) for _ in range(model.k)]
    if evaluators is None or isinstance(evaluators, Mapping):
        evaluators = [evaluators or {}] * model.k
    training = list(range(model.k))
    best_w, best_bias = model.w.detach().clone(), model.bias.detach().clone()
    plain = model.column(0)  # each column in turn, for the evaluators
    global_steps, epoch = [0] * model.k, 0

    def stop_all(status: Status) -> list[FitResult]:
        for k in training:
            results[k].stop(status, epoch)
        return finish()

    def finish() -> list[FitResult]:
        for k, result in enumerate(results):
            if result.best_epoch:
                result.best_state = column_of(best_w, best_bias, k)
        return results

    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            model.train()
            tally = StackedTally()
            for x, y in train_loader:
                if stop_requested():
                    return stop_all(Status.INTERRUPTED)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if batch_sizes is not None:
                    losses, scores = batch_sizes.train_chunk(x, y)
                else:
                    updater.zero_grad()
                    losses, scores = losses_and_gradients(model, loss_fn, x, y)
                    updater.step()
                tally.add(losses, scores, y)
            train_loss, train_acc, first_bad = tally.summary()
            t1 = time.perf_counter()
            for k in list(training):
                if first_bad[k] is not None or not math.isfinite(train_loss[k]):
                    bad = first_bad[k] or 0
                    if batch_sizes is not None:  # its minibatch that holds the chunk
                        bad = batch_sizes.step_of(k, bad)
                    results[k].diverge("train_loss", epoch, global_steps[k] + bad + 1)
                    training.remove(k)
            for k in range(model.k):
                global_steps[k] += (
                    batch_sizes.steps_per_epoch[k] if batch_sizes is not None else len(tally)
                )
            if not training:
                break
            val_loss, val_acc = evaluate_stacked(model, loss_fn, val_loader, device)
            if stop_requested():
                return stop_all(Status.INTERRUPTED)
            t2 = time.perf_counter()
            improved = []
            for k in list(training):
                extra = evaluated(evaluators[k], model.column(k, into=plain))
                metrics = EpochMetrics(
                    epoch, train_loss[k], train_acc[k], val_loss[k], val_acc[k], t1 - t0,
                    t2 - t1, extra,
                )  # fmt: skip
                non_finite = first_non_finite(metrics)
                if non_finite is not None:  # the epoch's last step made it overflow
                    results[k].diverge(non_finite, epoch, global_steps[k])
                    training.remove(k)
                    continue
                result = results[k]
                result.history.append(metrics)
                value = getattr(metrics, monitor.value)
                if monitor.improves(value, result.best_value):
                    result.best_epoch = epoch
                    improved.append(k)
            if improved:
                cols = torch.tensor(improved, device=model.w.device)
                best_w[..., cols] = model.w.detach()[..., cols]
                best_bias[..., cols] = model.bias.detach()[..., cols]
            if schedule is not None:
                schedule.after_epoch(
                    [
                        getattr(results[k].history[-1], monitor.value) if k in training else None
                        for k in range(model.k)
                    ]
                )
            if prune is not None and epoch < epochs:
                for k in prune.to_stop(epoch, results, training, monitor):
                    results[k].stop(Status.PRUNED, epoch)
                    training.remove(k)
            if on_epoch is not None:
                on_epoch(epoch, results)
            if not training:
                break
    except KeyboardInterrupt:  # a second Ctrl-C, which does not wait for the minibatch
        return stop_all(Status.INTERRUPTED)
    return finish()


@torch.no_grad()
def evaluate_stacked(
    model: StackedLogisticRegression, loss_fn: ColumnLosses, loader: Batches, device: torch.device
) -> tuple[list[float], list[float]]:
    """``loop.evaluate`` per column: mean loss over all validation samples, and accuracy."""
    model.eval()
    tally = StackedTally()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        scores = model(x)
        tally.add(loss_fn(scores, y), scores, y)
    loss, acc, _ = tally.summary()
    return loss, acc
