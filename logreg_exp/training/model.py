"""The model: for two classes one linear score per sample and a probability through the
sigmoid (the exercise's), for K >= 3 classes a score per class and the softmax (multinomial
regression); and the losses on those scores."""

from __future__ import annotations

import torch
from torch import nn


def score_columns(n_classes: int) -> int:
    """Columns of ``w``: one logit for two classes (as the exercise), one per class beyond."""
    return 1 if n_classes == 2 else n_classes


class LogisticRegression(nn.Module):
    """Two classes: p(y = 1 | x) = sigmoid(x @ w + bias), with w of shape (n_features, 1).
    K >= 3 classes: p(y = k | x) = softmax(x @ w + bias)_k, with w of shape (n_features, K).

    ``w`` starts as N(0, 1) draws from ``generator`` (reproducible per seed), ``bias`` at 0,
    as in the exercise's ``logreglayer``.
    """

    def __init__(
        self,
        n_features: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        n_classes: int = 2,
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.n_classes = n_classes
        k = score_columns(n_classes)
        self.w = nn.Parameter(torch.randn(n_features, k, generator=generator, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(k, dtype=dtype))

    @property
    def score_shape(self) -> tuple[int, ...]:
        """A sample's scores: () for two classes, (K,) for K >= 3."""
        return () if self.n_classes == 2 else (self.n_classes,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The linear scores (logits): shape (batch,) for two classes, (batch, K) beyond."""
        if self.n_classes == 2:
            return (x @ self.w).squeeze(1) + self.bias
        return torch.addmm(self.bias, x, self.w)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Two classes: the probability of class 1, shape (batch,); K >= 3: each class's,
        shape (batch, K)."""
        return probabilities(self(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class labels (score > 0 for two classes, the largest score beyond), shape (batch,)."""
        return predicted_classes(self(x)).to(x.dtype)


def probabilities(scores: torch.Tensor) -> torch.Tensor:
    """Scores (batch,) of a binary model -> p(class 1); scores (batch, K) -> softmax rows."""
    return torch.sigmoid(scores) if scores.dim() == 1 else torch.softmax(scores, dim=-1)


def predicted_classes(scores: torch.Tensor) -> torch.Tensor:
    """The class each sample's scores pick, as int64: score > 0 for a binary model's single
    logit, the largest score (the first of equal ones) over the last dimension beyond."""
    if scores.dim() == 1:
        return (scores > 0).long()
    return scores.argmax(dim=-1)


class SoftmaxCrossEntropyLoss(nn.Module):
    """Multinomial logistic loss: ``nn.functional.cross_entropy`` of the scores (batch, K) and
    the labels, which the data hold as floats 0.0 .. K-1 as they hold binary ones."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(scores, target.long(), reduction=self.reduction)


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


class ClassWeightedLoss(nn.Module):
    """A per-sample loss (built with ``reduction="none"``) times the weight of each sample's
    class, averaged over the samples (``reduction="mean"``) or not (``"none"``):
    scikit-learn's ``class_weight``, whose objective sums the weighted losses (here that
    sum over n, the number of samples, as the unweighted loss is a mean)."""

    def __init__(self, per_sample: nn.Module, weights: torch.Tensor, reduction: str = "mean"):
        super().__init__()
        self.per_sample = per_sample
        self.weights = weights
        self.reduction = reduction

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = self.per_sample(scores, target) * self.weights[target.long()]
        return losses.mean() if self.reduction == "mean" else losses
