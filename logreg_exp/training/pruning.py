"""Successive halving across the columns of a stacked model (``hydra.launcher.prune``): every
``every`` epochs, the worst ``fraction`` of the columns still training, by the best value of
the monitored metric so far, stop; their jobs end ``pruned``, with what they trained.

A column's update never reads another column's, so stopping one leaves the others' numbers
as they would be without pruning: each surviving job still equals the basic launcher's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor

if TYPE_CHECKING:  # the launcher reads the rule before torch is imported
    from logreg_exp.training.loop import FitResult

PRUNE_KEY = "hydra.launcher.prune"


@dataclass(frozen=True)
class SuccessiveHalving:
    every: int  # epochs between two rounds
    fraction: float  # the share of the columns still training that stops at each round

    @classmethod
    def from_config(cls, prune: Mapping[str, Any] | int | None) -> SuccessiveHalving | None:
        """The rule ``hydra.launcher.prune`` sets: a number of epochs (``every``, halving), or
        ``every`` and ``fraction``; None where it is unset or null (the default: no
        pruning). A ConfigError naming the key and what it allows for a bad value."""
        every_key = f"{PRUNE_KEY}.every"
        if prune is None:
            return None
        if not isinstance(prune, Mapping):
            prune, every_key = {"every": prune}, PRUNE_KEY
        if prune.get("every") is None:
            return None
        every, fraction = prune.get("every"), prune.get("fraction", 0.5)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(
                f"{every_key} must be a positive integer (epochs) or null, got {every!r}"
            )
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not 0 < fraction < 1
        ):
            raise ConfigError(
                f"{PRUNE_KEY}.fraction must be in the open interval (0, 1), got {fraction!r}"
            )
        unknown = sorted(set(prune) - {"every", "fraction"})
        if unknown:
            raise ConfigError(f"{PRUNE_KEY} has no key {unknown[0]!r}; allowed: every, fraction")
        return cls(every, float(fraction))

    def to_stop(
        self, epoch: int, results: Sequence[FitResult], training: Sequence[int], monitor: Monitor
    ) -> list[int]:
        """The columns of ``training`` to stop after ``epoch``: none between rounds; at a round
        the worst ``floor(fraction * len(training))`` by their best monitored value so far
        (ties: the later column first), always leaving one."""
        if epoch % self.every or len(training) < 2:
            return []
        n = min(math.floor(self.fraction * len(training)), len(training) - 1)
        if n < 1:
            return []

        def worse_first(k: int) -> tuple[float, int]:
            value = results[k].best_value
            key = monitor.sort_key(value) if value is not None else math.inf
            return (-key, -k)

        return sorted(training, key=worse_first)[:n]
