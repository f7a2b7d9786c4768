"""Classification numbers beyond loss and accuracy, from a model's scores and the true class
labels: the ROC AUC (one-vs-rest for K >= 3 classes) and the confusion matrix.

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


def roc_auc_ovr(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """K >= 3 classes: the mean over classes of each class's ROC AUC against the rest, on
    its column of ``scores`` (n, K) (scikit-learn's ``multi_class="ovr"``, macro average);
    None where a class is absent."""
    aucs = [roc_auc(scores[:, k], np.asarray(labels) == k) for k in range(scores.shape[1])]
    return None if any(a is None for a in aucs) else float(np.mean(aucs))


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, n_classes: int = 2) -> np.ndarray:
    """K x K counts, scikit-learn's layout: row = true class, column = predicted class, so
    for two [[true 0 as 0, true 0 as 1], [true 1 as 0, true 1 as 1]]. ``predicted`` and
    ``labels`` hold class numbers (for two classes anything above 0.5 is 1)."""
    if n_classes == 2:
        truth = (np.asarray(labels) > 0.5).astype(np.int64)
        guess = (np.asarray(predicted) > 0.5).astype(np.int64)
    else:
        truth, guess = np.asarray(labels).astype(np.int64), np.asarray(predicted).astype(np.int64)
    counts = np.bincount(n_classes * truth + guess, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)
