"""A model's metrics (``training.metrics``) on one split, and its decision threshold: what
the validation split gives each epoch (``val_metrics``, or a ``monitor`` beyond val_loss and
val_acc), what the test split gives the best model at the end, what ``evaluate`` prints, and
the threshold ``threshold: tuned`` picks on the validation split."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor
from logreg_exp.training.loop import Batches, predict_scores
from logreg_exp.training.metrics import (
    classification_metrics,
    probabilities,
    reliability,
    tune_threshold,
)

DEFAULT_THRESHOLD = 0.5


def predictions(
    model: nn.Module, loader: Batches, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's class probabilities [N, K] (float64) and class (0..K-1)."""
    scores, labels = predict_scores(model, loader, device)
    return probabilities(scores.double().numpy()), labels.numpy().astype(np.int64)


def split_metrics(
    model: nn.Module, loader: Batches, device: torch.device, threshold: float
) -> dict[str, Any]:
    """Every metric of ``training.metrics`` for ``model`` on the split ``loader`` yields, and
    the reliability diagram's bins (``reliability``)."""
    proba, labels = predictions(model, loader, device)
    return {
        **classification_metrics(proba, labels, threshold),
        "reliability": reliability(proba, labels),
    }


class ValidationMetrics:
    """An evaluator (``loop.fit``'s) giving every scalar metric on the validation split, at
    ``threshold``; val_loss and val_acc are the loop's own, so they are left out."""

    def __init__(self, loader: Batches, device: torch.device, threshold: float) -> None:
        self.loader, self.device, self.threshold = loader, device, threshold

    def __call__(self, model: nn.Module) -> dict[str, float]:
        metrics = split_metrics(model, self.loader, self.device, self.threshold)
        return {
            name: value
            for name, value in metrics.items()
            if isinstance(value, float) and name != "acc"
        }


def epoch_evaluators(settings: Any, loader: Batches, device: torch.device) -> dict[str, Any]:
    """The validation metrics as an evaluator, where the run asks for them each epoch
    (``val_metrics``, or a monitor that names one); empty otherwise, so such a run does
    exactly what it did before."""
    if not (settings.val_metrics or Monitor(settings.monitor).needs_metrics):
        return {}
    return {"metrics": ValidationMetrics(loader, device, fixed_threshold(settings))}


def fixed_threshold(settings: Any) -> float:
    """The configured threshold, or 0.5 while a tuned one is not known yet (in training)."""
    value = str(settings.threshold)
    return DEFAULT_THRESHOLD if value == "tuned" else float(value)


def check_threshold(settings: Any, classes: int) -> None:
    """A threshold other than 0.5 applies to two classes only: one line otherwise."""
    if classes > 2 and str(settings.threshold) != "0.5":
        raise ConfigError(
            f"threshold={settings.threshold} applies to binary data, and the data have "
            f"{classes} classes (the most probable one is predicted); allowed: 0.5"
        )


def decision_threshold(
    settings: Any, model: nn.Module, val_loader: Batches, device: torch.device
) -> float:
    """The run's threshold for ``model`` (the best epoch's): the configured number, or the
    one that maximizes ``threshold_metric`` on the validation split."""
    if str(settings.threshold) != "tuned":
        return float(settings.threshold)
    proba, labels = predictions(model, val_loader, device)
    return tune_threshold(proba, labels, settings.threshold_metric)
