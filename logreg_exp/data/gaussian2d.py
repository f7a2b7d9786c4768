"""The exercise's data: two rotated, shifted Gaussian classes with label noise.

Because both class-conditional distributions are known Gaussians, the population accuracy
of any linear rule sign(w.x + b) has a closed form (``population_accuracy``): it shows how
far a validation-set number is from the truth.
"""

from __future__ import annotations

import math

import numpy as np

CLASS0_ANGLE = 0.2 * math.pi
CLASS0_SHIFT = np.array([1.0, 3.0])
STRETCH = 3.0  # standard deviation of the first latent axis, before rotation


def rotation(angle: float) -> np.ndarray:
    """R(a) = [[cos a, sin a], [-sin a, cos a]], applied as x = z @ R(a)."""
    return np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])


NOISE_ROWS = 1 << 16  # noise features are drawn this many rows at a time


def make_gaussian2d(
    n_samples: int,
    n_features: int,
    label_flip: float,
    rng: np.random.Generator,
    dtype: np.dtype | type = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``x`` of shape (n_samples, n_features) and labels ``y`` in {0, 1}, unshuffled.

    The first ``n_samples // 2`` points are class 1: z ~ N(0, I), z[:, 0] *= 3, x = z @ R(0).
    The rest are class 0: z drawn alike, x = z @ R(0.2 pi) + (1, 3). Each label is flipped with
    probability ``label_flip``. Features past the second are N(0, 1) noise in both classes.

    The arrays are written in place in ``dtype``: the draws are float64 whatever ``dtype`` is
    (so the points are the same, only rounded), but no float64 copy of the whole array exists,
    and the noise is drawn in blocks of rows (the same stream as one draw), so building a
    float32 dataset takes little more memory than the dataset itself.
    """
    n1 = n_samples // 2
    x = np.empty((n_samples, n_features), dtype=dtype)
    y = np.zeros(n_samples, dtype=dtype)
    z1 = rng.standard_normal((n1, 2))
    z1[:, 0] *= STRETCH
    z0 = rng.standard_normal((n_samples - n1, 2))
    z0[:, 0] *= STRETCH
    x[:n1, :2] = z1 @ rotation(0.0)
    x[n1:, :2] = z0 @ rotation(CLASS0_ANGLE) + CLASS0_SHIFT
    y[:n1] = 1.0
    flipped = rng.random(n_samples) < label_flip
    y[flipped] = 1.0 - y[flipped]
    if n_features > 2:
        for start in range(0, n_samples, NOISE_ROWS):
            stop = min(start + NOISE_ROWS, n_samples)
            x[start:stop, 2:] = rng.standard_normal((stop - start, n_features - 2))
    return x, y


def class_moments() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Mean and covariance of the first two features given the true class, for class 1 and
    class 0. Every further feature is N(0, 1) in both classes, independent of the rest."""
    latent = np.diag([STRETCH**2, 1.0])
    return {
        label: (shift, rotation(angle).T @ latent @ rotation(angle))
        for label, angle, shift in ((1, 0.0, np.zeros(2)), (0, CLASS0_ANGLE, CLASS0_SHIFT))
    }


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def probability_positive(mean: float, std: float) -> float:
    """P(s > 0) for s ~ N(mean, std^2); a point mass at ``mean`` when std is 0."""
    if std == 0.0:
        return 1.0 if mean > 0 else 0.0
    return normal_cdf(mean / std)


def population_accuracy(w: np.ndarray, b: float, label_flip: float) -> float:
    """Exact accuracy of "predict 1 when w.x + b > 0" on the whole distribution.

    Given the true class c, the score s = w.x + b is N(w.mu_c + b, w' Sigma_c w); the classes
    are equally likely; a flipped label turns a right prediction wrong and back, so
    acc = f + (1 - 2 f) * clean_acc. Sigma_c is the identity but for its first 2 x 2 block,
    so w' Sigma_c w = u' C_c u + |v|^2 with u the first two weights and v the rest: O(d)
    time and no d x d matrix, whatever the number of features; (w, b) is scaled to at most 1
    first, which leaves the rule as it is. NaN if a weight is not finite (a diverged model).
    """
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if not (np.isfinite(w).all() and math.isfinite(b)):
        return math.nan
    scale = max(float(np.abs(w).max(initial=0.0)), abs(b))
    if scale > 0:  # the rule is the same for (w, b) / scale, whose squares cannot overflow
        w, b = w / scale, b / scale
    u, noise_var = w[:2], float(w[2:] @ w[2:])
    right = {}
    for label, (mean, cov) in class_moments().items():
        std = math.sqrt(float(u @ cov @ u) + noise_var)
        right[label] = probability_positive(float(u @ mean + b), std)
    clean = 0.5 * (right[1] + (1.0 - right[0]))
    return label_flip + (1.0 - 2.0 * label_flip) * clean
