"""K Gaussian classes, beside the exercise's two: the data of a K-class problem whose
population is known, so that the accuracy of any linear rule on the whole distribution can
be computed (``population_accuracy``) and a validation number held against it.

Class k is N(mu_k, I) with mu_k = separation * (cos(2 pi k / K), sin(2 pi k / K), 0, ...):
the means on a circle in the first two features, every further feature N(0, 1) noise in
every class, the classes equally likely (the first ``n_samples % K`` classes one point
more), no label noise.
"""

from __future__ import annotations

import functools
import inspect
import math

import numpy as np

from logreg_exp.data.gaussian2d import NOISE_ROWS, probability_positive

# the integration's absolute error bound for K = 3 (see ``population_accuracy``)
INTEGRATION_TOLERANCE = 1e-8
# the quasi-Monte Carlo points a class for K >= 4
SAMPLED_POINTS = 1 << 16


def class_means(n_classes: int, separation: float) -> np.ndarray:
    """The K class means in the first two features, (K, 2)."""
    angles = 2 * math.pi * np.arange(n_classes) / n_classes
    return separation * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def make_gaussian_classes(
    n_samples: int,
    n_classes: int,
    n_features: int,
    separation: float,
    rng: np.random.Generator,
    dtype: np.dtype | type = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``x`` (n_samples, n_features) and labels ``y`` in 0 .. K-1, unshuffled (class
    0's points first), written in ``dtype`` in place, the noise drawn in blocks of rows, as
    ``gaussian2d.make_gaussian2d`` does."""
    counts = [n_samples // n_classes + (k < n_samples % n_classes) for k in range(n_classes)]
    labels = np.repeat(np.arange(n_classes), counts)
    x = np.empty((n_samples, n_features), dtype=dtype)
    x[:, :2] = rng.standard_normal((n_samples, 2)) + class_means(n_classes, separation)[labels]
    for start in range(0, n_samples, NOISE_ROWS):
        stop = min(start + NOISE_ROWS, n_samples)
        x[start:stop, 2:] = rng.standard_normal((stop - start, n_features - 2))
    return x, labels.astype(dtype)


def population_accuracy(w: np.ndarray, b: np.ndarray, n_classes: int, separation: float) -> float:
    """The accuracy on the whole distribution of the rule a model's ``w``, ``b`` make.

    Two classes (``w`` (d,) or (d, 1), one logit: predict 1 when w.x + b > 0): exact, as
    gaussian2d's, from the normal CDF of the score given each class. K >= 3 (``w`` (d, K),
    predict the largest of x @ w + b): P(right | c) is the probability that a
    (K-1)-variate normal is positive, which has no closed form; for K = 3 scipy's bivariate
    normal CDF gives it to within 1e-8 (``three_class_accuracy``), beyond that it is a
    seeded quasi-Monte Carlo mean, within about 1e-3 (``sampled_accuracy``). The same
    model always gives the same number. NaN for a non-finite weight (a diverged model).
    """
    w = np.asarray(w, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if not (np.isfinite(w).all() and np.isfinite(b).all()):
        return math.nan
    scale = max(float(np.abs(w).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    if scale > 0:  # the same rule, with squares that cannot overflow
        w, b = w / scale, b / scale
    means = np.zeros((n_classes, w.shape[0]))
    means[:, :2] = class_means(n_classes, separation)
    if n_classes == 2:
        v = w.reshape(-1)
        std = math.sqrt(float(v @ v))
        right_1 = probability_positive(float(v @ means[1] + b[0]), std)
        right_0 = 1.0 - probability_positive(float(v @ means[0] + b[0]), std)
        return 0.5 * (right_0 + right_1)
    if n_classes == 3:
        return three_class_accuracy(w, b, means)
    return sampled_accuracy(w, b, means)


def three_class_accuracy(w: np.ndarray, b: np.ndarray, means: np.ndarray) -> float:
    """K = 3: given the true class c the two differences s_c - s_j are jointly normal,
    N(A mu_c + a, A A') with A's rows w_c - w_j, and P(right | c) is the probability that
    that bivariate normal is positive: scipy's bivariate normal CDF, to within 1e-8."""
    from scipy.stats import multivariate_normal

    right = 0.0
    for c in range(3):
        others = [j for j in range(3) if j != c]
        a = (w[:, [c]] - w[:, others]).T  # (2, d)
        mean = a @ means[c] + (b[c] - b[others])
        cov = a @ a.T
        if not cov.any():  # the scores differ by constants: the rule ignores x
            right += float((mean > 0).all())
            continue
        # P(D > 0) = P(-D < 0): the CDF at 0 of -D ~ N(-mean, A A')
        right += multivariate_normal.cdf(
            np.zeros(2), mean=-mean, cov=cov, allow_singular=True,
            abseps=INTEGRATION_TOLERANCE, releps=0, **seeded(multivariate_normal.cdf),
        )  # fmt: skip
    return float(right / 3)


def sampled_accuracy(w: np.ndarray, b: np.ndarray, means: np.ndarray) -> float:
    """K >= 4: the (K-1)-variate normal orthant probabilities cost seconds to minutes each
    to integrate to 1e-6, so the accuracy is a quasi-Monte Carlo mean instead: the same
    ``SAMPLED_POINTS`` scrambled Sobol points (seeded) of N(0, I) around each class mean,
    the share the rule puts in that class."""
    n_classes, z = len(means), normal_points(means.shape[1])
    right = 0
    for c in range(n_classes):
        right += int(((z + means[c]) @ w + b).argmax(1).__eq__(c).sum())
    return right / (n_classes * SAMPLED_POINTS)


@functools.cache
def normal_points(d: int) -> np.ndarray:
    """``SAMPLED_POINTS`` scrambled Sobol points of N(0, I_d), seeded: made once a run."""
    from scipy.stats import norm, qmc

    sobol = qmc.Sobol(d, scramble=True, seed=0).random(SAMPLED_POINTS)
    points = norm.ppf(np.clip(sobol, 1e-12, 1 - 1e-12))
    points.flags.writeable = False
    return points


def seeded(cdf: object) -> dict[str, np.random.Generator]:
    """The seed argument of scipy's ``multivariate_normal.cdf``: ``rng`` since scipy 1.15,
    ``random_state`` before, so that the integration's points are the same every time."""
    name = "rng" if "rng" in inspect.signature(cdf).parameters else "random_state"  # type: ignore[arg-type]
    return {name: np.random.default_rng(0)}
