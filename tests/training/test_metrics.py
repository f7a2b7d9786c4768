"""The classification metrics, checked against scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from logreg_exp.training.metrics import (
    classification_metrics,
    confusion_matrix,
    probabilities,
    reliability,
    roc_auc,
    tune_threshold,
)


def test_roc_auc_is_scikit_learns_ties_included():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500).astype(float)
    scores = np.round(labels + rng.normal(size=500), 1)  # rounded: many ties
    assert roc_auc(scores, labels) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)


def test_roc_auc_at_its_bounds_and_where_it_is_undefined():
    labels = np.array([0, 0, 1, 1.0])
    assert roc_auc(np.array([-2, -1, 1, 2.0]), labels) == 1.0
    assert roc_auc(np.array([2, 1, -1, -2.0]), labels) == 0.0
    assert roc_auc(np.zeros(4), labels) == 0.5  # all tied
    assert roc_auc(np.array([1.0, 2.0]), np.array([1.0, 1.0])) is None


def test_confusion_matrix_is_scikit_learns_layout():
    rng = np.random.default_rng(1)
    labels, predicted = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    expected = sk.confusion_matrix(labels, predicted, labels=[0, 1])
    np.testing.assert_array_equal(confusion_matrix(predicted, labels), expected)
    np.testing.assert_array_equal(confusion_matrix(np.ones(3), np.ones(3)), [[0, 0], [0, 3]])


# --- the metrics that decide, for K classes ----------------------------------------------------


def random_problem(k: int, n: int = 400, seed: int = 0):
    """Probabilities that mean something (correlated with the labels), with ties."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = np.round(2 * np.eye(k)[labels] + rng.normal(size=(n, k)), 1)
    return probabilities(logits if k > 2 else logits[:, 1] - logits[:, 0]), labels


@pytest.mark.parametrize("k", [2, 3, 10])
def test_every_metric_is_scikit_learns(k):
    proba, labels = random_problem(k)
    got = classification_metrics(proba, labels)
    classes = list(range(k))
    predicted = proba.argmax(axis=1) if k > 2 else (proba[:, 1] > 0.5).astype(int)
    average = "binary" if k == 2 else "macro"
    expected = {
        "log_loss": sk.log_loss(labels, proba, labels=classes),
        "acc": sk.accuracy_score(labels, predicted),
        "balanced_acc": sk.balanced_accuracy_score(labels, predicted),
        "precision": sk.precision_score(labels, predicted, average=average, zero_division=0),
        "recall": sk.recall_score(labels, predicted, average=average, zero_division=0),
        "f1": sk.f1_score(labels, predicted, average=average, zero_division=0),
    }
    for avg in ("macro", "weighted"):
        for name, fn in (("precision", sk.precision_score), ("recall", sk.recall_score),
                         ("f1", sk.f1_score)):  # fmt: skip
            expected[f"{name}_{avg}"] = fn(
                labels, predicted, labels=classes, average=avg, zero_division=0
            )
    if k == 2:
        expected["roc_auc"] = sk.roc_auc_score(labels, proba[:, 1])
        expected["pr_auc"] = sk.average_precision_score(labels, proba[:, 1])
        expected["brier"] = sk.brier_score_loss(labels, proba[:, 1])
    else:
        expected["roc_auc"] = sk.roc_auc_score(labels, proba, multi_class="ovr", average="macro")
        onehot = np.eye(k)[labels]
        expected["pr_auc"] = sk.average_precision_score(onehot, proba, average="macro")
        expected["brier"] = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name
    p, r, f, s = sk.precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    assert got["per_class"]["precision"] == pytest.approx(p.tolist())
    assert got["per_class"]["recall"] == pytest.approx(r.tolist())
    assert got["per_class"]["f1"] == pytest.approx(f.tolist())
    assert got["per_class"]["support"] == s.tolist()
    assert (
        got["confusion_matrix"] == sk.confusion_matrix(labels, predicted, labels=classes).tolist()
    )


def test_a_binary_models_probabilities_keep_confident_scores_apart():
    proba = probabilities(np.array([20.0, 25.0, -30.0]))
    assert proba[0, 1] < proba[1, 1] < 1 and proba[2, 0] < 1
    np.testing.assert_allclose(proba.sum(axis=1), 1)


def test_the_reliability_bins_are_scikit_learns_calibration_curve():
    from sklearn.calibration import calibration_curve

    proba, labels = random_problem(2, seed=3)
    observed, predicted = calibration_curve(labels, proba[:, 1], n_bins=10)
    got = reliability(proba, labels)
    np.testing.assert_allclose(got["observed"], observed)
    np.testing.assert_allclose(got["predicted"], predicted)
    assert sum(got["count"]) == len(labels)


@pytest.mark.parametrize("metric", ["f1", "acc", "balanced_acc"])
def test_the_tuned_threshold_is_the_best_of_every_cut(metric):
    proba, labels = random_problem(2, n=120, seed=4)
    threshold = tune_threshold(proba, labels, metric)
    score = {"f1": sk.f1_score, "acc": sk.accuracy_score,
             "balanced_acc": sk.balanced_accuracy_score}[metric]  # fmt: skip
    at = lambda t: score(labels, (proba[:, 1] > t).astype(int))  # noqa: E731
    best = max(at(t) for t in np.unique(proba[:, 1]) - 1e-12)
    assert at(threshold) == pytest.approx(best)
    assert classification_metrics(proba, labels, threshold)[metric] == pytest.approx(best)
