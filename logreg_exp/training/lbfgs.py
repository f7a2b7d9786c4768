"""``updater=lbfgs``: full-batch L-BFGS (``torch.optim.LBFGS``) on the training split, for
data that fit in memory, to reach the exact optimum of the (L2-)penalized objective, the
one scikit-learn's ``LogisticRegression`` reaches.

An epoch is one ``LBFGS.step`` (up to ``updater.max_iter`` iterations, each evaluating the
objective on the whole training split: the mean loss plus the L2 term of
``training.penalties``), in place of the minibatch pass of ``loop.train_one_epoch``; the
loop then validates, keeps the best epoch and checkpoints as for any updater. The L1 part of a
penalty is not smooth, which L-BFGS needs: ``penalty=l1|elasticnet`` is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from logreg_exp.errors import ConfigError
from logreg_exp.training.loop import TrainPhase, never, tally_summary
from logreg_exp.training.penalties import l2_term, strengths


def lbfgs_optimizer(params: Any, updater_cfg: Any) -> torch.optim.LBFGS:
    """``torch.optim.LBFGS`` with the settings of ``updater=lbfgs`` (whose schema allows no
    momentum or weight decay)."""
    return torch.optim.LBFGS(
        params,
        lr=float(updater_cfg.lr),
        max_iter=int(updater_cfg.max_iter),
        history_size=int(updater_cfg.history_size),
        tolerance_grad=float(updater_cfg.tolerance_grad),
        tolerance_change=float(updater_cfg.tolerance_change),
        line_search_fn=updater_cfg.line_search_fn,
    )


def check_full_batch(settings: Any, train: TensorDataset, device: torch.device) -> None:
    """A one-line ConfigError where ``updater=lbfgs`` cannot train this run: a penalty with
    an L1 part, or a training split that is not on the model's device (too big for it)."""
    if strengths(settings)[1] != 0:
        raise ConfigError(
            f"penalty={settings.penalty} is not allowed with updater=lbfgs: its L1 part is not "
            "smooth, which L-BFGS needs; allowed: none, l2 (or updater=optim for l1, elasticnet)"
        )
    on = train.tensors[0].device
    if on.type != device.type:
        raise ConfigError(
            f"updater=lbfgs evaluates the whole training split at once, which does not fit on "
            f"{device} (it stays on the host, moved batch by batch); use updater=optim, or a "
            "smaller dataset.max_samples"
        )


class FullBatchTraining:
    """The train phase of ``updater=lbfgs``: ``train_one_epoch`` is one ``LBFGS.step`` on the
    whole of ``train`` for ``model``, ``loss_fn`` and the L2 strength ``l2``; the phase's loss
    and accuracy are the training split's after the step."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.LBFGS,
        train: TensorDataset,
        l2: float,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.x, self.y = train.tensors
        self.l2 = l2

    def objective(self) -> torch.Tensor:
        """The closure L-BFGS evaluates: the mean loss plus the L2 term, its gradient in
        ``.grad``."""
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.x), self.y)
        if self.l2:
            loss = loss + l2_term(self.model.w, self.l2)
        loss.backward()
        return loss

    def train_one_epoch(self, stop_requested: Callable[[], bool] = never) -> TrainPhase:
        if stop_requested():
            return TrainPhase(math.nan, math.nan, 0, None, stopped=True)
        self.model.train()
        self.optimizer.step(self.objective)
        with torch.no_grad():
            scores = self.model(self.x)
            loss = self.loss_fn(scores, self.y).reshape(1)
        sizes = torch.tensor([float(len(self.y))], dtype=torch.float64)
        mean, acc, first_bad = tally_summary(loss, sizes, scores, self.y)
        return TrainPhase(mean, acc, 1, first_bad)
