"""dataset=gaussian_classes: K Gaussian classes, and the population accuracy of a linear
rule on them, held against the empirical accuracy on many draws."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from logreg_exp.data.gaussian_classes import (
    bayes_accuracy,
    make_gaussian_classes,
    polyhedron_probability,
    population_accuracy,
)


@functools.cache
def draws(k: int, d: int, n: int = 600_000) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_gaussian_classes(n, k, d, 1.5, np.random.default_rng(7))
    x.flags.writeable = y.flags.writeable = False
    return x, y


def test_the_classes_are_unit_gaussians_around_a_circle():
    x, y = make_gaussian_classes(3001, 3, 4, 2.0, np.random.default_rng(0))
    assert x.shape == (3001, 4) and np.bincount(y.astype(int)).tolist() == [1001, 1000, 1000]
    means = np.stack([x[y == k].mean(0) for k in range(3)])
    angles = 2 * np.pi * np.arange(3) / 3
    expected = np.zeros((3, 4))
    expected[:, 0], expected[:, 1] = 2 * np.cos(angles), 2 * np.sin(angles)
    np.testing.assert_allclose(means, expected, atol=0.12)
    assert np.allclose(x[y == 0].std(0), 1.0, atol=0.06)


@pytest.mark.parametrize(
    ("k", "d", "w", "b"),
    [
        (2, 2, [[-1.0], [0.3]], [0.2]),  # two classes: one logit, exact
        (3, 2, None, [0.0, 0.1, -0.2]),  # the means' directions: near the best rule
        (3, 3, [[1.0, 0.0, -1.0], [0.0, 1.0, 0.5], [0.5, -0.5, 0.0]], [0.0, 0.0, 0.3]),
        (5, 2, None, [0.0] * 5),  # 5 classes in 2 features: singular covariances
        (10, 2, "random", "random"),  # any rule in 2 features: a polygon, exact
        (4, 3, "random", "random"),  # differences of rank 3: a 1-d integral of polygons
        (5, 4, "random", "random"),  # rank 4: the quasi-Monte Carlo mean
    ],
)
def test_population_accuracy_matches_monte_carlo(k, d, w, b):
    x, y = draws(k, d)
    if w is None:  # score of class j: its mean's direction, the Bayes rule's for equal priors
        angles = 2 * np.pi * np.arange(k) / k
        w = np.zeros((d, k))
        w[0], w[1] = np.cos(angles), np.sin(angles)
    if isinstance(w, str):
        rng = np.random.default_rng(k * 10 + d)
        w, b = rng.normal(size=(d, k)), 0.5 * rng.normal(size=k)
    w, b = np.asarray(w, dtype=float), np.asarray(b, dtype=float)
    scores = x @ w + b
    predicted = (scores[:, 0] > 0).astype(float) if k == 2 else scores.argmax(1)
    monte_carlo = (predicted == y).mean()
    # at 600k draws the Monte Carlo standard deviation is at most 0.00065
    assert abs(population_accuracy(w, b, k, 1.5) - monte_carlo) < 0.003


def test_a_rule_that_ignores_x_and_a_diverged_one():
    assert population_accuracy(np.zeros((2, 4)), np.array([0, 1.0, 0, 0]), 4, 2.0) == 0.25
    assert math.isnan(population_accuracy(np.full((2, 3), np.nan), np.zeros(3), 3, 2.0))


def test_the_same_model_gives_the_same_number():
    w = np.array([[1.0, -0.5, 0.2], [0.1, 0.9, -1.0]])
    b = np.array([0.1, 0.0, -0.1])
    assert population_accuracy(w, b, 3, 2.0) == population_accuracy(w, b, 3, 2.0)


@pytest.mark.parametrize("separation", [0.5, 1.5, 4.0])
def test_the_bayes_accuracy_of_four_classes_is_the_closed_form(separation):
    # four means on a circle: class 0's Bayes region is the quadrant |x2| < x1, so
    # P(right) = P(both rotated coordinates > -separation / sqrt 2) = Phi(separation / sqrt 2)^2
    phi = 0.5 * (1 + math.erf(separation / 2))
    assert bayes_accuracy(4, separation) == pytest.approx(phi**2, abs=1e-12)


def test_three_classes_agree_with_scipys_bivariate_normal_cdf():
    from scipy.stats import multivariate_normal

    w = np.array([[1.0, -0.5, 0.2], [0.1, 0.9, -1.0], [0.3, 0.0, -0.4]])
    b, means = np.array([0.1, 0.0, -0.1]), np.zeros((3, 3))
    angles = 2 * np.pi * np.arange(3) / 3
    means[:, 0], means[:, 1] = 2 * np.cos(angles), 2 * np.sin(angles)
    right = 0.0
    for c in range(3):
        others = [j for j in range(3) if j != c]
        a = (w[:, [c]] - w[:, others]).T
        mean = a @ means[c] + b[c] - b[others]
        right += multivariate_normal.cdf(mean, cov=a @ a.T, abseps=1e-12, releps=0)  # P(D > 0)
    assert population_accuracy(w, b, 3, 2.0) == pytest.approx(right / 3, abs=1e-9)


@pytest.mark.parametrize("rotated", [False, True])
def test_a_three_dimensional_orthant_is_the_product_of_normal_cdfs(rotated):
    limits = np.array([0.3, -0.7, 1.9])
    normals = np.eye(3)
    if rotated:  # the same orthant turned: the normal mass does not change
        normals = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    expected = math.prod(0.5 * (1 + math.erf(t / math.sqrt(2))) for t in limits)
    assert polyhedron_probability(normals, limits) == pytest.approx(expected, abs=1e-9)


def test_a_triangle_in_the_plane_is_its_one_dimensional_integral():
    from scipy.integrate import quad
    from scipy.stats import norm

    # u1 + u2 < 3, u2 - u1 < 2, u2 > 1: for u2 in (1, 2.5), u1 from u2 - 2 to 3 - u2
    normals, limits = np.array([[1.0, 1.0], [-1.0, 1.0], [0.0, -1.0]]), np.array([3, 2, -1.0])
    expected = quad(lambda v: norm.pdf(v) * (norm.cdf(3 - v) - norm.cdf(v - 2)), 1, 2.5)[0]
    assert polyhedron_probability(normals, limits) == pytest.approx(expected, abs=1e-12)
