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
import itertools
import math

import numpy as np

from logreg_exp.data.gaussian2d import NOISE_ROWS, probability_positive

# the normal mass beyond BOX standard deviations (< 1e-300) is below the smallest double
BOX = 40.0
SQUARE = BOX * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
NORMAL_DENSITY = 1 / math.sqrt(2 * math.pi)
RANK_TOLERANCE = 1e-12
QUADRATURE_TOLERANCE = 1e-11  # the absolute error bound of the rank-3 integral
HALF_WIDTH = 12.0  # its range of the third coordinate: the mass beyond is below 1e-32
# beyond, the rank-3 integral costs more than a second an evaluation: sampled instead
MAX_INTEGRATED_CLASSES = 10
# the quasi-Monte Carlo points a class where the differences span 4 dimensions or more
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
    predict the largest of x @ w + b): given the true class c, the rule is right where x lies
    in the polyhedron {(w_c - w_j).x + b_c - b_j > 0 for all j}, and the normal mass of that
    depends only on the span of the differences w_c - w_j, the same r-dimensional space for
    every c. r <= 2 (two features, any K; three classes, any number of features; the Bayes
    rule): an exact polygon mass (``plane_probability``). r = 3 (three features; four
    classes): a one-dimensional integral of that exact mass, within 1e-10, for K <= 10.
    r >= 4 (K >= 5 classes in >= 4 features), or r = 3 with K > 10: a seeded quasi-Monte
    Carlo mean, within about 1e-3 (``sampled_accuracy``). The same model
    always gives the same number. NaN for a non-finite weight (a diverged model).
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
    basis = difference_basis(w)
    if len(basis) > 3 or (len(basis) == 3 and n_classes > MAX_INTEGRATED_CLASSES):
        return sampled_accuracy(w, b, means)
    # z ~ N(0, I_d) matters only through u = basis @ z ~ N(0, I_r): the rule in u's space
    w_u, means_u = basis @ w, means @ basis.T
    right = 0.0
    for c in range(n_classes):
        others = np.arange(n_classes) != c
        normals = (w_u[:, others] - w_u[:, [c]]).T  # right where normals @ u < limits
        limits = (means_u[c] @ w_u + b)[c] - (means_u[c] @ w_u + b)[others]
        right += polyhedron_probability(normals, limits)
    return right / n_classes


def bayes_accuracy(n_classes: int, separation: float) -> float:
    """The best accuracy any rule reaches: the nearest class mean's (equal priors, the same
    covariance), a linear rule of rank 2, so exact for every K."""
    return population_accuracy(
        class_means(n_classes, separation).T, np.zeros(n_classes), n_classes, separation
    )


def difference_basis(w: np.ndarray) -> np.ndarray:
    """An orthonormal basis (r, d) of the span of the columns' differences w_j - w_0: r is
    their rank, directions below 1e-12 of the largest dropped (they move the mass by less)."""
    differences = w[:, 1:] - w[:, :1]
    if not differences.any():
        return np.zeros((0, w.shape[0]))
    left, singular, _ = np.linalg.svd(differences, full_matrices=False)
    return left[:, singular > RANK_TOLERANCE * singular[0]].T


def polyhedron_probability(normals: np.ndarray, limits: np.ndarray) -> float:
    """P(normals @ u < limits) for u ~ N(0, I_r), r = normals.shape[1] <= 3: the plane's
    polygon mass, exact; for r = 3 integrated over the third coordinate v, within 1e-10,
    split at the polyhedron's vertices (where the mass at v has a kink, or starts or ends:
    a region between two vertices that the integral's first points fall beside is not
    missed)."""
    if normals.shape[1] < 3:
        padded = np.zeros((len(normals), 2))
        padded[:, : normals.shape[1]] = normals
        return plane_probability(padded, limits)
    from scipy.integrate import quad

    def mass_at(v: float) -> float:
        return (
            NORMAL_DENSITY
            * math.exp(-v * v / 2)
            * plane_probability(normals[:, :2], limits - normals[:, 2] * v)
        )

    heights = vertex_heights(normals, limits)
    inside = [float(v) for v in heights if abs(v) < HALF_WIDTH]
    return float(
        quad(
            mass_at, -HALF_WIDTH, HALF_WIDTH, points=inside or None,
            epsabs=QUADRATURE_TOLERANCE, epsrel=0, limit=50 * (len(inside) + 10),
        )[0]
    )  # fmt: skip


def vertex_heights(normals: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """The third coordinates of the vertices of {u in R^3: normals @ u <= limits}: the
    points where three of its planes meet and no other plane cuts them off."""
    triples = np.array(list(itertools.combinations(range(len(normals)), 3))).reshape(-1, 3)
    planes, offsets = normals[triples], limits[triples]
    regular = np.abs(np.linalg.det(planes)) > RANK_TOLERANCE
    points = np.linalg.solve(planes[regular], offsets[regular][..., None])[..., 0]
    slack = 1e-9 * (1 + np.abs(limits))
    return np.unique(points[(points @ normals.T <= limits + slack).all(1), 2])


def plane_probability(normals: np.ndarray, limits: np.ndarray) -> float:
    """P(normals @ u < limits) for u ~ N(0, I_2), exactly: the convex polygon those
    half-planes cut from the square of half-width ``BOX`` (the normal mass outside it is
    below the smallest double), split into triangles with the origin (signed, as the
    shoelace formula splits an area); the mass of each is an angle minus a difference of
    Owen's T function."""
    from scipy.special import owens_t

    polygon = SQUARE
    for normal, limit in zip(normals, limits, strict=True):
        if not normal.any():  # a constraint that ignores u: all or nothing
            if limit > 0:
                continue
            return 0.0
        polygon = clip(polygon, normal, limit)
        if len(polygon) < 3:
            return 0.0
    p, q = polygon, np.roll(polygon, -1, axis=0)
    cross = p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]
    length = np.hypot(*(q - p).T)
    keep = (cross != 0) & (length > 0)  # an edge on a line through the origin adds nothing
    p, q, cross, length = p[keep], q[keep], cross[keep], length[keep]
    direction = (q - p) / length[:, None]
    height = np.abs(cross) / length  # the edge's line's distance from the origin
    start, stop = (p * direction).sum(1), (q * direction).sum(1)
    # the triangle's mass: 1/(2 pi) * integral over its angle of 1 - exp(-height^2 / (2 cos^2))
    angle = np.arctan2(stop, height) - np.arctan2(start, height)
    mass = angle / (2 * math.pi) - (
        owens_t(height, stop / height) - owens_t(height, start / height)
    )
    return float(np.sign(cross) @ mass)


def clip(polygon: np.ndarray, normal: np.ndarray, limit: float) -> np.ndarray:
    """The part of a convex polygon (vertices counter-clockwise) where normal @ u <= limit."""
    values = polygon @ normal - limit
    kept = []
    for i, value in enumerate(values):
        following = values[(i + 1) % len(values)]
        if value <= 0:
            kept.append(polygon[i])
        if value * following < 0:  # the edge crosses the line
            step = polygon[(i + 1) % len(values)] - polygon[i]
            kept.append(polygon[i] + step * (value / (value - following)))
    return np.array(kept).reshape(-1, 2)


def sampled_accuracy(w: np.ndarray, b: np.ndarray, means: np.ndarray) -> float:
    """Differences of rank 4 or more: the normal mass of a polyhedron in 4 dimensions or
    more costs seconds to minutes to integrate to 1e-6, so the accuracy is a quasi-Monte
    Carlo mean instead: the same ``SAMPLED_POINTS`` scrambled Sobol points (seeded) of
    N(0, I) around each class mean, the share the rule puts in that class."""
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
