"""Learning-rate schedules (``scheduler=none|step|cosine|plateau``), one place for every way a
model trains: a single run (``loop.fit``, eager or replaying CUDA graphs) and each column of a
vectorized group (``stacked.fit_stacked``).

A column (a single run is one) has its own torch scheduler (StepLR, CosineAnnealingLR,
ReduceLROnPlateau) on a stand-in optimizer of one parameter group: torch's own rule, with the
column's settings and its metric, computes the column's next learning rate, and
``set_learning_rates`` writes it where the updater reads it (a torch optimizer's param groups,
``ManualSGD.lr``, a stacked updater's lr column). So a column's learning rates are the same
floats whichever path trains it, and its schedule's state is torch's, which ``last.pt`` keeps.
The training loops call ``Schedule.after_epoch`` once an epoch, after validation; a CUDA graph,
which bakes the learning rate in, is recorded again when it changes (``graphs.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch.optim import lr_scheduler

from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor


class ColumnLearningRates(Protocol):
    """An updater that is no torch optimizer, with a learning rate per column (one for
    ``ManualSGD``, K for a stacked updater)."""

    def learning_rates(self) -> list[float]: ...

    def set_learning_rates(self, lrs: Sequence[float]) -> None: ...


Scheduled = torch.optim.Optimizer | ColumnLearningRates


def learning_rates(updater: Scheduled) -> list[float]:
    """The learning rate each column of ``updater`` steps with now."""
    if isinstance(updater, torch.optim.Optimizer):
        return [float(updater.param_groups[0]["lr"])]
    return updater.learning_rates()


def set_learning_rates(updater: Scheduled, lrs: Sequence[float]) -> None:
    """Each column of ``updater`` steps with ``lrs`` from now on (a torch optimizer is one
    column: all its parameter groups take it)."""
    if isinstance(updater, torch.optim.Optimizer):
        (lr,) = lrs
        for group in updater.param_groups:
            group["lr"] = lr
    else:
        updater.set_learning_rates(lrs)


class ColumnSchedule:
    """One column's learning rate, epoch by epoch, by torch's scheduler that ``settings``
    (a ``SchedulerConfig``) names, from ``lr``. ``epochs``: the run's (cosine's default
    T_max); ``monitor``: the metric a plateau watches, and which way is better."""

    def __init__(self, settings: Any, lr: float, epochs: int, monitor: Monitor) -> None:
        # the optimizer torch's scheduler sets; its parameter never has a gradient
        self.holder = torch.optim.SGD([torch.zeros(0, requires_grad=True)], lr=lr)
        self.scheduler: Any = None
        name = settings.name
        if name == "step":
            self.scheduler = lr_scheduler.StepLR(
                self.holder, step_size=settings.step_size, gamma=settings.gamma
            )
        elif name == "cosine":
            t_max = settings.T_max if settings.T_max is not None else epochs
            self.scheduler = lr_scheduler.CosineAnnealingLR(
                self.holder, T_max=t_max, eta_min=settings.eta_min
            )
        elif name == "plateau":
            self.scheduler = lr_scheduler.ReduceLROnPlateau(
                self.holder, mode="min" if monitor.lower_is_better else "max",
                factor=settings.factor, patience=settings.patience,
                threshold=settings.threshold, threshold_mode=settings.threshold_mode,
                cooldown=settings.cooldown, min_lr=settings.min_lr, eps=settings.eps,
            )  # fmt: skip
        elif name != "none":
            raise ConfigError(
                f"scheduler.name={name!r} is not known; allowed: none, step, cosine, plateau"
            )
        self.holder.step()  # a step before the scheduler's, as torch expects: a no-op here

    @property
    def lr(self) -> float:
        return float(self.holder.param_groups[0]["lr"])

    def step(self, value: float) -> None:
        """The epoch ended with the monitored metric at ``value``."""
        if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(value)
        elif self.scheduler is not None:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        state = self.scheduler.state_dict() if self.scheduler is not None else {}
        return {"lr": self.lr, "scheduler": state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.holder.param_groups[0]["lr"] = state["lr"]
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])


class Schedule:
    """The learning rates of ``updater``'s columns, each column scheduled by its own
    ``settings`` (``SchedulerConfig``s, one per column) from the lr it was built with."""

    def __init__(
        self, updater: Scheduled, settings: Sequence[Any], epochs: int, monitor: Monitor
    ) -> None:
        self.updater = updater
        lrs = learning_rates(updater)
        if len(lrs) != len(settings):
            raise ValueError(f"{len(settings)} schedules for {len(lrs)} columns")
        self.columns = [
            ColumnSchedule(s, lr, epochs, monitor) for s, lr in zip(settings, lrs, strict=True)
        ]

    @property
    def lrs(self) -> list[float]:
        return [column.lr for column in self.columns]

    def after_epoch(self, values: Sequence[float | None]) -> None:
        """The epoch ended with each column's monitored metric at ``values`` (None: the
        column stopped training): the next epoch's learning rates, set in the updater."""
        for column, value in zip(self.columns, values, strict=True):
            if value is not None:
                column.step(value)
        set_learning_rates(self.updater, self.lrs)

    def state_dict(self) -> dict[str, Any]:
        """Plain values only, as ``last.pt`` (read with ``weights_only=True``) needs."""
        return {"columns": [column.state_dict() for column in self.columns]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Where ``state_dict`` was taken, the updater's learning rates included."""
        for column, column_state in zip(self.columns, state["columns"], strict=True):
            column.load_state_dict(column_state)
        set_learning_rates(self.updater, self.lrs)


def schedule_for(updater: Scheduled, settings: Sequence[Any]) -> Schedule | None:
    """The schedule of ``updater``'s columns, job ``settings[k]`` (a validated
    ``JobConfig``) for column k; None where every column keeps its learning rate, so such a
    run does exactly what it did before schedules existed."""
    if all(s.scheduler.name == "none" for s in settings):
        return None
    first = settings[0]
    return Schedule(updater, [s.scheduler for s in settings], first.epochs, Monitor(first.monitor))
