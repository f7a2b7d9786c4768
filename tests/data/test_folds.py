"""k-fold cross-validation's splits: the test split held out first, the same in every fold,
and the folds a stratified partition of the rest."""

from __future__ import annotations

import numpy as np
import pytest

from logreg_exp.config import validated
from logreg_exp.data.loaders import split_test_and_folds, split_train_val_test
from logreg_exp.errors import ConfigError
from tests.helpers import compose_config


def data(n: int = 103, positives: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Points numbered 0..n-1 in their only feature, a share ``positives`` of them class 1."""
    x = np.arange(n, dtype=np.float64)[:, None]
    y = (np.random.default_rng(7).random(n) < positives).astype(np.float64)
    return x, y


@pytest.mark.parametrize("stratify", [False, True])
def test_the_folds_partition_what_the_test_split_leaves(stratify):
    x, y = data()
    splits = [
        split_test_and_folds(
            x, y, 4, k, np.random.default_rng(3), stratify=stratify, test_fraction=0.2
        )
        for k in range(4)
    ]
    tests = [set(test[0][:, 0]) for _, _, test in splits]
    assert all(t == tests[0] for t in tests) and len(tests[0]) in (20, 21)
    vals = [set(val[0][:, 0]) for _, val, _ in splits]
    assert set().union(*vals) == set(range(103)) - tests[0]
    assert sum(map(len, vals)) == 103 - len(tests[0])  # disjoint
    for (train, _, _), val_set in zip(splits, vals, strict=True):
        assert set(train[0][:, 0]) == set(range(103)) - tests[0] - val_set


def test_the_test_split_is_the_one_a_run_without_folds_holds_out():
    x, y = data()
    for stratify in (False, True):
        *_, (plain, _) = split_train_val_test(
            x, y, 0.3, np.random.default_rng(5), stratify=stratify, test_fraction=0.2
        )
        *_, (folded, _) = split_test_and_folds(
            x, y, 5, 2, np.random.default_rng(5), stratify=stratify, test_fraction=0.2
        )
        assert np.array_equal(plain, folded)


def test_stratified_folds_keep_the_class_balance():
    x, y = data(1000)
    share = y.mean()
    for k in range(5):
        train, val, _ = split_test_and_folds(x, y, 5, k, np.random.default_rng(0), stratify=True)
        assert abs(val[1].mean() - share) < 0.005 and abs(train[1].mean() - share) < 0.005


def test_a_fold_with_one_class_names_the_folds_key():
    x = np.arange(12, dtype=np.float64)[:, None]
    y = np.array([0.0] * 10 + [1.0] * 2)
    with pytest.raises(ConfigError, match=r"validation \(fold 2\) split has only class 0.*"
                       r"dataset.folds=3"):  # fmt: skip
        split_test_and_folds(x, y, 3, 2, np.random.default_rng(0), stratify=True, source="f.csv")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dataset.folds=1"], "dataset.folds must be an integer >= 2 or null, got 1"),
        (["dataset.fold=1"], r"dataset.fold must be 0 \(dataset.folds is null: no cross-valid"),
        (["dataset.folds=3", "dataset.fold=3"], r"dataset.fold must be in \[0, 3\) \(at data"),
        (["dataset.folds=3", "dataset.fold=-1"], r"dataset.fold must be in \[0, 3\)"),
    ],
)
def test_folds_and_fold_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validated(compose_config(*overrides))
