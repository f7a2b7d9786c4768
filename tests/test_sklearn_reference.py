"""The optimum held against scikit-learn's ``LogisticRegression`` on every dataset preset:
``updater=lbfgs`` within 1e-6 of its objective and 1e-3 of its coefficients, the preset's SGD
run within 1% of its objective (``benchmarks/sklearn_reference.py``, which the benchmark's
table prints)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.sklearn_reference import (
    available_presets,
    compare,
    objective,
    table,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("dataset", available_presets())
def test_lbfgs_reaches_scikit_learns_optimum_and_the_preset_sgd_ends_near_it(dataset):
    row = compare(dataset)
    assert abs(row.lbfgs_gap) < 1e-6, row
    assert row.coefficient_gap < 1e-3, row
    assert 0 <= row.sgd_gap < 0.01, row  # nothing beats the optimum by more than rounding
    assert min(row.sklearn_test_acc, row.lbfgs_test_acc, row.sgd_test_acc) > 0.8
    assert f"| {dataset} | {row.n_train} |" in table([row])


def test_the_objective_is_scikit_learns_for_one_logit_and_for_k():
    """Binary: one logit; K classes: softmax. Both: the mean loss + alpha / 2 * |w|^2."""
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    w, b = np.array([[0.5], [-0.25]]), np.array([0.1])
    y = np.array([1, 0, 1])
    s = x @ w[:, 0] + b[0]
    p = 1 / (1 + np.exp(-s))
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) + 0.3 / 2 * np.sum(w * w)
    assert objective(w, b, x, y, 0.3) == pytest.approx(expected, rel=1e-14)
    # the same model as softmax over two logits (0 and s) is the same loss
    w2, b2 = np.hstack([np.zeros_like(w), w]), np.array([0.0, b[0]])
    assert objective(w2, b2, x, y, 0.0) == pytest.approx(objective(w, b, x, y, 0.0), rel=1e-14)
