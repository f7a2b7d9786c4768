"""Penalties on the weights (``penalty=none|l2|l1|elasticnet`` with ``alpha`` and
``l1_ratio``), one place for every way a model trains: a single run's updater (``optim`` or
``manual``, eager or replaying CUDA graphs), each column of a vectorized group, and the
full-batch objective of ``updater=lbfgs``.

The objective is scikit-learn's (``SGDClassifier``, and ``LogisticRegression`` with
``C = 1 / (alpha * n_train)``): the mean loss plus
``alpha * (l1_ratio * |w|_1 + (1 - l1_ratio) / 2 * |w|^2)``, the bias unpenalized; ``l2`` is
``l1_ratio`` 0, ``l1`` is 1. The L2 part is a gradient, added to the weights' gradient before
the updater steps; the L1 part is not smooth at 0, so it is applied by its proximal step after
the updater's (soft thresholding by ``lr * alpha * l1_ratio``), which sets weights to exactly
zero. ``Penalized`` wraps an updater with both, so the loops, the CUDA graphs and the stacked
model call it as they call any updater. A column (a single run is one) holds its strengths as
tensors of shape (columns,), broadcast along the weights' last dimension, so a single run and a
group's column do the same float operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from logreg_exp.config import PENALTIES
from logreg_exp.errors import ConfigError
from logreg_exp.training.schedules import Scheduled, learning_rates, set_learning_rates


def strengths(settings: Any) -> tuple[float, float]:
    """The (L2, L1) strengths of a job's ``penalty``, ``alpha`` and ``l1_ratio``: the
    objective adds ``l2 / 2 * |w|^2 + l1 * |w|_1``."""
    name, alpha = settings.penalty, float(settings.alpha)
    if name == "none":
        return 0.0, 0.0
    if name == "l2":
        return alpha, 0.0
    if name == "l1":
        return 0.0, alpha
    if name == "elasticnet":
        ratio = float(settings.l1_ratio)
        return alpha * (1 - ratio), alpha * ratio
    raise ConfigError(f"penalty={name!r} is not known; allowed: {', '.join(PENALTIES)}")


def l2_term(weights: torch.Tensor, l2: float) -> torch.Tensor:
    """``l2 / 2 * |w|^2``, the smooth part of the objective (``updater=lbfgs`` adds it to the
    loss its closure returns)."""
    return 0.5 * l2 * weights.square().sum()


class Penalized:
    """``updater`` stepping on the penalized objective: before its step the L2 part's
    gradient is added to ``weights.grad``, after it the L1 part's proximal step is applied
    with each column's current learning rate. ``l2`` and ``l1``: one strength per column.
    Everything else (state, learning rates, ``param_groups``) is the updater's."""

    def __init__(
        self, updater: Any, weights: torch.nn.Parameter, l2: Sequence[float], l1: Sequence[float]
    ) -> None:
        self.updater, self.weights = updater, weights
        like = weights.detach()
        self.l2 = torch.tensor(list(l2), dtype=like.dtype, device=like.device)
        self.l1 = torch.tensor(list(l1), dtype=like.dtype, device=like.device)
        self.any_l2 = bool((self.l2 != 0).any())
        self.any_l1 = bool((self.l1 != 0).any())
        self.thresholds = torch.zeros_like(self.l1)
        self.set_thresholds(learning_rates(updater))

    def __getattr__(self, name: str) -> Any:
        # param_groups, state, defaults, hyper...: the wrapped updater's
        if "updater" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["updater"], name)

    def set_thresholds(self, lrs: Sequence[float]) -> None:
        """Each column's soft threshold, ``lr * l1``, for the steps to come (written in place,
        so a CUDA graph recorded with the tensor reads the new values)."""
        lr = torch.tensor(list(lrs), dtype=torch.float64)
        self.thresholds.copy_((lr * self.l1.cpu().double()).to(self.thresholds.dtype))

    def learning_rates(self) -> list[float]:
        return learning_rates(self.updater)

    def set_learning_rates(self, lrs: Sequence[float]) -> None:
        set_learning_rates(self.updater, lrs)
        self.set_thresholds(lrs)

    def zero_grad(self) -> None:
        self.updater.zero_grad()

    def step(self) -> None:
        with torch.no_grad():
            w = self.weights
            if self.any_l2 and w.grad is not None:
                w.grad = w.grad + self.l2 * w
        self.updater.step()
        if self.any_l1:
            with torch.no_grad():
                w = self.weights
                shrunk = (w.abs() - self.thresholds).clamp_(min=0)
                w.copy_(torch.sign(w) * shrunk)

    def state_dict(self) -> dict[str, Any]:
        return self.updater.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updater.load_state_dict(state)


def penalized(updater: Scheduled, weights: torch.nn.Parameter, settings: Sequence[Any]) -> Any:
    """``updater`` with the penalty of each column's job (``settings[k]``, a validated
    ``JobConfig``), or ``updater`` itself where no column has one, so such a run does exactly
    what it did before penalties existed."""
    pairs = [strengths(s) for s in settings]
    if all(l2 == 0 and l1 == 0 for l2, l1 in pairs):
        return updater
    return Penalized(updater, weights, [p[0] for p in pairs], [p[1] for p in pairs])


def inner(updater: Any) -> Any:
    """The updater that ``Penalized`` wraps, or ``updater`` itself."""
    return updater.updater if isinstance(updater, Penalized) else updater
