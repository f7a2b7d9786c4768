"""K >= 3 classes: the softmax model, its loss chosen from the data, the manual step equal to
torch.optim.SGD, K-class columns of a stacked model equal to models alone, the CUDA-graph
code path on the CPU, class weights and early stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from logreg_exp.config import validated
from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor
from logreg_exp.training.build import build_loss, class_weights_for
from logreg_exp.training.graphs import CapturedTraining
from logreg_exp.training.loop import EpochMetrics, epochs_without_improvement, train_one_epoch
from logreg_exp.training.model import (
    ClassWeightedLoss,
    LogisticRegression,
    SoftmaxCrossEntropyLoss,
)
from logreg_exp.training.stacked import ColumnLosses, StackedLogisticRegression, stacked_updater
from logreg_exp.training.updaters import ManualSGD
from tests.helpers import build, compose_config, fit_built

IRIS = ("dataset=iris", "dataset.max_samples=90", "epochs=2")


def three_classes(seed: int = 0, n: int = 48, d: int = 4):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=gen).double()
    x[:, 0] += 2 * y
    return x, y, LogisticRegression(d, generator=gen, dtype=torch.float64, n_classes=3)


def test_three_classes_are_a_softmax_over_a_weight_matrix():
    x, _, model = three_classes()
    assert model.w.shape == (4, 3) and model.bias.shape == (3,)
    scores = model(x)
    assert scores.shape == (48, 3) and model.score_shape == (3,)
    torch.testing.assert_close(scores, x @ model.w + model.bias)
    torch.testing.assert_close(model.predict_proba(x).sum(1), torch.ones(48, dtype=x.dtype))
    assert torch.equal(model.predict(x), scores.argmax(1).double())
    two = LogisticRegression(4, generator=torch.Generator().manual_seed(0))
    assert two.w.shape == (4, 1) and two.score_shape == ()  # two classes: the exercise's


def test_the_data_choose_the_loss():
    cfg = compose_config()
    assert isinstance(build_loss(cfg.loss, 3), SoftmaxCrossEntropyLoss)
    assert isinstance(build_loss(cfg.loss, 2), torch.nn.BCEWithLogitsLoss)
    with pytest.raises(ConfigError, match=r"^loss._target_=my.Loss is for two classes and the"):
        build_loss(type("L", (), {"_target_": "my.Loss"})(), 10)


def test_a_built_iris_pipeline_is_multinomial():
    _, exp = build(*IRIS)
    assert exp.model.n_classes == 3 and exp.model.w.shape == (4, 3)
    assert exp.preprocessing.classes == ["setosa", "versicolor", "virginica"]
    assert isinstance(exp.loss_fn, SoftmaxCrossEntropyLoss)


def test_the_manual_step_equals_torch_sgd_bit_for_bit_for_k_classes():
    knobs = ("updater.lr=0.1", "updater.momentum=0.9", "updater.weight_decay=0.01")
    states = []
    for updater in ("manual", "optim"):
        cfg, exp = build(*IRIS, f"updater={updater}", *knobs)
        assert isinstance(exp.updater, ManualSGD) == (updater == "manual")
        result = fit_built(cfg, exp)
        states.append((exp.model.state_dict(), [m.val_loss for m in result.history]))
    (manual, manual_losses), (optim, optim_losses) = states
    assert manual_losses == optim_losses
    for name, value in manual.items():
        assert torch.equal(value, optim[name]), name


def test_k_class_columns_of_a_stacked_model_step_as_models_alone():
    x, y, template = three_classes(1)
    columns = [{"lr": 0.05}, {"lr": 0.2, "momentum": 0.9, "weight_decay": 0.01}]
    stacked = StackedLogisticRegression(template, len(columns))
    assert stacked.w.shape == (4, 3, 2) and stacked(x).shape == (2, 48, 3)
    settings = [torch.optim.SGD([torch.zeros(1)], **c).defaults for c in columns]
    updater = stacked_updater(list(stacked.parameters()), torch.optim.SGD, settings)
    loss_fn = ColumnLosses(SoftmaxCrossEntropyLoss(reduction="none"))
    alone = []
    for c in columns:
        model = LogisticRegression(4, dtype=torch.float64, n_classes=3)
        model.load_state_dict(template.state_dict())
        alone.append((model, torch.optim.SGD(model.parameters(), **c)))
    for i in range(24):
        batch = slice(8 * (i % 6), 8 * (i % 6) + 8)
        updater.zero_grad()
        loss_fn(stacked(x[batch]), y[batch]).sum().backward()
        updater.step()
        for model, sgd in alone:
            sgd.zero_grad()
            SoftmaxCrossEntropyLoss()(model(x[batch]), y[batch]).backward()
            sgd.step()
    for k, (model, _) in enumerate(alone):
        for name, value in model.state_dict().items():
            torch.testing.assert_close(stacked.column_state(k)[name], value, rtol=1e-12, atol=1e-14)
        assert stacked.column(k).n_classes == 3


def test_the_graph_code_path_keeps_the_eager_numbers_for_k_classes():
    """``CapturedTraining`` with ``capture=False`` (the CPU) runs the chunked steps and
    their tally of (n, K) scores: the eager epoch's loss, accuracy and parameters."""
    found = []
    for captured in (False, True):
        _, exp = build(*IRIS, "dtype=float64")
        if captured:
            run = CapturedTraining(
                exp.model, exp.loss_fn, exp.updater, exp.train_loader, capture=False,
                steps_per_graph=3,
            )  # fmt: skip
            phase = run.train_one_epoch()
        else:
            phase = train_one_epoch(
                exp.model, exp.loss_fn, exp.updater, exp.train_loader, exp.device
            )
        found.append((phase.loss, phase.acc, exp.model.w.detach().clone()))
    (loss_a, acc_a, w_a), (loss_b, acc_b, w_b) = found
    assert math.isclose(loss_a, loss_b, rel_tol=1e-12) and acc_a == acc_b
    torch.testing.assert_close(w_a, w_b, rtol=0, atol=0)


def test_balanced_class_weights_are_n_over_k_n_k_of_the_training_split():
    _, exp = build(*IRIS, "class_weight=balanced")
    y = exp.train_set.tensors[1]
    counts = torch.bincount(y.long()).double()
    torch.testing.assert_close(exp.class_weights.double(), len(y) / (3 * counts), rtol=1e-6, atol=0)
    assert isinstance(exp.loss_fn, ClassWeightedLoss)
    x = exp.train_set.tensors[0]
    by_hand = torch.nn.functional.cross_entropy(exp.model(x), y.long(), reduction="none")
    expected = (by_hand * exp.class_weights[y.long()]).mean()
    torch.testing.assert_close(exp.loss_fn(exp.model(x), y), expected)


def test_a_class_weight_mapping_names_classes_by_their_labels():
    _, exp = build(*IRIS, "class_weight={virginica: 4.0}")
    assert exp.class_weights.tolist() == [1.0, 1.0, 4.0]
    with pytest.raises(ConfigError) as info:
        build(*IRIS, "class_weight={daisy: 2}")
    assert str(info.value) == (
        "class_weight: 'daisy' is not a class of the data; its classes: setosa, versicolor, "
        "virginica"
    )
    _, exp = build("dataset.n_samples=200", "epochs=1", "class_weight={1: 3}")
    assert exp.class_weights.tolist() == [1.0, 3.0]
    assert class_weights_for(compose_config(), ["0", "1"], exp.train_set) is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("class_weight=heavy", "class_weight must be null, balanced, or a mapping of class"),
        ("class_weight={a: -1}", "class_weight must be null, balanced, or a mapping of class"),
        ("patience=13", "patience must be an integer from 1 to epochs (12), or null"),
        ("patience=0", "patience must be an integer from 1 to epochs (12), or null"),
        ("min_delta=-0.1", "min_delta must be a number >= 0"),
    ],
)
def test_bad_class_weights_and_patience_are_one_line(override, message):
    with pytest.raises(ConfigError) as info:
        validated(compose_config(override))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def history(*values: float) -> list[EpochMetrics]:
    return [EpochMetrics(i + 1, 0.0, 0.0, v, 0.0, 0.0, 0.0) for i, v in enumerate(values)]


def test_patience_counts_epochs_since_an_improvement_by_more_than_min_delta():
    monitor = Monitor.val_loss
    assert epochs_without_improvement(history(1.0, 0.9, 0.95, 0.92), monitor, 0.0) == 2
    assert epochs_without_improvement(history(1.0, 0.9, 0.95, 0.89), monitor, 0.0) == 0
    # 0.89 is 0.01 better than 0.9: not more than min_delta 0.05
    assert epochs_without_improvement(history(1.0, 0.9, 0.95, 0.89), monitor, 0.05) == 2
    assert epochs_without_improvement(history(), monitor, 0.0) == 0


def test_early_stopping_ends_training_completed_and_resumes_alike():
    cfg, exp = build("dataset.n_samples=400", "epochs=12", "patience=1", "min_delta=0.5")
    result = fit_built(cfg, exp)
    # the first epoch sets the best; the second cannot beat it by 0.5
    assert result.status.value == "completed" and len(result.history) == 2
    assert result.stopped_early == 2 and result.best_epoch in (1, 2)
    _, again = build("dataset.n_samples=400", "epochs=12", "patience=1", "min_delta=0.5")
    resumed = again.fit(12, Monitor.val_loss, start=result)
    assert len(resumed.history) == 2 and resumed.stopped_early == 2


def test_k_class_labels_keep_their_names_in_sorted_order(tmp_path):
    from logreg_exp.data.csv_file import read_csv_dataset

    path = tmp_path / "data.csv"
    path.write_text("a,label\n1,10\n2,2\n3,1\n4,2.0\n")  # numbers sort as numbers
    data = read_csv_dataset(path, "label")
    assert data.class_names == ["1", "2", "10"] and data.y.tolist() == [2, 1, 0, 1]
    path.write_text("a,label\n1,cat\n2,dog\n3,ant\n")
    data = read_csv_dataset(path, "label")
    assert data.class_names == ["ant", "cat", "dog"] and data.y.tolist() == [1, 2, 0]


def test_a_class_missing_from_a_split_after_stratification_is_named():
    from logreg_exp.data.loaders import split_train_val_test

    y = np.array([0] * 10 + [1] * 10 + [2], dtype=float)  # one sample of class 2
    with pytest.raises(ConfigError) as info:
        split_train_val_test(
            np.zeros((21, 1)), y, 0.3, np.random.default_rng(0), stratify=True,
            classes=["a", "b", "c"], source="data.csv",
        )  # fmt: skip
    assert str(info.value) == (
        "data.csv: the validation split has no sample of class 'c' after stratification (1 in "
        "all, at dataset.val_fraction=0.3); every class needs a sample in each split: use "
        "more samples or another val_fraction"
    )


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("updater", ["optim", "manual"])
def test_k_class_graphs_replay_the_eager_steps_on_the_gpu(updater):
    from logreg_exp.training.build import build_pipeline

    found = []
    for graphs in ("false", "true"):
        overrides = (*IRIS, "epochs=3", "dtype=float64", f"updater={updater}")
        cfg = compose_config(*overrides, f"device.cuda_graphs={graphs}")
        exp = build_pipeline(cfg, torch.device("cuda"))
        found.append(exp.fit(cfg.epochs, Monitor(cfg.monitor)))
    eager, replayed = found
    for got, want in zip(replayed.history, eager.history, strict=True):
        assert got.train_loss == pytest.approx(want.train_loss, rel=1e-12)
        assert got.val_acc == want.val_acc
    for key, value in eager.best_state.items():
        torch.testing.assert_close(replayed.best_state[key], value, rtol=1e-12, atol=0)
