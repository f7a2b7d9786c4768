"""ROC AUC and the confusion matrix, checked against scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from logreg_exp.training.metrics import confusion_matrix, roc_auc


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
