"""``updater=lbfgs``: full-batch L-BFGS reaches the optimum of the penalized objective (its
gradient vanishes), an epoch is one L-BFGS step, it resumes where it stopped, and what it
cannot train is refused in one line."""

from __future__ import annotations

import pytest
import torch

from logreg_exp.config import validated
from logreg_exp.errors import ConfigError
from logreg_exp.results import Status
from logreg_exp.training.build import build_pipeline
from logreg_exp.training.lbfgs import FullBatchTraining
from logreg_exp.training.loop import FitResult
from logreg_exp.training.penalties import l2_term
from tests.helpers import build, compose_config, fit_built

SMALL = ("dataset.n_samples=300", "dataset.n_features=4", "dtype=float64", "updater=lbfgs",
         "epochs=3", "updater.tolerance_grad=1e-12", "updater.tolerance_change=1e-15",
         "updater.max_iter=100")  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("penalty", ["none", "l2"])
def test_lbfgs_ends_where_the_objectives_gradient_vanishes(penalty):
    cfg, exp = build(*SMALL, f"penalty={penalty}", "alpha=0.05")
    assert isinstance(exp.updater, torch.optim.LBFGS) and exp.full_batch is not None
    result = fit_built(cfg, exp)
    assert result.status is Status.COMPLETED and len(result.history) == 3
    x, y = exp.train_set.tensors
    loss = exp.loss_fn(exp.model(x), y)
    if penalty == "l2":
        loss = loss + l2_term(exp.model.w, 0.05)
    grads = torch.autograd.grad(loss, list(exp.model.parameters()))
    assert max(g.abs().max().item() for g in grads) < 1e-6
    # the reported training loss is the training split's after the epoch's step
    assert result.history[-1].train_loss == pytest.approx(
        exp.loss_fn(exp.model(x), y).item(), rel=1e-12
    )


@pytest.mark.slow
def test_an_lbfgs_run_stopped_after_an_epoch_goes_on_as_one_that_never_stopped():
    cfg, whole = build(*SMALL, "updater.max_iter=3")
    want = fit_built(cfg, whole)
    cfg, first = build(*SMALL, "updater.max_iter=3", "epochs=1")
    done = fit_built(cfg, first)
    state = first.state_dict()
    cfg, resumed = build(*SMALL, "updater.max_iter=3")
    resumed.load_state_dict(state)
    got = fit_built(cfg, resumed, start=FitResult.from_progress(done.progress()))
    assert [m.train_loss for m in got.history] == [m.train_loss for m in want.history]
    for a, b in zip(resumed.model.parameters(), whole.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_stop_request_ends_the_epoch_before_its_step():
    _cfg, exp = build(*SMALL)
    assert isinstance(exp.full_batch, FullBatchTraining)
    assert exp.full_batch.train_one_epoch(lambda: True).stopped


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["penalty=elasticnet"], "penalty=elasticnet is not allowed with updater=lbfgs"),
        (["updater.weight_decay=0.1"], "updater.weight_decay must be 0 for updater=lbfgs"),
        (["updater.line_search_fn=armijo"], "updater.line_search_fn must be strong_wolfe or null"),
    ],
)
def test_what_lbfgs_cannot_train_is_one_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        build_pipeline(validated(compose_config(*SMALL, *overrides)), torch.device("cpu"))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
