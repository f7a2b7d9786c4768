"""The stacked model: K columns trained as one give what K models trained alone give."""

from __future__ import annotations

import math

import pytest
import torch

from logreg_exp.data.loaders import rebatched
from logreg_exp.results import Monitor, Status
from logreg_exp.training.devices import one_thread_is_enough
from logreg_exp.training.loop import fit
from logreg_exp.training.model import LogisticRegression, SigmoidBCELoss
from logreg_exp.training.stacked import (
    BatchSizes,
    ColumnLosses,
    StackedLogisticRegression,
    fit_stacked,
    losses_and_gradients,
    stacked_updater,
)
from logreg_exp.training.updaters import ManualSGD
from tests.helpers import build

# optimizer class -> the hyperparameters of three columns (each also a model trained alone)
CASES = {
    torch.optim.SGD: [
        {"lr": 0.01},
        {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
        {"lr": 0.05, "momentum": 0.5, "dampening": 0.3},
    ],
    torch.optim.Adam: [
        {"lr": 0.001},
        {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1},
        {"lr": 0.03, "eps": 1e-6},
    ],
    torch.optim.AdamW: [{"lr": 0.001}, {"lr": 0.01, "weight_decay": 0.1}, {"lr": 0.02}],
    torch.optim.RMSprop: [
        {"lr": 0.001},
        {"lr": 0.01, "alpha": 0.9, "momentum": 0.5},
        {"lr": 0.003, "weight_decay": 0.1, "eps": 1e-5},
    ],
    torch.optim.Adagrad: [
        {"lr": 0.1},
        {"lr": 0.05, "lr_decay": 0.01, "initial_accumulator_value": 0.1},
        {"lr": 0.2, "weight_decay": 0.05},
    ],
}


def problem(seed: int = 0, n: int = 64, d: int = 3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * torch.randn(n, generator=gen, dtype=torch.float64) > 0).double()
    return x, y, LogisticRegression(d, generator=gen, dtype=torch.float64)


def steps_alone(template, optimizer, x, y, n_steps):
    model = LogisticRegression(template.n_features, dtype=torch.float64)
    model.load_state_dict(template.state_dict())
    updater = optimizer(model.parameters())
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for i in range(n_steps):
        batch = slice(8 * (i % 8), 8 * (i % 8) + 8)
        updater.zero_grad()
        loss_fn(model(x[batch]), y[batch]).backward()
        updater.step()
    return model


@pytest.mark.parametrize("optimizer_cls", list(CASES), ids=lambda c: c.__name__)
@pytest.mark.parametrize("flag", [None, "maximize", "special"])
def test_each_column_steps_as_its_optimizer_alone(optimizer_cls, flag):
    x, y, template = problem()
    special = {
        torch.optim.SGD: {"nesterov": True},
        torch.optim.Adam: {"amsgrad": True},
        torch.optim.AdamW: {"amsgrad": True},
        torch.optim.RMSprop: {"centered": True},
        torch.optim.Adagrad: {},
    }[optimizer_cls]
    flags = {"maximize": True} if flag == "maximize" else special if flag == "special" else {}
    columns = [{**c, **flags} for c in CASES[optimizer_cls]]
    if flags.get("nesterov"):  # nesterov needs momentum and no dampening in every column
        columns = [{**c, "momentum": 0.9, "dampening": 0.0} for c in columns]
    stacked = StackedLogisticRegression(template, len(columns))
    settings = [optimizer_cls([torch.zeros(1)], **c).defaults for c in columns]
    updater = stacked_updater(list(stacked.parameters()), optimizer_cls, settings)
    loss_fn = ColumnLosses(torch.nn.BCEWithLogitsLoss(reduction="none"))
    for i in range(40):
        batch = slice(8 * (i % 8), 8 * (i % 8) + 8)
        updater.zero_grad()
        loss_fn(stacked(x[batch]), y[batch]).sum().backward()
        updater.step()
    for k, column in enumerate(columns):
        alone = steps_alone(template, lambda p, c=column: optimizer_cls(p, **c), x, y, 40)
        for name, value in alone.state_dict().items():
            torch.testing.assert_close(stacked.column_state(k)[name], value, rtol=1e-12, atol=1e-14)


def test_manual_sgd_columns_step_as_manual_sgd_alone():
    x, y, template = problem(1)
    columns = [
        {"lr": 0.05, "momentum": 0.0, "weight_decay": 0.0},
        {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    ]
    stacked = StackedLogisticRegression(template, 2)
    settings = [ManualSGD([torch.zeros(1)], **c).defaults for c in columns]
    updater = stacked_updater(list(stacked.parameters()), torch.optim.SGD, settings)
    loss_fn = ColumnLosses(torch.nn.BCEWithLogitsLoss(reduction="none"))
    for i in range(30):
        batch = slice(8 * (i % 8), 8 * (i % 8) + 8)
        updater.zero_grad()
        loss_fn(stacked(x[batch]), y[batch]).sum().backward()
        updater.step()
    for k, column in enumerate(columns):
        alone = steps_alone(template, lambda p, c=column: ManualSGD(p, **c), x, y, 30)
        torch.testing.assert_close(stacked.column(k).w, alone.w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("k", "b", "d"), [(1, 1, 2), (3, 7, 2), (100, 8, 2), (5, 33, 30)])
def test_the_closed_form_gradients_are_autograds_bit_for_bit(dtype, k, b, d):
    """The logistic loss's gradients written out give autograd's numbers exactly: the
    losses, scores and both gradients, for weights small and large (scores far beyond the
    sigmoid's range, where it saturates), any batch size (1/B not exact) and features."""
    gen = torch.Generator().manual_seed(k * 1000 + b)
    for scale in (0.0, 0.1, 3.0, 1e3, 1e30):
        x = torch.randn(b, d, generator=gen, dtype=dtype)
        y = (torch.rand(b, generator=gen) > 0.5).to(dtype)
        template = LogisticRegression(d, generator=gen, dtype=dtype)
        stacked = StackedLogisticRegression(template, k)
        with torch.no_grad():
            stacked.w.copy_(scale * torch.randn(d, k, generator=gen, dtype=dtype))
            stacked.bias.copy_(scale * torch.randn(k, generator=gen, dtype=dtype))
        found = {}
        for way, per_sample in (
            ("closed", torch.nn.BCEWithLogitsLoss(reduction="none")),
            ("autograd", torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=None)),
        ):
            loss_fn = ColumnLosses(per_sample)
            if way == "autograd":
                loss_fn.closed_form = False
            assert loss_fn.closed_form is (way == "closed")
            stacked.w.grad = stacked.bias.grad = None
            losses, scores = losses_and_gradients(stacked, loss_fn, x, y)
            found[way] = (losses, scores, stacked.w.grad.clone(), stacked.bias.grad.clone())
        for closed, autograd in zip(found["closed"], found["autograd"], strict=True):
            assert closed.shape == autograd.shape and closed.dtype == autograd.dtype
            torch.testing.assert_close(closed, autograd, rtol=0, atol=0, equal_nan=True)


def test_other_losses_go_through_autograd():
    assert not ColumnLosses(SigmoidBCELoss(reduction="none")).closed_form
    weighted = torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=torch.tensor(2.0))
    assert not ColumnLosses(weighted).closed_form
    x, y, template = problem(2)
    stacked = StackedLogisticRegression(template, 2)
    loss_fn = ColumnLosses(SigmoidBCELoss(reduction="none"))
    losses, _ = losses_and_gradients(stacked, loss_fn, x[:8], y[:8])
    expected = torch.autograd.grad(loss_fn(stacked(x[:8]), y[:8]).sum(), stacked.w)[0]
    torch.testing.assert_close(stacked.w.grad, expected, rtol=0, atol=0)
    assert not losses.requires_grad


def fit_columns(columns):
    """fit_stacked on the small default pipeline, a column for each of ``columns`` (SGD's
    keyword arguments, or an lr)."""
    _, pipeline = build("dataset.n_samples=400", "epochs=3", "dtype=float64")
    columns = [c if isinstance(c, dict) else {"lr": c} for c in columns]
    stacked = StackedLogisticRegression(pipeline.model, len(columns))
    settings = [torch.optim.SGD([torch.zeros(1)], **c).defaults for c in columns]
    updater = stacked_updater(list(stacked.parameters()), torch.optim.SGD, settings)
    loss_fn = ColumnLosses(torch.nn.BCEWithLogitsLoss(reduction="none"))
    return pipeline, fit_stacked(
        stacked, loss_fn, updater, pipeline.train_loader, pipeline.val_loader, epochs=3,
        device=pipeline.device, monitor=Monitor.val_loss, evaluators=pipeline.evaluators,
    )  # fmt: skip


def fit_alone(lr, weight_decay=0.0):
    _, pipeline = build(
        "dataset.n_samples=400", "epochs=3", "dtype=float64", f"updater.lr={lr}",
        f"updater.weight_decay={weight_decay}",
    )  # fmt: skip
    return fit(
        pipeline.model, pipeline.loss_fn, pipeline.updater, pipeline.train_loader,
        pipeline.val_loader, epochs=3, device=pipeline.device, evaluators=pipeline.evaluators,
    )  # fmt: skip


def assert_same_fit(stacked, alone):
    assert stacked.status is alone.status and stacked.stopped_at == alone.stopped_at
    assert stacked.best_epoch == alone.best_epoch
    assert len(stacked.history) == len(alone.history)
    for a, b in zip(stacked.history, alone.history, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert math.isclose(getattr(a, key), getattr(b, key), rel_tol=1e-9), key
        assert a.extra.keys() == b.extra.keys()
        for key in a.extra:
            assert math.isclose(a.extra[key], b.extra[key], rel_tol=1e-9), key
    for key in alone.best_state:
        torch.testing.assert_close(
            stacked.best_state[key], alone.best_state[key], rtol=1e-9, atol=0
        )


def test_fit_stacked_gives_each_column_the_fit_of_its_model_alone():
    lrs = [0.001, 0.01, 0.1, 1.0]
    _, results = fit_columns(lrs)
    for lr, result in zip(lrs, results, strict=True):
        assert_same_fit(result, fit_alone(lr))


def test_a_diverging_column_stops_alone_and_the_others_are_unchanged():
    _, with_bad = fit_columns([0.01, {"lr": 1e20, "weight_decay": 1.0}, 0.1])
    _, without = fit_columns([0.01, 0.1])
    assert with_bad[1].status is Status.DIVERGED and with_bad[1].stopped_at[0] == 1
    assert with_bad[1].history == [] and with_bad[1].best_epoch == 0
    alone = fit_alone(1e20, weight_decay=1.0)
    assert with_bad[1].stopped_at == alone.stopped_at
    for a, b in ((with_bad[0], without[0]), (with_bad[2], without[1])):
        assert_same_fit(a, b)


def fit_batch_sizes(columns, loss=torch.nn.BCEWithLogitsLoss):
    """fit_stacked with ``stacked.BatchSizes``: a column for each (batch size, SGD's keyword
    arguments) of ``columns``, in order of batch size."""
    _, pipeline = build("dataset.n_samples=400", "epochs=3", "dtype=float64")
    sizes = [size for size, _ in columns]
    stacked = StackedLogisticRegression(pipeline.model, len(columns))
    settings = [torch.optim.SGD([torch.zeros(1)], **c).defaults for _, c in columns]
    loss_fn = ColumnLosses(loss(reduction="none"))

    def make_updater(params, block):
        return stacked_updater(params, torch.optim.SGD, settings[block])

    steps = BatchSizes(stacked, loss_fn, sizes, pipeline.n_train, make_updater)
    assert steps.chunk == math.gcd(*sizes)
    return fit_stacked(
        stacked, loss_fn, None, rebatched(pipeline.train_loader, steps.chunk),
        pipeline.val_loader, epochs=3, device=pipeline.device, monitor=Monitor.val_loss,
        evaluators=pipeline.evaluators, batch_sizes=steps,
    )  # fmt: skip


def fit_alone_with(batch_size, loss="torch.nn.BCEWithLogitsLoss", **sgd):
    overrides = [f"updater.{key}={value}" for key, value in sgd.items()]
    _, pipeline = build(
        "dataset.n_samples=400", "epochs=3", "dtype=float64", f"batch_size={batch_size}",
        f"loss._target_={loss}", *overrides,
    )  # fmt: skip
    return fit(
        pipeline.model, pipeline.loss_fn, pipeline.updater, pipeline.train_loader,
        pipeline.val_loader, epochs=3, device=pipeline.device, evaluators=pipeline.evaluators,
    )  # fmt: skip


def test_columns_of_several_batch_sizes_each_fit_as_their_model_alone():
    # 200 training samples: 8 divides them, 12 and 64 end on a partial minibatch; chunks of 4
    columns = [
        (8, {"lr": 0.1}),
        (8, {"lr": 0.5, "momentum": 0.9}),
        (12, {"lr": 0.3}),
        (12, {"lr": 1e20, "weight_decay": 1.0}),
        (64, {"lr": 1.0, "momentum": 0.5}),
    ]
    results = fit_batch_sizes(columns)
    for (size, sgd), result in zip(columns, results, strict=True):
        assert_same_fit(result, fit_alone_with(size, **sgd))
    assert results[3].status is Status.DIVERGED


def test_several_batch_sizes_go_through_autograd_for_other_losses():
    columns = [(16, {"lr": 0.2}), (40, {"lr": 0.7})]
    results = fit_batch_sizes(columns, loss=SigmoidBCELoss)
    for (size, sgd), result in zip(columns, results, strict=True):
        alone = fit_alone_with(size, "logreg_exp.training.model.SigmoidBCELoss", **sgd)
        assert_same_fit(result, alone)


def test_the_columns_of_a_batch_size_must_be_side_by_side():
    _, pipeline = build("dataset.n_samples=400")
    stacked = StackedLogisticRegression(pipeline.model, 3)
    loss_fn = ColumnLosses(torch.nn.BCEWithLogitsLoss(reduction="none"))
    with pytest.raises(ValueError, match="contiguous"):
        BatchSizes(stacked, loss_fn, [8, 16, 8], pipeline.n_train, lambda p, b: None)


def test_a_stop_request_interrupts_every_column_with_whole_epochs_only():
    _, pipeline = build("dataset.n_samples=400", "epochs=5")
    stacked = StackedLogisticRegression(pipeline.model, 3)
    settings = [torch.optim.SGD([torch.zeros(1)], lr=lr).defaults for lr in (0.01, 0.1, 1.0)]
    updater = stacked_updater(list(stacked.parameters()), torch.optim.SGD, settings)
    calls = {"n": 0}

    def stop_requested():  # true in the middle of epoch 2 (25 batches an epoch, 7 to validate)
        calls["n"] += 1
        return calls["n"] > 25 + 1 + 10

    results = fit_stacked(
        stacked, ColumnLosses(torch.nn.BCEWithLogitsLoss(reduction="none")), updater,
        pipeline.train_loader, pipeline.val_loader, epochs=5, device=pipeline.device,
        monitor=Monitor.val_loss, stop_requested=stop_requested,
    )  # fmt: skip
    for result in results:
        assert result.status is Status.INTERRUPTED and result.stopped_at == (2, None)
        assert [m.epoch for m in result.history] == [1] and result.best_epoch == 1


def test_a_column_whose_validation_overflows_diverges_as_alone():
    # one step an epoch: the column's second step sends its weights to inf after its loss
    # was taken, so only validation sees it; it stops there, as the same model alone does
    overrides = ("dataset.n_samples=40", "batch_size=64", "epochs=2", "dtype=float64")
    _, pipeline = build(*overrides)
    columns = [{"lr": 0.1}, {"lr": 1.0, "weight_decay": 1e300}]
    stacked = StackedLogisticRegression(pipeline.model, len(columns))
    settings = [torch.optim.SGD([torch.zeros(1)], **c).defaults for c in columns]
    updater = stacked_updater(list(stacked.parameters()), torch.optim.SGD, settings)
    loss_fn = ColumnLosses(torch.nn.BCEWithLogitsLoss(reduction="none"))
    results = fit_stacked(
        stacked, loss_fn, updater, pipeline.train_loader, pipeline.val_loader, epochs=2,
        device=pipeline.device, monitor=Monitor.val_loss, evaluators=pipeline.evaluators,
    )  # fmt: skip
    _, alone = build(*overrides, "updater.lr=1.0", "updater.weight_decay=1e300")
    expected = fit(
        alone.model, alone.loss_fn, alone.updater, alone.train_loader, alone.val_loader,
        epochs=2, device=alone.device, evaluators=alone.evaluators,
    )  # fmt: skip
    assert expected.status is Status.DIVERGED and expected.non_finite == "val_loss"
    assert results[1].non_finite == "val_loss" and results[0].status is Status.COMPLETED
    assert_same_fit(results[1], expected)


def test_one_thread_is_enough_while_every_tensor_is_below_torchs_grain_size():
    assert one_thread_is_enough(100, 2, (8, 32))  # a 100-lr sweep of the exercise
    assert not one_thread_is_enough(1000, 2, (8, 64))  # scores of 64,000 elements
    assert not one_thread_is_enough(2, 20000, (8, 32))  # weights of 40,000
