"""The datasets ``dataset=`` chooses: each one class, with its schema, registered in DATASETS.

A dataset knows its config keys (its schema, beside it here), what loading it imports, how
many features it has before it is loaded, how an error about it names it, how to load it as
numpy features and class labels 0 .. K-1, and what it can evaluate beyond the validation
set. Adding a dataset is one class and its schema here, and one YAML file in
``conf/dataset/``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

from logreg_exp.config import (
    FRACTION,
    TEST_FRACTION,
    Allowed,
    DatasetConfig,
    allowed,
    between,
    required,
)
from logreg_exp.data.csv_file import LabeledArrays, count_lines, read_csv_dataset, read_header
from logreg_exp.data.gaussian2d import make_gaussian2d, population_accuracy
from logreg_exp.data.gaussian_classes import make_gaussian_classes
from logreg_exp.data.gaussian_classes import population_accuracy as gaussian_classes_accuracy
from logreg_exp.errors import ConfigError

log = logging.getLogger(__name__)

# model -> a number, evaluated after each validation phase (e.g. population_acc)
Evaluator = Callable[[Any], float]


def enough_to_split(n_samples: int, val_fraction: float, test_fraction: float = 0.0) -> bool:
    """Each split needs a point of each class; fewer than 2 points cannot hold both."""
    n_val = round(val_fraction * n_samples)
    n_test = round(test_fraction * n_samples)
    return (
        n_samples >= 4
        and n_val >= 2
        and (test_fraction == 0 or n_test >= 2)
        and n_samples - n_val - n_test >= 2
    )


def fractions(dataset: Any) -> str:
    """The held-out shares of ``dataset`` (its config), as a message names them."""
    text = f"val_fraction={dataset.val_fraction}"
    if dataset.test_fraction:
        text += f", test_fraction={dataset.test_fraction}"
    return text


@dataclass
class Gaussian2dConfig(DatasetConfig):
    name: str = "gaussian2d"
    n_samples: int = allowed(
        5000,
        Allowed(
            lambda v, root: enough_to_split(
                v, root.dataset.val_fraction, root.dataset.test_fraction
            ),
            lambda root: f"large enough for 2 points in each split at {fractions(root.dataset)}",
            doc="large enough for 2 points in each split",
        ),
    )
    n_features: int = allowed(2, Allowed(lambda v, _: v >= 2, "an integer >= 2"))
    label_flip: float = allowed(0.1, between(0.0, 0.5, "in [0, 0.5)"))
    # none held out: the exact population accuracy is the honest number here
    test_fraction: float = allowed(0.0, TEST_FRACTION)
    stratify: bool = False
    standardize: bool = False


@dataclass
class GaussianClassesConfig(DatasetConfig):
    name: str = "gaussian_classes"
    n_samples: int = allowed(
        3000,
        Allowed(
            lambda v, root: (
                v >= 2 * root.dataset.n_classes
                and enough_to_split(v, root.dataset.val_fraction, root.dataset.test_fraction)
            ),
            lambda root: (
                f"at least 2 points a class ({2 * root.dataset.n_classes}) and enough "
                f"for 2 points in each split at {fractions(root.dataset)}"
            ),
            doc="at least 2 points a class, and enough for 2 points in each split",
        ),
    )
    n_classes: int = allowed(3, Allowed(lambda v, _: 2 <= v <= 1000, "an integer from 2 to 1000"))
    n_features: int = allowed(2, Allowed(lambda v, _: v >= 2, "an integer >= 2"))
    # the class means' distance from the origin, in standard deviations
    separation: float = allowed(2.0, Allowed(lambda v, _: 0 < v <= 1e6, "a number > 0 and <= 1e6"))
    val_fraction: float = allowed(0.5, FRACTION)
    test_fraction: float = allowed(0.0, TEST_FRACTION)
    stratify: bool = True
    standardize: bool = False


@dataclass
class BreastCancerConfig(DatasetConfig):
    name: str = "breast_cancer"
    val_fraction: float = allowed(0.3, FRACTION)


@dataclass
class IrisConfig(DatasetConfig):
    name: str = "iris"
    val_fraction: float = allowed(0.3, FRACTION)


@dataclass
class WineConfig(DatasetConfig):
    name: str = "wine"
    val_fraction: float = allowed(0.3, FRACTION)


@dataclass
class DigitsConfig(DatasetConfig):
    name: str = "digits"
    val_fraction: float = allowed(0.3, FRACTION)


@dataclass
class CsvConfig(DatasetConfig):
    name: str = "csv"
    path: str = required("dataset.path=data.csv")
    target: str = required("dataset.target=label")
    features: Optional[list[str]] = None  # noqa: UP045 (OmegaConf needs Optional here)
    delimiter: str = allowed(
        ",",
        Allowed(
            lambda v, _: len(v) == 1 and v not in '"\r\n',
            "one character other than a quote or a line break, such as a comma, a semicolon or "
            "a tab",
        ),
    )
    val_fraction: float = allowed(0.3, FRACTION)


class Dataset:
    """One dataset, as its config ``cfg`` (an instance of ``schema``) describes it."""

    name: ClassVar[str]
    schema: ClassVar[type[DatasetConfig]]
    imports: ClassVar[tuple[str, ...]] = ()  # what loading imports (startup imports it early)
    generated: ClassVar[bool] = False  # made from the config alone, which says all about it

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def n_features(self) -> int | None:
        """How many features the data will have, as far as the config tells before they are
        loaded; None where only the data can tell."""
        return None

    def shape(self) -> tuple[int, int]:
        """(samples, features) before the data are loaded, or an upper bound of each: what
        the memory check before loading counts."""
        raise NotImplementedError

    def load_dtype(self, dtype: np.dtype) -> np.dtype:
        """The dtype ``load`` gives its features in, for a run of ``dtype``."""
        return np.dtype(np.float64)

    def load_overhead(self, n_features: int) -> int:
        """Bytes a sample needs while loading, beyond its features and label."""
        return 0

    def describe(self) -> str:
        """What an error about the data names."""
        return f"dataset={self.name}"

    def load(self, rng: np.random.Generator, dtype: np.dtype | type) -> LabeledArrays:
        """Features and labels, before the split."""
        raise NotImplementedError

    def evaluators(self, scaler: Any) -> dict[str, Evaluator]:
        """Numbers to compute from the model after each validation phase, beside the
        validation metrics, and once for the best model at the end (``test_<name>`` in
        metrics.json); ``scaler`` is the Standardizer the features went through, or None."""
        return {}


class Gaussian2d(Dataset):
    """The exercise's two Gaussian classes, generated directly in ``dtype`` (it can be large)."""

    name = "gaussian2d"
    schema = Gaussian2dConfig
    generated = True

    def n_features(self) -> int:
        return int(self.cfg.n_features)

    def shape(self) -> tuple[int, int]:
        return int(self.cfg.n_samples), int(self.cfg.n_features)

    def load_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype

    def load_overhead(self, n_features: int) -> int:
        return 32  # float64 draws of the first two coordinates and their rotated copies

    def describe(self) -> str:
        return f"dataset.n_samples={self.cfg.n_samples}"

    def load(self, rng: np.random.Generator, dtype: np.dtype | type) -> LabeledArrays:
        cfg = self.cfg
        x, y = make_gaussian2d(cfg.n_samples, cfg.n_features, cfg.label_flip, rng, dtype)
        return LabeledArrays(x, y, [f"x{i}" for i in range(x.shape[1])], ["0", "1"])

    def evaluators(self, scaler: Any) -> dict[str, Evaluator]:
        """The exact population accuracy of the model's current linear rule. A model trained
        on standardized features is mapped back to raw coordinates first:
        w.((x - m) / s) + b = (w / s).x + (b - (w / s).m)."""
        label_flip = self.cfg.label_flip

        def population_acc(model: Any) -> float:
            w = model.w.detach().double().cpu().numpy().reshape(-1)
            b = float(model.bias.detach().double().cpu())
            if scaler is not None:
                w = w / scaler.std
                b = b - float(w @ scaler.mean)
            return population_accuracy(w, b, label_flip)

        return {"population_acc": population_acc}


class GaussianClasses(Dataset):
    """K Gaussian classes with means on a circle (``gaussian_classes``), generated in
    ``dtype``; its evaluator is the model's population accuracy."""

    name = "gaussian_classes"
    schema = GaussianClassesConfig
    generated = True
    imports = ("scipy.special",)  # its population accuracy, for K >= 3

    def n_features(self) -> int:
        return int(self.cfg.n_features)

    def shape(self) -> tuple[int, int]:
        return int(self.cfg.n_samples), int(self.cfg.n_features)

    def load_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype

    def load_overhead(self, n_features: int) -> int:
        return 48  # float64 draws of the first two features, their means and the labels

    def describe(self) -> str:
        return f"dataset.n_samples={self.cfg.n_samples}"

    def load(self, rng: np.random.Generator, dtype: np.dtype | type) -> LabeledArrays:
        cfg = self.cfg
        if cfg.n_classes > 2 and importlib.util.find_spec("scipy") is None:
            raise ConfigError(
                f"dataset=gaussian_classes with dataset.n_classes={cfg.n_classes} needs scipy "
                "for its population accuracy: pip install 'logreg-exp[sklearn]'"
            )
        x, y = make_gaussian_classes(
            cfg.n_samples, cfg.n_classes, cfg.n_features, cfg.separation, rng, dtype
        )
        names = [str(k) for k in range(cfg.n_classes)]
        return LabeledArrays(x, y, [f"x{i}" for i in range(x.shape[1])], names)

    def evaluators(self, scaler: Any) -> dict[str, Evaluator]:
        """The population accuracy of the model's current rule, mapped back to raw
        coordinates where the features were standardized (see ``Gaussian2d.evaluators``)."""
        n_classes, separation = int(self.cfg.n_classes), float(self.cfg.separation)

        def population_acc(model: Any) -> float:
            w = model.w.detach().double().cpu().numpy()
            b = model.bias.detach().double().cpu().numpy()
            if scaler is not None:
                w = w / scaler.std[:, None]
                b = b - scaler.mean @ w
            return gaussian_classes_accuracy(w, b, n_classes, separation)

        return {"population_acc": population_acc}


class BundledWithSklearn(Dataset):
    """A table that scikit-learn ships (``sklearn.datasets.load_<name>``): no download.
    Small, so it comes as float64, for exact standardization statistics; the class names
    are scikit-learn's ``target_names``."""

    imports = ("sklearn.datasets",)
    samples: ClassVar[int]
    features: ClassVar[int]

    def n_features(self) -> int:
        return self.features

    def shape(self) -> tuple[int, int]:
        return self.samples, self.features

    def load(self, rng: np.random.Generator, dtype: np.dtype | type) -> LabeledArrays:
        try:
            import sklearn.datasets
        except ImportError:
            raise ConfigError(
                f"dataset={self.name} needs scikit-learn: pip install 'logreg-exp[sklearn]'"
            ) from None
        bunch = getattr(sklearn.datasets, f"load_{self.name}")()
        x = np.asarray(bunch.data, dtype=np.float64)
        names = bunch.get("feature_names")
        return LabeledArrays(
            x,
            np.asarray(bunch.target, dtype=np.float64),
            [str(n) for n in names] if names is not None else [f"x{i}" for i in range(x.shape[1])],
            [str(name) for name in bunch.target_names],
        )


class BreastCancer(BundledWithSklearn):
    """Wisconsin diagnostic breast cancer (569 x 30, 2 classes)."""

    name = "breast_cancer"
    schema = BreastCancerConfig
    samples, features = 569, 30


class Iris(BundledWithSklearn):
    """Fisher's iris (150 x 4, 3 classes of 50)."""

    name = "iris"
    schema = IrisConfig
    samples, features = 150, 4


class Wine(BundledWithSklearn):
    """Wine recognition (178 x 13, 3 cultivars of 59, 71 and 48)."""

    name = "wine"
    schema = WineConfig
    samples, features = 178, 13


class Digits(BundledWithSklearn):
    """Handwritten digits (1797 x 64: 8 x 8 pixels of 0-16, 10 classes of about 180)."""

    name = "digits"
    schema = DigitsConfig
    samples, features = 1797, 64


class CsvFile(Dataset):
    """A user's own CSV file (see ``csv_data``), read as float64."""

    name = "csv"
    schema = CsvConfig

    def n_features(self) -> int | None:
        return None if self.cfg.features is None else len(self.cfg.features)

    def shape(self) -> tuple[int, int]:
        """Its lines but the header, and its columns but the target (a look at the file)."""
        path = Path(self.cfg.path)
        columns = self.n_features() or len(read_header(path, self.cfg.delimiter)) - 1
        return max(count_lines(path) - 1, 0), columns

    def load_overhead(self, n_features: int) -> int:
        return 8 * n_features + 64  # the parsed blocks, joined; each label as a str

    def describe(self) -> str:
        return str(self.cfg.path)

    def load(self, rng: np.random.Generator, dtype: np.dtype | type) -> LabeledArrays:
        """Read as float64 (exact standardization statistics), each value checked to fit
        ``dtype``, the run's."""
        cfg = self.cfg
        features = None if cfg.features is None else list(cfg.features)
        return read_csv_dataset(cfg.path, cfg.target, features, cfg.delimiter, dtype)


DATASETS: dict[str, type[Dataset]] = {
    cls.name: cls
    for cls in (Gaussian2d, GaussianClasses, BreastCancer, Iris, Wine, Digits, CsvFile)
}


def dataset_for(cfg: Any) -> Dataset:
    """The dataset that ``cfg`` (the ``dataset`` node) describes."""
    try:
        return DATASETS[cfg.name](cfg)
    except KeyError:
        allowed_names = ", ".join(DATASETS)
        raise ConfigError(
            f"dataset.name={cfg.name!r} is not known; allowed: {allowed_names}"
        ) from None


def load_dataset(
    dataset: Dataset, rng: np.random.Generator, dtype: np.dtype | type = np.float64
) -> LabeledArrays:
    """The dataset's features and labels; what a dataset that was read holds is logged."""
    data = dataset.load(rng, dtype)
    if not dataset.generated:
        log.info(
            "%s: %d samples, %d features; labels %s",
            dataset.name,
            len(data.y),
            data.x.shape[1],
            ", ".join(f"{label!r} -> {k}" for k, label in enumerate(data.class_names)),
        )
    for spelling, name in data.label_spellings.items():
        log.info("%s: label %r read as %r, the same number", dataset.name, spelling, name)
    return data


def limit_samples(
    data: LabeledArrays, max_samples: int | None, rng: np.random.Generator
) -> LabeledArrays:
    """A random subset of at most ``max_samples`` samples, in their original order (for trying
    things fast: ``debug=fast``); all of them when ``max_samples`` is null or not smaller."""
    if max_samples is None or len(data.y) <= max_samples:
        return data
    keep = np.sort(rng.choice(len(data.y), size=max_samples, replace=False))
    log.info(
        "dataset.max_samples=%d: using %d of %d samples", max_samples, max_samples, len(data.y)
    )
    return dataclasses.replace(data, x=data.x[keep], y=data.y[keep])
