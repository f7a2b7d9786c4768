"""Loss functions of scores (logits) that the config group ``loss`` can choose besides torch's."""

from __future__ import annotations

import torch
from torch import nn


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
