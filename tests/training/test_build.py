"""What the builders make of each dataset: splits, scaling, and the population evaluator."""

import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from logreg_exp.data.datasets import Gaussian2d
from logreg_exp.data.gaussian2d import population_accuracy
from logreg_exp.data.loaders import Standardizer, split_train_val_test
from logreg_exp.errors import ConfigError
from logreg_exp.training.build import build_pipeline
from tests.helpers import build, compose_config, fit_built

CPU = torch.device("cpu")


def test_stratified_split_keeps_the_class_balance():
    y = np.array([0] * 30 + [1] * 70, dtype=float)
    x = np.arange(100, dtype=float)[:, None]
    (xt, yt), (xv, yv), _ = split_train_val_test(x, y, 0.2, np.random.default_rng(0), stratify=True)
    assert (len(yv), yv.sum()) == (20, 14) and (len(yt), yt.sum()) == (80, 56)
    assert sorted(np.concatenate([xt, xv])[:, 0]) == list(range(100))


def test_stratified_test_split_keeps_the_class_balance_too():
    y = np.array([0] * 30 + [1] * 70, dtype=float)
    x = np.arange(100, dtype=float)[:, None]
    train, val, test = split_train_val_test(
        x, y, 0.2, np.random.default_rng(0), stratify=True, test_fraction=0.1
    )
    assert [(len(ys), ys.sum()) for _, ys in (train, val, test)] == [(70, 49), (20, 14), (10, 7)]
    assert sorted(np.concatenate([xs for xs, _ in (train, val, test)])[:, 0]) == list(range(100))


def test_a_test_split_without_both_classes_names_test_fraction():
    y = np.array([0] * 5 + [1] * 15, dtype=float)  # 10% of 5 rounds to none of class 0
    with pytest.raises(ConfigError) as info:
        split_train_val_test(
            np.zeros((20, 1)), y, 0.4, np.random.default_rng(0), stratify=True, test_fraction=0.1
        )
    assert str(info.value) == (
        "the data: too few samples to split; the test split has only class 1 (2 samples at "
        "dataset.test_fraction=0.1); use more samples or another test_fraction"
    )


def test_the_best_model_meets_the_test_split_once_with_the_dataset_evaluators():
    cfg, exp = build("dataset=breast_cancer", "epochs=1")
    result = fit_built(cfg, exp)
    test = exp.test(result.best_state)
    x, y = exp.test_set.tensors
    assert set(test) == {"loss", "acc"} and len(y) == 113
    assert test["acc"] == (exp.model.predict(x) == y).double().mean().item()  # the best model
    assert test["loss"] == pytest.approx(exp.loss_fn(exp.model(x), y).item(), rel=1e-5)
    cfg, exp = build("dataset.n_samples=200", "dataset.test_fraction=0.2", "epochs=1")
    assert len(exp.test_set) == 40 and set(exp.test(fit_built(cfg, exp).best_state)) == {
        "loss", "acc", "population_acc",
    }  # fmt: skip
    cfg, exp = build("dataset.n_samples=200", "epochs=1")
    assert exp.test_set is None and exp.test_loader is None
    test = exp.test(fit_built(cfg, exp).best_state)
    assert test["loss"] is None and test["acc"] is None and 0.5 < test["population_acc"] < 0.8


def test_a_split_without_both_classes_is_an_error():
    y = np.array([0, 1, 1, 1, 1, 1], dtype=float)
    x = np.zeros((6, 1))
    with pytest.raises(
        ConfigError, match=r"^the data: too few samples to split; the .* split has only class 1"
    ):
        split_train_val_test(x, y, 0.5, np.random.default_rng(0), stratify=True)


def test_standardizer_uses_training_statistics_only():
    cfg = compose_config("dataset=breast_cancer")
    exp = build_pipeline(cfg, CPU)
    x_train = exp.train_set.tensors[0].double()
    x_val = exp.val_set.tensors[0].double()
    torch.testing.assert_close(
        x_train.mean(0), torch.zeros(30, dtype=torch.float64), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        x_train.std(0, correction=0), torch.ones(30, dtype=torch.float64), atol=1e-5, rtol=0
    )
    x_test = exp.test_set.tensors[0].double()
    assert x_val.mean(0).abs().max() > 1e-3  # validation is scaled, not re-centred
    assert x_test.mean(0).abs().max() > 1e-3  # and so is the test split
    assert (len(x_train), len(x_val), len(x_test)) == (285, 171, 113)
    saved = exp.preprocessing.scaler
    raw = load_breast_cancer().data
    # the statistics are the training points': undo the scaling and measure them again
    x_raw_train = x_train.numpy() * saved.std + saved.mean
    np.testing.assert_allclose(x_raw_train.mean(0), saved.mean, rtol=1e-6)
    assert not np.allclose(raw.mean(0), saved.mean, rtol=1e-3)


def test_constant_feature_stays_finite():
    s = Standardizer.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_array_equal(s.transform_(np.array([[2.0, 5.0]])), [[0.0, 0.0]])


def test_breast_cancer_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ConfigError, match=r"pip install 'logreg-exp\[sklearn\]'"):
        build_pipeline(compose_config("dataset=breast_cancer"), CPU)


def test_population_evaluator_maps_standardized_weights_back():
    scaler = Standardizer(mean=np.array([1.0, -2.0]), std=np.array([2.0, 0.5]))
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.tensor([[0.8], [-0.3]], dtype=torch.float64))
    model.bias = torch.nn.Parameter(torch.tensor([0.2], dtype=torch.float64))
    raw_w = np.array([0.8 / 2.0, -0.3 / 0.5])
    raw_b = 0.2 - raw_w @ np.array([1.0, -2.0])
    expected = population_accuracy(raw_w, raw_b, 0.1)
    evaluate = Gaussian2d(compose_config().dataset).evaluators(scaler)["population_acc"]
    assert evaluate(model) == pytest.approx(expected, abs=1e-15)


def test_only_gaussian2d_has_a_population_evaluator():
    assert set(build_pipeline(compose_config(), CPU).evaluators) == {"population_acc"}
    assert build_pipeline(compose_config("dataset=breast_cancer"), CPU).evaluators == {}
