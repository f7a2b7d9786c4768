"""Classification numbers beyond loss and accuracy, from a model's scores and the true 0/1
labels: the ROC AUC and the confusion matrix.

A few lines of numpy each: scikit-learn has both, but it is only an optional extra here
(the tests check these against it). Scores are the model's logits, not probabilities: the
ranking is the same, and a float32 sigmoid rounds confident scores to exactly 1.0, which
would turn distinct scores into ties.
"""

from __future__ import annotations

import numpy as np


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """The area under the ROC curve: the probability that a random sample of class 1 scores
    above a random sample of class 0, a tie counting half (the Mann-Whitney U statistic over
    n1 * n0). None when either class is absent, where it is undefined."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(labels) > 0.5
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if n1 == 0 or n0 == 0:
        return None
    _, tie_group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # the 1-based ranks of sorted scores; tied scores share the mean of the ranks they span
    mean_rank = np.cumsum(counts) - (counts - 1) / 2
    rank_sum = float(mean_rank[tie_group][positive].sum())
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """2 x 2 counts, scikit-learn's layout: row = true class, column = predicted class, so
    [[true 0 as 0, true 0 as 1], [true 1 as 0, true 1 as 1]]."""
    truth = (np.asarray(labels) > 0.5).astype(np.int64)
    guess = (np.asarray(predicted) > 0.5).astype(np.int64)
    return np.bincount(2 * truth + guess, minlength=4).reshape(2, 2)
