"""What the builders make of each dataset: splits, scaling, and the population evaluator."""

import sys

import numpy as np
import pytest
import torch

from logreg_exp.data.datasets import Gaussian2d
from logreg_exp.data.gaussian2d import population_accuracy
from logreg_exp.data.loaders import Standardizer, split_train_val
from logreg_exp.errors import ConfigError
from logreg_exp.training.build import build_pipeline
from tests.helpers import compose_config

CPU = torch.device("cpu")


def test_stratified_split_keeps_the_class_balance():
    y = np.array([0] * 30 + [1] * 70, dtype=float)
    x = np.arange(100, dtype=float)[:, None]
    (xt, yt), (xv, yv) = split_train_val(x, y, 0.2, np.random.default_rng(0), stratify=True)
    assert (len(yv), yv.sum()) == (20, 14) and (len(yt), yt.sum()) == (80, 56)
    assert sorted(np.concatenate([xt, xv])[:, 0]) == list(range(100))


def test_a_split_without_both_classes_is_an_error():
    y = np.array([0, 1, 1, 1, 1, 1], dtype=float)
    x = np.zeros((6, 1))
    with pytest.raises(
        ConfigError, match=r"^the data: too few samples to split; the .* split has only class 1"
    ):
        split_train_val(x, y, 0.5, np.random.default_rng(0), stratify=True)


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
    assert x_val.mean(0).abs().max() > 1e-3  # validation is scaled, not re-centred
    assert (len(x_train), len(x_val)) == (398, 171)


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
