"""Every out-of-range value is rejected before anything is built, with key, value and range."""

import pytest

from logreg_exp.config import validated as validate_config
from logreg_exp.errors import ConfigError

from .conftest import compose_config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=0", "batch_size must be a positive integer, got 0"),
        ("val_batch_size=-3", "val_batch_size must be a positive integer, got -3"),
        ("epochs=0", "epochs must be an integer >= 1, got 0"),
        ("updater.lr=0", "updater.lr must be a number > 0 and <= 3.4e+38 (float32), got 0.0"),
        ("updater.lr=-0.1", "updater.lr must be a number > 0"),
        ("updater.lr=nan", "updater.lr must be a number > 0"),
        ("updater.lr=inf", "updater.lr must be a number > 0"),
        ("updater.lr=1e300", "updater.lr must be a number > 0 and <= 3.4e+38 (float32)"),
        ("updater.momentum=-0.5", "updater.momentum must be a number >= 0"),
        ("updater.weight_decay=-1", "updater.weight_decay must be a number >= 0"),
        ("dataset.label_flip=0.5", "dataset.label_flip must be in [0, 0.5), got 0.5"),
        ("dataset.label_flip=-0.1", "dataset.label_flip must be in [0, 0.5), got -0.1"),
        ("dataset.val_fraction=0", "dataset.val_fraction must be in the open interval (0, 1)"),
        ("dataset.val_fraction=1", "dataset.val_fraction must be in the open interval (0, 1)"),
        ("dataset.n_samples=3", "dataset.n_samples must be large enough for 2 points in each"),
        ("dataset.n_features=1", "dataset.n_features must be an integer >= 2, got 1"),
        ("threads=0", "threads must be a positive integer or null, got 0"),
        ("dataset.max_samples=3", "dataset.max_samples must be an integer >= 4 or null, got 3"),
    ],
)
def test_out_of_range_values_are_named(override, message):
    with pytest.raises(ConfigError) as info:
        validate_config(compose_config(override))
    assert str(info.value).startswith(message)


def test_float64_allows_a_larger_lr():
    validate_config(compose_config("dtype=float64", "updater.lr=1e300"))


@pytest.mark.parametrize("missing", ["dataset.path", "dataset.target"])
def test_csv_needs_path_and_target(missing):
    other = {"dataset.path": "dataset.target=y", "dataset.target": "dataset.path=a.csv"}[missing]
    with pytest.raises(ConfigError, match=f"{missing} is required for dataset=csv"):
        validate_config(compose_config("dataset=csv", other))


def test_defaults_are_valid():
    for dataset in ("gaussian2d", "breast_cancer"):
        validate_config(compose_config(f"dataset={dataset}"))
