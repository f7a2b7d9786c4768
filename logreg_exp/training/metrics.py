"""The classification metrics that decide, from each sample's class probabilities (shape
[N, K], binary data being K = 2) and its true class (0..K-1): log loss, accuracy, balanced
accuracy, precision/recall/F1 per class, macro and weighted, ROC AUC (one-vs-rest, macro, for
K >= 3), PR AUC (average precision), the Brier score, the confusion matrix, the reliability
diagram's bins, and the decision threshold tuned for one of them.

Written in numpy rather than taken from scikit-learn: scikit-learn is an optional extra (its
bundled datasets), and a run reports these numbers without it; the definitions are
scikit-learn's, which the tests check them against (``tests/training/test_metrics.py``). A
binary model's probabilities come from its logit in float64 (``probabilities``), so distinct
scores stay distinct where a float32 sigmoid would round them to 1.0 and make ties.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logreg_exp.config import THRESHOLD_METRICS

# each scalar of ``classification_metrics``, and whether higher is better
HIGHER_IS_BETTER = {
    "log_loss": False,
    "acc": True,
    "balanced_acc": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "precision_macro": True,
    "recall_macro": True,
    "f1_macro": True,
    "precision_weighted": True,
    "recall_weighted": True,
    "f1_weighted": True,
    "roc_auc": True,
    "pr_auc": True,
    "brier": False,
}


def probabilities(scores: np.ndarray) -> np.ndarray:
    """[N, K] class probabilities in float64 from a model's scores: one logit a sample
    (binary: sigmoid, each class's from its own side, so neither rounds to 1 - the other) or
    K logits (softmax)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        return np.column_stack([sigmoid(-s), sigmoid(s)])
    shifted = s - s.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(s: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(s))
    return np.where(s >= 0, 1 / (1 + e), e / (1 + e))


def predicted_classes(proba: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Each sample's class: for K = 2 class 1 where its probability is above ``threshold``,
    for K >= 3 the most probable class."""
    if proba.shape[1] == 2:
        return (proba[:, 1] > threshold).astype(np.int64)
    return proba.argmax(axis=1)


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


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """The area under the precision-recall curve as scikit-learn's
    ``average_precision_score`` takes it: the sum over thresholds (each distinct score) of
    the precision there times the recall it gains. None without a sample of class 1."""
    positive = np.asarray(labels) > 0.5
    if not positive.any():
        return None
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    ranked, hits = np.asarray(scores, dtype=np.float64)[order], positive[order]
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    tps = np.cumsum(hits)[last_of_tie]
    seen = (np.arange(len(ranked)) + 1)[last_of_tie]
    recall = tps / tps[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * (tps / seen)))


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's
    ``zero_division=0``)."""
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Each class's precision, recall, F1 and support from a confusion matrix."""
    tp = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    return {
        "precision": ratio(tp, predicted),
        "recall": ratio(tp, support),
        "f1": ratio(2 * tp, predicted + support),
        "support": support,
    }


def one_vs_rest(fn: Any, proba: np.ndarray, labels: np.ndarray) -> float | None:
    """``fn`` (roc_auc, average_precision) of class 1 for K = 2; for K >= 3 the mean over
    the classes of each class against the rest (scikit-learn's ``multi_class="ovr"``,
    ``average="macro"``). None where a class is absent, as it is undefined there."""
    if proba.shape[1] == 2:
        return fn(proba[:, 1], labels == 1)
    values = [fn(proba[:, c], labels == c) for c in range(proba.shape[1])]
    return None if any(v is None for v in values) else float(np.mean(values))


def classification_metrics(
    proba: np.ndarray, labels: np.ndarray, threshold: float = 0.5
) -> dict[str, Any]:
    """Every metric of the module on one split: the scalars of ``HIGHER_IS_BETTER``
    (``precision``, ``recall``, ``f1``: of class 1 for K = 2, macro for K >= 3, as
    scikit-learn's defaults), ``per_class`` (lists, one value a class) and
    ``confusion_matrix``. ``labels``: each sample's class, 0..K-1."""
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    n, k = proba.shape
    matrix = confusion_matrix(predicted_classes(proba, threshold), labels, k)
    classes = per_class(matrix)
    support = classes["support"]
    present = support > 0
    eps = np.finfo(np.float64).eps
    picked = np.clip(proba[np.arange(n), labels], eps, 1 - eps)
    onehot = np.eye(k)[labels]
    brier = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    metrics: dict[str, Any] = {
        "log_loss": float(-np.mean(np.log(picked))),
        "acc": float(np.trace(matrix) / n),
        "balanced_acc": float(np.mean(classes["recall"][present])),
    }
    for name in ("precision", "recall", "f1"):
        values = classes[name]
        metrics[name] = float(values[1]) if k == 2 else float(np.mean(values))
        metrics[f"{name}_macro"] = float(np.mean(values))
        metrics[f"{name}_weighted"] = float(np.sum(values * support) / n)
    metrics["roc_auc"] = one_vs_rest(roc_auc, proba, labels)
    metrics["pr_auc"] = one_vs_rest(average_precision, proba, labels)
    # scikit-learn's brier_score_loss: (p1 - y)^2 for binary data, half the sum over classes
    metrics["brier"] = brier / 2 if k == 2 else brier
    metrics["per_class"] = {name: classes[name].tolist() for name in classes}
    metrics["confusion_matrix"] = matrix.tolist()
    return metrics


def reliability(proba: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """The reliability diagram's points: samples binned by the predicted probability (for
    K = 2 of class 1, scikit-learn's ``calibration_curve``; for K >= 3 of the predicted class,
    its confidence), each non-empty bin's mean prediction, the observed frequency (of class 1;
    of being right) and its count, over ``bins`` equal-width bins of [0, 1]."""
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if proba.shape[1] == 2:
        predicted, observed = proba[:, 1], (labels == 1).astype(np.float64)
    else:
        predicted = proba.max(axis=1)
        observed = (proba.argmax(axis=1) == labels).astype(np.float64)
    # bin i holds (i / bins, (i + 1) / bins], the first [0, 1 / bins]: scikit-learn's edges
    which = np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], predicted)
    counts = np.bincount(which, minlength=bins)
    filled = counts > 0
    mean_predicted = np.bincount(which, predicted, bins)[filled] / counts[filled]
    frequency = np.bincount(which, observed, bins)[filled] / counts[filled]
    return {
        "predicted": mean_predicted.tolist(),
        "observed": frequency.tolist(),
        "count": counts[filled].tolist(),
    }


def tune_threshold(proba: np.ndarray, labels: np.ndarray, metric: str) -> float:
    """The threshold on class 1's probability (K = 2) that maximizes ``metric`` (one of
    ``THRESHOLD_METRICS``) on these samples: each candidate lies halfway between two adjacent
    distinct probabilities (or beyond both ends), so it splits the samples as no other
    candidate does; of equally good ones, the one nearest 0.5."""
    p = np.asarray(proba, dtype=np.float64)[:, 1]
    labels = np.asarray(labels).astype(np.int64)
    if metric not in THRESHOLD_METRICS:
        raise ValueError(f"{metric!r}: allowed {', '.join(THRESHOLD_METRICS)}")
    distinct = np.unique(p)
    candidates = np.r_[distinct[0] / 2, (distinct[1:] + distinct[:-1]) / 2, (distinct[-1] + 1) / 2]
    # counts at each candidate: predicted 1 = p above it, from the sorted probabilities
    order = np.sort(p)
    positives = np.sort(p[labels == 1])
    n1, n = len(positives), len(p)
    predicted1 = n - np.searchsorted(order, candidates, side="right")
    tp = (n1 - np.searchsorted(positives, candidates, side="right")).astype(np.float64)
    fp, fn = predicted1 - tp, n1 - tp
    tn = (n - n1) - fp
    scores = threshold_scores(metric, tp, fp, fn, tn)
    best = np.flatnonzero(scores == scores.max())
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def threshold_scores(
    metric: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray
) -> np.ndarray:
    if metric == "f1":
        return ratio(2 * tp, 2 * tp + fp + fn)
    if metric == "acc":
        return (tp + tn) / (tp + fp + fn + tn)
    return (ratio(tp, tp + fn) + ratio(tn, tn + fp)) / 2


def roc_auc_ovr(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """K >= 3 classes: the mean over classes of each class's ROC AUC against the rest, on
    its column of ``scores`` (n, K) (scikit-learn's ``multi_class="ovr"``, macro average);
    None where a class is absent."""
    return one_vs_rest(roc_auc, scores, np.asarray(labels))


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
