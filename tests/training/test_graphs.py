"""The CUDA-graph train phase: on the CPU its eager form (the same chunking, tally and stops)
against the loop's ``train_one_epoch``; on a GPU (tests marked ``cuda``, skipped without
one) the replayed graphs against the eager path."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from logreg_exp.results import Monitor, Status
from logreg_exp.training.build import build_pipeline
from logreg_exp.training.graphs import (
    CapturedTraining,
    cannot_capture,
    captured_training,
    make_capturable,
)
from logreg_exp.training.loop import fit, train_one_epoch
from tests.helpers import compose_config

SMALL = ["dataset.n_samples=203", "epochs=3"]  # 101 train points: 12 batches of 8 and one of 5

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def pipeline(*overrides: str, device: str = "cpu"):
    cfg = compose_config(*SMALL, *overrides)
    return cfg, build_pipeline(cfg, torch.device(device))


def parameters(exp) -> list[torch.Tensor]:
    return [p.detach().cpu().clone() for p in exp.model.parameters()]


@pytest.mark.parametrize(
    "updater",
    [
        ["updater=optim", "updater.momentum=0.9", "updater.weight_decay=0.01"],
        ["updater=manual", "updater.momentum=0.5"],
        ["updater=optim", "updater.optimizer._target_=torch.optim.Adam", "updater.lr=0.05"],
    ],
    ids=["sgd", "manual", "adam"],
)
def test_the_eager_form_is_the_loop_bit_for_bit(updater):
    """Chunks of 5 steps (12 full batches: 5 + 5 + 2, then the smaller one): the same
    parameters, losses, accuracies and step count as ``train_one_epoch`` every epoch."""
    _, eager = pipeline(*updater)
    _, chunked = pipeline(*updater)
    captured = CapturedTraining(
        chunked.model, chunked.loss_fn, chunked.updater, chunked.train_loader,
        capture=False, steps_per_graph=5,
    )  # fmt: skip
    for _ in range(3):
        want = train_one_epoch(
            eager.model, eager.loss_fn, eager.updater, eager.train_loader, eager.device
        )
        got = captured.train_one_epoch()
        assert (got.loss, got.acc, got.n_batches) == (want.loss, want.acc, want.n_batches) == (
            got.loss, got.acc, 13,
        )  # fmt: skip
        for a, b in zip(parameters(chunked), parameters(eager), strict=True):
            assert torch.equal(a, b)


def test_a_diverging_step_is_found_at_the_same_minibatch():
    _, eager = pipeline("updater.lr=1e38")
    _, chunked = pipeline("updater.lr=1e38")
    captured = CapturedTraining(
        chunked.model, chunked.loss_fn, chunked.updater, chunked.train_loader,
        capture=False, steps_per_graph=4,
    )  # fmt: skip
    want = fit(
        eager.model, eager.loss_fn, eager.updater, eager.train_loader, eager.val_loader,
        epochs=3, device=eager.device,
    )  # fmt: skip
    got = fit(
        chunked.model, chunked.loss_fn, chunked.updater, chunked.train_loader,
        chunked.val_loader, epochs=3, device=chunked.device,
        train_epoch=captured.train_one_epoch,
    )  # fmt: skip
    assert want.status is got.status is Status.DIVERGED
    assert got.stopped_at == want.stopped_at and got.non_finite == want.non_finite


def test_a_stop_request_is_answered_between_runs_of_steps():
    _, exp = pipeline()
    captured = CapturedTraining(
        exp.model, exp.loss_fn, exp.updater, exp.train_loader, capture=False, steps_per_graph=5
    )
    asked = iter([False, False, True])
    phase = captured.train_one_epoch(lambda: next(asked))
    assert phase.stopped and phase.n_batches == 10 and math.isnan(phase.loss)


def test_which_updaters_can_be_captured():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert cannot_capture(torch.optim.SGD(params, lr=0.1)) is None
    assert cannot_capture(torch.optim.Adam(params, lr=0.1)) is None
    assert "torch.optim.Adagrad keeps its step count on the host" in cannot_capture(
        torch.optim.Adagrad(params, lr=0.1)
    )
    _, exp = pipeline("updater=manual")
    assert cannot_capture(exp.updater) is None


def test_on_the_cpu_the_loop_stays_eager():
    _, exp = pipeline()
    assert exp.cuda_graphs  # the default; it applies on a GPU only
    assert captured_training(exp.model, exp.loss_fn, exp.updater, exp.train_loader) is None


# --- on a GPU ---------------------------------------------------------------------------------

GPU_UPDATERS = {
    "sgd": ["updater=optim"],
    "sgd-momentum-decay": ["updater=optim", "updater.momentum=0.9", "updater.weight_decay=0.01"],
    "manual-momentum": ["updater=manual", "updater.momentum=0.5"],
    "adam": ["updater=optim", "updater.optimizer._target_=torch.optim.Adam", "updater.lr=0.05"],
    "adamw": ["updater=optim", "updater.optimizer._target_=torch.optim.AdamW", "updater.lr=0.05"],
    "rmsprop": [
        "updater=optim",
        "updater.optimizer._target_=torch.optim.RMSprop",
        "updater.lr=0.01",
    ],
}


def fit_on_gpu(*overrides: str, graphs: bool):
    cfg, exp = pipeline(*overrides, f"device.cuda_graphs={str(graphs).lower()}", device="cuda")
    return exp, exp.fit(cfg.epochs, Monitor(cfg.monitor))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("updater", list(GPU_UPDATERS))
def test_replayed_graphs_equal_the_eager_path_on_the_gpu(updater, dtype, caplog):
    """Exercise-sized batches (8) with a smaller last one, 3 epochs (the first eager, the
    rest replayed): every epoch's numbers and the best parameters equal eager's."""
    overrides = [*GPU_UPDATERS[updater], f"dtype={dtype}"]
    # Capturable Adam keeps its step count as a float32 tensor on the device and computes
    # its bias corrections from it, where plain Adam uses Python floats: their parameters
    # drift apart by ~1e-5 (relative) in a few dozen steps. The eager reference is made
    # capturable too, so what is compared is the replay against the eager step alone.
    cfg, eager_exp = pipeline(*overrides, "device.cuda_graphs=false", device="cuda")
    make_capturable(eager_exp.updater)
    eager = eager_exp.fit(cfg.epochs, Monitor(cfg.monitor))
    with caplog.at_level(logging.INFO, logger="logreg_exp.training.graphs"):
        _, replayed = fit_on_gpu(*overrides, graphs=True)
    assert "replayed as CUDA graphs" in caplog.text
    tolerance = {"float32": 1e-5, "float64": 1e-12}[dtype]
    assert replayed.status is eager.status is Status.COMPLETED
    assert replayed.best_epoch == eager.best_epoch
    for got, want in zip(replayed.history, eager.history, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert getattr(got, key) == pytest.approx(getattr(want, key), rel=tolerance), key
    for key, value in eager.best_state.items():
        torch.testing.assert_close(replayed.best_state[key], value, rtol=tolerance, atol=0)


@pytest.mark.cuda
@needs_cuda
def test_long_epochs_replay_one_graph_several_times_on_the_gpu():
    """2,500 training points at batch 8 (312 full steps and one of 4) in graphs of 100
    steps: three replays of one graph and one of another (12 steps), equal to eager."""
    _, eager = pipeline("dataset.n_samples=5000", device="cuda")
    want = [
        train_one_epoch(eager.model, eager.loss_fn, eager.updater, eager.train_loader, eager.device)
        for _ in range(3)
    ]
    _, exp = pipeline("dataset.n_samples=5000", device="cuda")
    captured = CapturedTraining(
        exp.model, exp.loss_fn, exp.updater, exp.train_loader, steps_per_graph=100
    )
    got = [captured.train_one_epoch() for _ in range(3)]
    assert sorted(captured.graphs) == [12, 100]
    for g, w in zip(got, want, strict=True):
        assert (g.loss, g.acc) == pytest.approx((w.loss, w.acc), rel=1e-5)
    for a, b in zip(parameters(exp), parameters(eager), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.cuda
@needs_cuda
def test_an_updater_that_cannot_be_captured_runs_eagerly_on_the_gpu(caplog):
    overrides = ["updater=optim", "updater.optimizer._target_=torch.optim.Adagrad"]
    with caplog.at_level(logging.INFO, logger="logreg_exp.training.graphs"):
        _, result = fit_on_gpu(*overrides, graphs=True)
    assert "Adagrad keeps its step count on the host" in caplog.text
    assert result.status is Status.COMPLETED


@pytest.mark.cuda
@needs_cuda
def test_weights_that_overflow_in_a_replayed_epoch_are_found_at_the_eager_step():
    """After an eager first epoch, weights scaled to overflow: the replayed epoch finds the
    first non-finite minibatch loss where the eager loop does."""
    _, eager = pipeline("dataset.n_samples=2000", device="cuda")
    _, exp = pipeline("dataset.n_samples=2000", device="cuda")
    captured = CapturedTraining(exp.model, exp.loss_fn, exp.updater, exp.train_loader)
    train_one_epoch(eager.model, eager.loss_fn, eager.updater, eager.train_loader, eager.device)
    captured.train_one_epoch()  # eager: the warm-up
    for model in (eager.model, exp.model):
        with torch.no_grad():
            model.w.mul_(5e37)  # some minibatches overflow (on the CPU: the 39th first)
    want = train_one_epoch(
        eager.model, eager.loss_fn, eager.updater, eager.train_loader, eager.device
    )
    got = captured.train_one_epoch()
    assert captured.graphs  # the second epoch was replayed
    assert want.first_nonfinite_batch is not None
    assert got.first_nonfinite_batch == want.first_nonfinite_batch


def test_a_run_resumed_without_a_gpu_keeps_its_optimizer_as_built():
    """Adam's state saved by a run that replayed CUDA graphs says capturable; resumed on the
    CPU, the optimizer stays as built (not capturable, which torch refuses on the CPU) and
    trains on."""
    adam = ["updater=optim", "updater.optimizer._target_=torch.optim.Adam"]
    _, on_gpu = pipeline(*adam)
    train_one_epoch(on_gpu.model, on_gpu.loss_fn, on_gpu.updater, on_gpu.train_loader, CPU)
    make_capturable(on_gpu.updater)  # as the run on the GPU did
    state = on_gpu.state_dict()
    assert state["updater"]["param_groups"][0]["capturable"] is True
    _, resumed = pipeline(*adam)
    resumed.load_state_dict(state)
    assert resumed.updater.param_groups[0]["capturable"] is False
    phase = train_one_epoch(
        resumed.model, resumed.loss_fn, resumed.updater, resumed.train_loader, CPU
    )
    assert math.isfinite(phase.loss)
