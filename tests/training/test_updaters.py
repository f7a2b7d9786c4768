"""The two updaters: torch.optim from config, and the hand-written SGD step, bit for bit."""

import pytest
import torch

from logreg_exp.config import validated
from logreg_exp.errors import ConfigError
from logreg_exp.training.updaters import ManualSGD, build_updater
from tests.helpers import build, compose_config, fit_built


def train(*overrides: str):
    cfg, exp = build("epochs=3", "dataset.n_samples=400", *overrides)
    return exp, fit_built(cfg, exp)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "knobs",
    [
        (),
        ("updater.momentum=0.9",),
        ("updater.weight_decay=0.01",),
        ("updater.momentum=0.5", "updater.weight_decay=0.1"),
    ],
)
def test_manual_and_optim_sgd_agree_bit_for_bit(dtype, knobs):
    optim_exp, optim_result = train(f"dtype={dtype}", "updater=optim", *knobs)
    manual_exp, manual_result = train(f"dtype={dtype}", "updater=manual", *knobs)
    assert isinstance(optim_exp.updater, torch.optim.SGD)
    assert isinstance(manual_exp.updater, ManualSGD)
    for name, p in optim_exp.model.named_parameters():
        q = dict(manual_exp.model.named_parameters())[name]
        assert p.dtype == getattr(torch, dtype)
        # the same arithmetic in the same order: identical, far inside the 1e-12 asked for
        assert torch.equal(p, q), (name, (p - q).abs().max())
    assert [m.val_acc for m in optim_result.history] == [m.val_acc for m in manual_result.history]
    assert [m.train_acc for m in optim_result.history] == [
        m.train_acc for m in manual_result.history
    ]


def test_manual_step_is_plain_sgd_by_hand():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    sgd = ManualSGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    p.grad = torch.tensor([0.2, 0.4], dtype=torch.float64)
    sgd.step()
    g1 = torch.tensor([0.2 + 0.5 * 1.0, 0.4 + 0.5 * -2.0], dtype=torch.float64)
    expected = torch.tensor([1.0, -2.0], dtype=torch.float64) - 0.1 * g1
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-15)
    sgd.zero_grad()
    assert p.grad is None
    p.grad = torch.tensor([0.2, 0.4], dtype=torch.float64)
    before = p.detach().clone()
    sgd.step()
    g2 = p.grad + 0.5 * before
    torch.testing.assert_close(p.detach(), before - 0.1 * (0.9 * g1 + g2), rtol=0, atol=1e-15)


def test_manual_sgd_goes_on_from_its_state_dict():
    def steps(sgd, p, grads):
        for g in grads:
            p.grad = g.clone()
            sgd.step()

    grads = [torch.tensor([0.2, -0.4]), torch.tensor([0.1, 0.3]), torch.tensor([-0.5, 0.2])]
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    sgd = ManualSGD([p], lr=0.1, momentum=0.9)
    steps(sgd, p, grads)

    q = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    first = ManualSGD([q], lr=0.1, momentum=0.9)
    steps(first, q, grads[:2])
    second = ManualSGD([q], lr=0.1, momentum=0.9)
    second.load_state_dict(first.state_dict())
    steps(second, q, grads[2:])
    assert torch.equal(p, q)


def test_optimizer_target_can_be_swapped_without_code_changes():
    exp, result = train("updater.optimizer._target_=torch.optim.Adam", "updater.lr=0.05")
    assert isinstance(exp.updater, torch.optim.Adam)
    assert exp.updater.param_groups[0]["lr"] == 0.05
    assert result.best.val_acc > 0.7


def test_extra_optimizer_arguments_pass_through():
    cfg = compose_config("updater.momentum=0.9", "+updater.optimizer.nesterov=true")
    model = torch.nn.Linear(2, 1)
    opt = build_updater(model.parameters(), cfg.updater)
    assert opt.param_groups[0]["nesterov"] is True and opt.param_groups[0]["momentum"] == 0.9


def test_momentum_an_optimizer_cannot_take_is_an_error():
    cfg = compose_config("updater.optimizer._target_=torch.optim.Adam", "updater.momentum=0.9")
    with pytest.raises(ConfigError, match=r"updater.momentum=0.9 is not a parameter of"):
        build_updater(torch.nn.Linear(2, 1).parameters(), cfg.updater)


def test_lr_belongs_in_updater_not_optimizer():
    cfg = compose_config("+updater.optimizer.lr=0.5")
    with pytest.raises(ConfigError, match=r"set updater.lr instead"):
        build_updater(torch.nn.Linear(2, 1).parameters(), cfg.updater)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["allow_targets=[mypkg.Opt]", "updater.optimizer._target_=mypkg.Opt"],
            "updater.optimizer._target_=mypkg.Opt: no module mypkg to import it from",
        ),
        (
            ["allow_targets=[torch.optim.Adamm]", "updater.optimizer._target_=torch.optim.Adamm"],
            "updater.optimizer._target_=torch.optim.Adamm: torch.optim has no Adamm",
        ),
        (
            ["updater.optimizer._target_=torch.optim.Adam", "+updater.optimizer.betas=3"],
            "updater.optimizer._target_=torch.optim.Adam does not take these arguments: ",
        ),
        (
            ["allow_targets=[torch.optim.LBFGS]", "updater.optimizer._target_=torch.optim.LBFGS"],
            "updater.optimizer._target_=torch.optim.LBFGS: its step() needs a closure",
        ),
    ],
)
def test_an_optimizer_that_cannot_be_built_is_one_line(overrides, message):
    cfg = validated(compose_config(*overrides))
    with pytest.raises(ConfigError) as info:
        build_updater(torch.nn.Linear(2, 1).parameters(), cfg.updater)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
