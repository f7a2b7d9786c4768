import functools
import math
import tracemalloc
import warnings

import numpy as np
import pytest

from logreg_exp.data.gaussian2d import make_gaussian2d, population_accuracy


@functools.cache
def draws(d: int, flip: float, n: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of the dataset, drawn once for the cases that share ``d`` and ``flip``
    (read only)."""
    x, y = make_gaussian2d(n, d, flip, np.random.default_rng(123))
    x.flags.writeable = y.flags.writeable = False
    return x, y


@pytest.mark.parametrize(
    ("w", "b", "flip", "d"),
    [
        ([1.0, -0.8], 1.5, 0.1, 2),  # near the exercise's solution
        ([0.3, 0.2], -0.4, 0.0, 2),
        ([-1.0, 2.0, 0.5], 0.0, 0.25, 3),  # a weight on a noise feature costs accuracy
        ([0.0, 0.0], 0.7, 0.1, 2),  # constant prediction: the class prior, 0.5
    ],
)
def test_population_accuracy_matches_monte_carlo(w, b, flip, d):
    x, y = draws(d, flip)
    predicted = (x @ np.array(w) + b > 0).astype(float)
    monte_carlo = (predicted == y).mean()
    # Monte Carlo standard deviation at 2M draws is at most 0.00035
    assert abs(population_accuracy(np.array(w), b, flip) - monte_carlo) < 0.0015


def test_constant_rule_is_the_class_prior():
    assert population_accuracy(np.zeros(2), 1.0, 0.1) == pytest.approx(0.5)


def test_best_linear_rule_is_near_the_documented_optimum():
    # the measured facts: best linear rule 0.787 on the population
    rng = np.random.default_rng(0)
    best = max(
        population_accuracy(w, b, 0.1)
        for w, b in ((rng.normal(size=2), rng.normal() * 3) for _ in range(20000))
    )
    assert 0.78 < best <= 0.788


def dense_population_accuracy(w, b, flip):
    """The closed form written with the full d x d covariances, to compare against."""
    d = len(w)
    cov = np.eye(d)
    right = []
    for label, angle, shift in ((1, 0.0, (0.0, 0.0)), (0, 0.2 * np.pi, (1.0, 3.0))):
        r = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        cov[:2, :2] = r.T @ np.diag([9.0, 1.0]) @ r
        mean = np.zeros(d)
        mean[:2] = shift
        p = 0.5 * (1 + math.erf((w @ mean + b) / math.sqrt(w @ cov @ w) / math.sqrt(2)))
        right.append(p if label == 1 else 1 - p)
    return flip + (1 - 2 * flip) * 0.5 * sum(right)


def test_population_accuracy_needs_no_d_by_d_matrix():
    d = 4000  # a dense covariance would be 128 MB
    w = np.random.default_rng(1).normal(size=d) / 30
    w[:2] = (1.0, -0.8)
    expected = dense_population_accuracy(w, 1.5, 0.1)
    tracemalloc.start()
    try:
        got = population_accuracy(w, 1.5, 0.1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == pytest.approx(expected, abs=1e-12)
    assert peak < 1_000_000


def test_population_accuracy_of_a_diverged_model_is_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(population_accuracy(np.array([np.inf, 1.0]), 0.0, 0.1))
