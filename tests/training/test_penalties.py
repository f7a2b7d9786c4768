"""Penalties (``penalty``, ``alpha``, ``l1_ratio``): scikit-learn's strengths, the same steps
by both updaters, eagerly and chunked as CUDA graphs are, and as a column of a vectorized
group; L1 weights that reach exactly zero; bad values in one line."""

from __future__ import annotations

import pytest
import torch

from logreg_exp.config import validated
from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor
from logreg_exp.sweeps.vectorized import group_jobs, task_container
from logreg_exp.training.build import build_pipeline
from logreg_exp.training.graphs import CapturedTraining, cannot_capture
from logreg_exp.training.loop import fit
from logreg_exp.training.penalties import Penalized, penalized, strengths
from logreg_exp.training.schedules import learning_rates, schedule_for
from logreg_exp.training.stacked import (
    ColumnLosses,
    StackedLogisticRegression,
    fit_stacked,
    stacked_updater,
)
from tests.helpers import build, compose_config, fit_built

SMALL = ("dataset.n_samples=203", "epochs=4", "dataset.n_features=6", "updater.lr=0.2")


@pytest.mark.parametrize(
    ("penalty", "expected"),
    [("none", (0.0, 0.0)), ("l2", (0.2, 0.0)), ("l1", (0.0, 0.2)), ("elasticnet", (0.15, 0.05))],
)
def test_each_penalty_is_scikit_learns_split_of_alpha(penalty, expected):
    settings = validated(compose_config(f"penalty={penalty}", "alpha=0.2", "l1_ratio=0.25"))
    assert strengths(settings) == pytest.approx(expected)


def test_penalty_none_leaves_the_updater_as_it_was():
    _, exp = build("dataset.n_samples=200")
    assert isinstance(exp.updater, torch.optim.SGD)


@pytest.mark.slow
def test_l1_by_proximal_steps_reaches_the_lasso_optimum_with_exact_zeros():
    """Full batch, proximal gradient descent converges to where the optimality conditions
    hold: a weight at 0 has a loss gradient within alpha of 0, any other one a gradient of
    -alpha * its sign; most noise features (3-6) end at exactly 0. L2 shrinks, never to 0."""
    alpha = 0.05
    full_batch = (*SMALL, "dtype=float64", "batch_size=128", "updater.lr=0.5", "epochs=300")
    cfg, exp = build(*full_batch, "penalty=l1", f"alpha={alpha}")
    fit_built(cfg, exp)
    x, y = exp.train_set.tensors
    w = exp.model.w
    (grad,) = torch.autograd.grad(exp.loss_fn(exp.model(x), y), [w])
    zero = w.detach() == 0
    assert int(zero[2:].sum()) >= 2 and not zero[1]
    assert (grad[zero].abs() <= alpha + 1e-9).all()
    torch.testing.assert_close(
        grad[~zero], -alpha * torch.sign(w.detach()[~zero]), atol=1e-6, rtol=0
    )
    cfg, exp = build(*full_batch, "penalty=l2", f"alpha={alpha}", "epochs=10")
    fit_built(cfg, exp)
    assert (exp.model.w != 0).all()


def test_the_l2_part_is_the_gradient_of_alpha_half_w_squared():
    """One step on a zero loss: w - lr * alpha * w for L2, then the prox of L1."""
    w = torch.nn.Parameter(torch.tensor([[1.0], [-0.5], [0.01]], dtype=torch.float64))
    sgd = torch.optim.SGD([w], lr=0.5)
    updater = Penalized(sgd, w, [0.2], [0.04])
    w.grad = torch.zeros_like(w)
    updater.step()
    shrunk = torch.tensor([1.0, -0.5, 0.01], dtype=torch.float64) * (1 - 0.5 * 0.2)
    expected = torch.sign(shrunk) * (shrunk.abs() - 0.5 * 0.04).clamp(min=0)
    assert torch.equal(w.detach().squeeze(1), expected) and w[2, 0] == 0


@pytest.mark.slow
@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
def test_manual_and_optim_sgd_agree_bit_for_bit_with_a_penalty(penalty):
    runs = {}
    for updater in ("optim", "manual"):
        cfg, exp = build(*SMALL, f"updater={updater}", "updater.momentum=0.5", f"penalty={penalty}",
                         "alpha=0.01", "scheduler=step", "scheduler.step_size=1")  # fmt: skip
        runs[updater] = fit_built(cfg, exp)
    for key, value in runs["optim"].best_state.items():
        assert torch.equal(runs["manual"].best_state[key], value)
    losses = {k: [(m.train_loss, m.val_loss) for m in r.history] for k, r in runs.items()}
    assert losses["optim"] == losses["manual"]


@pytest.mark.slow
def test_a_penalized_run_chunked_as_cuda_graphs_are_is_the_eager_run_bit_for_bit():
    overrides = (*SMALL, "penalty=elasticnet", "alpha=0.02", "scheduler=step",
                 "scheduler.step_size=1", "scheduler.gamma=0.5")  # fmt: skip
    cfg, eager = build(*overrides)
    want = fit_built(cfg, eager)
    cfg, exp = build(*overrides)
    assert cannot_capture(exp.updater) is None
    captured = CapturedTraining(
        exp.model, exp.loss_fn, exp.updater, exp.train_loader, capture=False, steps_per_graph=5
    )
    got = fit(
        exp.model, exp.loss_fn, exp.updater, exp.train_loader, exp.val_loader,
        epochs=cfg.epochs, device=exp.device, train_epoch=captured.train_one_epoch,
        schedule=exp.schedule, evaluators=exp.evaluators,
    )  # fmt: skip
    assert [m.train_loss for m in got.history] == [m.train_loss for m in want.history]
    for a, b in zip(exp.model.parameters(), eager.model.parameters(), strict=True):
        assert torch.equal(a, b)


def grouped(jobs):
    """The jobs (overrides each) as one vectorized group, as ``group_run`` builds it."""
    built = [build(*SMALL, *overrides) for overrides in jobs]
    first = built[0][1]
    stacked = StackedLogisticRegression(first.model, len(jobs))
    settings = [validated(cfg) for cfg, _ in built]
    defaults = [dict(exp.updater.defaults) for _, exp in built]
    updater = penalized(
        stacked_updater(list(stacked.parameters()), torch.optim.SGD, defaults), stacked.w, settings
    )
    return fit_stacked(
        stacked, ColumnLosses(torch.nn.BCEWithLogitsLoss(reduction="none")), updater,
        first.train_loader, first.val_loader, epochs=4, device=first.device,
        monitor=Monitor.val_loss, schedule=schedule_for(updater, settings),
    )  # fmt: skip


@pytest.mark.slow
def test_each_column_of_a_group_is_its_penalized_run_alone():
    jobs = [
        ["penalty=none"],
        ["penalty=l2", "alpha=0.05"],
        ["penalty=l1", "alpha=0.05"],
        ["penalty=elasticnet", "alpha=0.05", "l1_ratio=0.5", "updater.lr=0.1"],
    ]
    jobs = [["dtype=float64", *overrides] for overrides in jobs]
    columns = grouped(jobs)
    for k, overrides in enumerate(jobs):
        cfg, exp = build(*SMALL, *overrides)
        want = fit_built(cfg, exp)
        got = columns[k]
        assert got.best_epoch == want.best_epoch
        for a, b in zip(got.history, want.history, strict=True):
            assert a.val_loss == pytest.approx(b.val_loss, rel=1e-9)
        torch.testing.assert_close(got.best_state["w"], want.best_state["w"], rtol=1e-9, atol=1e-12)
        assert torch.equal(got.best_state["w"] == 0, want.best_state["w"] == 0)


def test_jobs_of_any_penalty_group_together_and_lbfgs_trains_alone():
    jobs = [["penalty=l2"], ["penalty=l1", "alpha=0.01"], ["updater=lbfgs"], ["updater=lbfgs"]]
    tasks = [task_container(compose_config(*overrides)) for overrides in jobs]
    groups, alone = group_jobs(tasks)
    (group,) = groups
    assert group.jobs == [0, 1] and {"penalty", "alpha"} <= set(group.differ)
    assert alone == {2: "updater=lbfgs trains full batch, one model at a time"} | {
        3: "updater=lbfgs trains full batch, one model at a time"
    }


def test_a_schedule_moves_the_l1_threshold_with_the_learning_rate():
    cfg, exp = build(*SMALL, "penalty=l1", "alpha=0.1", "scheduler=step", "scheduler.step_size=1",
                     "scheduler.gamma=0.5")  # fmt: skip
    fit_built(cfg, exp)
    (lr,) = learning_rates(exp.updater)
    assert exp.updater.thresholds.tolist() == pytest.approx([lr * 0.1])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["penalty=l3"], "penalty must be none, l2, l1 or elasticnet, got 'l3'"),
        (["alpha=-1"], "alpha must be a number >= 0 and <= 3.4e+38, got -1.0"),
        (["l1_ratio=1.5"], "l1_ratio must be a number in [0, 1], got 1.5"),
    ],
)
def test_a_bad_penalty_is_one_line_naming_the_key_and_what_it_allows(overrides, message):
    with pytest.raises(ConfigError) as err:
        validated(compose_config(*overrides))
    assert str(err.value) == message


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_lbfgs_refuses_a_penalty_that_is_not_smooth(penalty):
    with pytest.raises(ConfigError) as err:
        build("dataset.n_samples=200", "updater=lbfgs", f"penalty={penalty}")
    assert str(err.value).startswith(f"penalty={penalty} is not allowed with updater=lbfgs: its")


# --- on a GPU ----------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("updater", ["updater=optim", "updater=manual"])
def test_a_penalized_run_replayed_as_cuda_graphs_is_the_eager_run(updater):
    overrides = [*SMALL, updater, "updater.momentum=0.5", "dtype=float64", "penalty=elasticnet",
                 "alpha=0.05", "scheduler=step", "scheduler.step_size=1"]  # fmt: skip
    results = {}
    for graphs in (False, True):
        cfg = compose_config(*overrides, f"device.cuda_graphs={str(graphs).lower()}")
        exp = build_pipeline(cfg, torch.device("cuda"))
        results[graphs] = exp.fit(cfg.epochs, Monitor(cfg.monitor))
    eager, replayed = results[False], results[True]
    for got, want in zip(replayed.history, eager.history, strict=True):
        assert got.train_loss == pytest.approx(want.train_loss, rel=1e-12)
    for key, value in eager.best_state.items():
        torch.testing.assert_close(replayed.best_state[key], value, rtol=1e-12, atol=0)
    assert (eager.best_state["w"] == 0).any()


@pytest.mark.cuda
@needs_cuda
def test_lbfgs_on_the_gpu_reaches_the_cpus_optimum():
    overrides = [*SMALL, "updater=lbfgs", "dtype=float64", "penalty=l2", "alpha=0.01",
                 "updater.max_iter=200", "updater.tolerance_grad=1e-12"]  # fmt: skip
    states = {}
    for name in ("cpu", "cuda"):
        cfg = compose_config(*overrides)
        exp = build_pipeline(cfg, torch.device(name))
        exp.fit(cfg.epochs, Monitor(cfg.monitor))
        states[name] = {k: v.cpu() for k, v in exp.model.state_dict().items()}
    for key, value in states["cpu"].items():
        torch.testing.assert_close(states["cuda"][key], value, rtol=1e-6, atol=1e-8)
