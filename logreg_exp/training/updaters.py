"""The two ways to apply gradients: a torch.optim optimizer, or a hand-written SGD step.

Both expose ``zero_grad()`` and ``step()`` (the loop's ``Updater``), so the training loop calls
them the same way, and ``state_dict()`` / ``load_state_dict()``, so a run resumes either.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import torch
from hydra.errors import InstantiationException

from logreg_exp.errors import ConfigError, one_line
from logreg_exp.hydra_compat import instantiate
from logreg_exp.training.lbfgs import lbfgs_optimizer
from logreg_exp.training.loop import Updater

SHARED_KNOBS = ("lr", "momentum", "weight_decay")


class StatefulUpdater(Updater, Protocol):
    """An updater whose state (momentum, Adam's moments, step counts) can be saved and put
    back, as torch.optim.Optimizer's is."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ManualSGD:
    """SGD written out by hand, with the semantics of ``torch.optim.SGD`` (dampening 0).

    For each parameter p with gradient g, under ``torch.no_grad()``:
    g = g + weight_decay * p; with momentum, buf = g on the first step and
    buf = momentum * buf + g afterwards, g = buf; then p = p - lr * g.
    The arithmetic is torch's own, in the same order, so results match bit for bit.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = list(params)
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.momentum_buffers: list[torch.Tensor | None] = [None] * len(self.params)

    @property
    def defaults(self) -> dict[str, float | bool]:
        """Its hyperparameters as ``torch.optim.SGD.defaults`` names them."""
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "dampening": 0.0,
            "weight_decay": self.weight_decay,
            "nesterov": False,
            "maximize": False,
        }

    def learning_rates(self) -> list[float]:
        return [self.lr]

    def set_learning_rates(self, lrs: Sequence[float]) -> None:
        """The lr the next steps take (a schedule's, ``training.schedules``)."""
        (self.lr,) = lrs

    def state_dict(self) -> dict[str, Any]:
        """What the next step depends on besides the parameters: the momentum buffers."""
        return {"momentum_buffers": list(self.momentum_buffers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        buffers = state["momentum_buffers"]
        if len(buffers) != len(self.params):
            raise ValueError(f"{len(buffers)} momentum buffers for {len(self.params)} parameters")
        self.momentum_buffers = [
            None if b is None else b.to(p.device, p.dtype).clone()
            for b, p in zip(buffers, self.params, strict=True)
        ]

    def zero_grad(self) -> None:
        """Drop the gradients (as torch's ``set_to_none=True``), so backward writes fresh ones."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            if self.weight_decay != 0:
                grad = grad.add(p, alpha=self.weight_decay)
            if self.momentum != 0:
                buf = self.momentum_buffers[i]
                if buf is None:
                    buf = torch.clone(grad).detach()
                    self.momentum_buffers[i] = buf
                else:
                    buf.mul_(self.momentum).add_(grad)
                grad = buf
            p.add_(grad, alpha=-self.lr)


def build_optimizer(
    params: Iterable[torch.nn.Parameter], updater_cfg: Any
) -> torch.optim.Optimizer:
    """Instantiate ``updater.optimizer`` (a ``_partial_`` ``_target_`` config) on ``params``.

    ``updater.lr``, ``updater.momentum`` and ``updater.weight_decay`` are passed to the
    optimizer's constructor where it takes them, so ``_target_=torch.optim.Adam`` works as is;
    a non-zero value that the optimizer cannot take is an error rather than silently ignored.
    """
    target = updater_cfg.optimizer["_target_"]
    setting = f"updater.optimizer._target_={target}"
    optimizer_cls = locate(target, setting)
    if needs_closure(optimizer_cls):
        raise ConfigError(
            f"{setting}: its step() needs a closure, which this training loop does not pass; "
            "updater=lbfgs trains with torch.optim.LBFGS, full batch"
        )
    accepted = inspect.signature(optimizer_cls).parameters
    kwargs: dict[str, float] = {}
    for key in SHARED_KNOBS:
        if key in updater_cfg.optimizer:
            raise ConfigError(
                f"updater.optimizer.{key} is set; set updater.{key} instead "
                f"(it is passed to {target})"
            )
        value = float(getattr(updater_cfg, key))
        if key in accepted:
            kwargs[key] = value
        elif value != 0:
            raise ConfigError(
                f"updater.{key}={value} is not a parameter of {target}; "
                f"set updater.{key}=0 or choose an optimizer that takes {key}"
            )
    try:
        factory = instantiate(updater_cfg.optimizer, _partial_=True)
        return factory(params=params, **kwargs)
    except (TypeError, ValueError, InstantiationException) as err:
        reason = one_line(err, joined=True)
        raise ConfigError(f"{setting} does not take these arguments: {reason}") from None


def locate(target: str, setting: str) -> Any:
    """The object a dotted ``target`` names: its longest importable module prefix, then
    attributes; a one-line ConfigError naming ``setting`` if there is none."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            found: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and not module_name.startswith(err.name):
                raise ConfigError(f"{setting} cannot be imported: {err}") from None
            continue
        except Exception as err:
            reason = one_line(err, joined=True)
            raise ConfigError(f"{setting} cannot be imported: {reason}") from None
        try:
            for name in parts[split:]:
                found = getattr(found, name)
        except AttributeError:
            raise ConfigError(f"{setting}: {module_name} has no {parts[split]}") from None
        return found
    raise ConfigError(f"{setting}: no module {parts[0]} to import it from")


def needs_closure(optimizer_cls: type) -> bool:
    """Whether ``optimizer_cls.step`` must be called with a closure (torch.optim.LBFGS)."""
    step = getattr(optimizer_cls, "step", None)
    try:
        closure = inspect.signature(step).parameters.get("closure") if step else None
    except (TypeError, ValueError):
        return False
    return closure is not None and closure.default is inspect.Parameter.empty


def build_updater(params: Iterable[torch.nn.Parameter], updater_cfg: Any) -> StatefulUpdater:
    """The updater that ``updater.name`` names: ``optim``, ``manual`` or ``lbfgs``."""
    if updater_cfg.name == "optim":
        return build_optimizer(params, updater_cfg)
    if updater_cfg.name == "manual":
        return ManualSGD(
            params,
            lr=float(updater_cfg.lr),
            momentum=float(updater_cfg.momentum),
            weight_decay=float(updater_cfg.weight_decay),
        )
    if updater_cfg.name == "lbfgs":
        return lbfgs_optimizer(params, updater_cfg)
    raise ConfigError(
        f"updater.name={updater_cfg.name!r} is not known; allowed: optim, manual, lbfgs"
    )
