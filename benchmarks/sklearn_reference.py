"""The framework's optimum held against scikit-learn's ``LogisticRegression`` on the same data:
the split, the standardization and the L2 strength (``C = 1 / (alpha * n_train)``) of a preset.

For each dataset preset (``experiment=breast_cancer|iris|wine|digits``): ``updater=lbfgs`` in
float64, run to convergence, against scikit-learn's lbfgs to a tight tolerance on the run's own
standardized training split, both measured by the same objective (mean log loss on the training
split plus ``alpha / 2 * |w|^2``); and the preset's own SGD run, as it ships, against that
optimum; with the test accuracy of each. Used by ``python -m benchmarks.bench --only sklearn``
and ``tests/test_sklearn_reference.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from logreg_exp.cli import compose
from logreg_exp.config import validated
from logreg_exp.results import Monitor
from logreg_exp.training.build import Pipeline, build_pipeline
from logreg_exp.training.penalties import strengths

PRESETS = ("breast_cancer", "iris", "wine", "digits")
# updater=lbfgs run to the optimum: one epoch of up to 5000 iterations, stopped by tolerances
# below what float64 resolves in the objective
CONVERGED = (
    "updater=lbfgs", "dtype=float64", "epochs=1", "updater.max_iter=5000",
    "updater.tolerance_grad=1e-12", "updater.tolerance_change=1e-15", "penalty=l2",
    "updater.momentum=0", "scheduler=none",
)  # fmt: skip
CPU = torch.device("cpu")


@dataclass
class Comparison:
    """One dataset: the objective and test accuracy of scikit-learn, lbfgs and the preset's
    SGD, and how far lbfgs's coefficients are from scikit-learn's."""

    dataset: str
    n_train: int
    classes: int
    alpha: float
    sklearn_objective: float
    lbfgs_objective: float
    sgd_objective: float
    coefficient_gap: float  # the largest absolute difference, weights and intercepts
    sklearn_test_acc: float
    lbfgs_test_acc: float
    sgd_test_acc: float

    @property
    def lbfgs_gap(self) -> float:
        """lbfgs's objective relative to scikit-learn's: (ours - theirs) / theirs."""
        return (self.lbfgs_objective - self.sklearn_objective) / self.sklearn_objective

    @property
    def sgd_gap(self) -> float:
        return (self.sgd_objective - self.sklearn_objective) / self.sklearn_objective


def available_presets() -> list[str]:
    """The dataset presets of ``PRESETS`` that this checkout has."""
    from importlib.resources import files

    experiments = files("logreg_exp.conf") / "experiment"
    return [name for name in PRESETS if (experiments / f"{name}.yaml").is_file()]


def trained(*overrides: str) -> tuple[Any, Pipeline]:
    """The run ``overrides`` make, trained in this process; the model is left at its last
    epoch's parameters."""
    cfg = compose(*overrides)
    settings = validated(cfg)
    torch.manual_seed(settings.seed)
    exp = build_pipeline(settings, CPU)
    exp.fit(settings.epochs, Monitor(settings.monitor))
    return settings, exp


def parameters(exp: Pipeline) -> tuple[np.ndarray, np.ndarray]:
    """The model's weights (features x logits) and biases, in float64."""
    state = exp.model.state_dict()
    return state["w"].double().numpy(), state["bias"].double().numpy()


def arrays(split: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = split.tensors
    return x.double().numpy(), y.numpy().astype(np.int64)


def objective(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, alpha: float) -> float:
    """Mean log loss plus ``alpha / 2 * |w|^2``, in float64: one logit a sample (w of one
    column, the binary model) or one a class (softmax)."""
    scores = x @ w + b
    if w.shape[1] == 1:
        s = scores[:, 0]
        loss = np.mean(np.logaddexp(0, s) - y * s)  # -log sigmoid of the true side
    else:
        top = scores.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(scores - top).sum(axis=1))
        loss = np.mean(log_norm - scores[np.arange(len(y)), y])
    return float(loss + alpha / 2 * np.sum(w * w))


def accuracy(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    scores = x @ w + b
    predicted = (scores[:, 0] > 0).astype(np.int64) if w.shape[1] == 1 else scores.argmax(1)
    return float(np.mean(predicted == y))


def sklearn_fit(
    x: np.ndarray, y: np.ndarray, alpha: float, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``LogisticRegression`` optimum at ``C = 1 / (alpha * n_train)``, as
    this model's parameters (binary: one column)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1 / (alpha * len(y)), solver="lbfgs", tol=1e-12, max_iter=100_000)
    model.fit(x, y)
    w, b = model.coef_.T, model.intercept_
    if classes > 2 and w.shape[1] == 1:  # not reached: sklearn gives K columns for K > 2
        raise AssertionError("a multiclass fit with one column")
    return w, b


def centred(b: np.ndarray) -> np.ndarray:
    """Softmax biases are defined up to a shift (unpenalized): compare them centred."""
    return b - b.mean() if len(b) > 1 else b


def compare(dataset: str) -> Comparison:
    """The comparison on ``experiment=<dataset>``: its split, standardization, penalty."""
    preset = f"experiment={dataset}"
    sgd_settings, sgd = trained(preset)
    alpha = strengths(sgd_settings)[0]
    if alpha == 0 or sgd_settings.penalty != "l2":
        raise ValueError(f"{preset} ships no L2 penalty (penalty={sgd_settings.penalty})")
    _, lbfgs = trained(preset, *CONVERGED, f"alpha={alpha!r}")
    x, y = arrays(lbfgs.train_set)
    x_test, y_test = arrays(lbfgs.test_set)
    classes = len(lbfgs.preprocessing.classes)
    w_sk, b_sk = sklearn_fit(x, y, alpha, classes)
    w, b = parameters(lbfgs)
    w_sgd, b_sgd = parameters(sgd)
    # the SGD run's data in float64: the same split (same seed), its dtype's rounding aside
    gap = max(np.max(np.abs(w - w_sk)), np.max(np.abs(centred(b) - centred(b_sk))))
    return Comparison(
        dataset=dataset,
        n_train=len(y),
        classes=classes,
        alpha=alpha,
        sklearn_objective=objective(w_sk, b_sk, x, y, alpha),
        lbfgs_objective=objective(w, b, x, y, alpha),
        sgd_objective=objective(w_sgd, b_sgd, x, y, alpha),
        coefficient_gap=float(gap),
        sklearn_test_acc=accuracy(w_sk, b_sk, x_test, y_test),
        lbfgs_test_acc=accuracy(w, b, x_test, y_test),
        sgd_test_acc=accuracy(w_sgd, b_sgd, x_test, y_test),
    )


def table(rows: list[Comparison]) -> str:
    """The comparison as a markdown table, a dataset a row."""
    lines = [
        "| dataset | n_train | classes | alpha | sklearn objective | lbfgs rel. gap "
        "| max coef. gap | SGD preset rel. gap | test acc sklearn / lbfgs / SGD |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        accs = f"{r.sklearn_test_acc:.4f} / {r.lbfgs_test_acc:.4f} / {r.sgd_test_acc:.4f}"
        lines.append(
            f"| {r.dataset} | {r.n_train} | {r.classes} | {r.alpha:.4g} | "
            f"{r.sklearn_objective:.6f} | {r.lbfgs_gap:.1e} | {r.coefficient_gap:.1e} | "
            f"{r.sgd_gap:+.2%} | {accs} |"
        )
    return "\n".join(lines)
