"""The model, one linear score per sample and a probability through the sigmoid, and the
exercise's loss on those scores."""

from __future__ import annotations

import torch
from torch import nn


class LogisticRegression(nn.Module):
    """p(y = 1 | x) = sigmoid(x @ w + bias), with w of shape (n_features, 1).

    ``w`` starts as N(0, 1) draws from ``generator`` (reproducible per seed), ``bias`` at 0,
    as in the exercise's ``logreglayer``.
    """

    def __init__(
        self,
        n_features: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.w = nn.Parameter(torch.randn(n_features, 1, generator=generator, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(1, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The linear score (logit) of each sample, shape (batch,)."""
        return (x @ self.w).squeeze(1) + self.bias

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Probability of class 1 for each sample, shape (batch,)."""
        return torch.sigmoid(self(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class labels at threshold 0.5 on the probability (score > 0), shape (batch,)."""
        return (self(x) > 0).to(x.dtype)


class SigmoidBCELoss(nn.Module):
    """The exercise's loss: sigmoid of the score, then ``nn.BCELoss`` on the probability.

    Same value as ``nn.BCEWithLogitsLoss`` up to rounding, which is the stabler choice; kept so
    the exercise's version can be run and compared (``loss=bce``).
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.bce = nn.BCELoss(reduction=reduction)

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce(torch.sigmoid(scores), target)
