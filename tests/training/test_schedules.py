"""Learning-rate schedules: torch's schedulers' learning rates, the same schedule on every path
a model trains by (a single run, its CUDA-graph form, a vectorized group's column), manual
equal to optim, a run resumed mid-schedule equal to one never stopped, and bad values in one
line. On a GPU (tests marked ``cuda``, skipped without one) replayed graphs against eager."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf, open_dict
from torch.optim import lr_scheduler

from logreg_exp.config import (
    CosineSchedulerConfig,
    PlateauSchedulerConfig,
    StepSchedulerConfig,
    validated,
)
from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor, Status
from logreg_exp.saved_run import saved_settings
from logreg_exp.startup import modules_for
from logreg_exp.sweeps.vectorized import group_jobs, task_container
from logreg_exp.training.build import build_pipeline
from logreg_exp.training.checkpoints import load_progress
from logreg_exp.training.graphs import CapturedTraining
from logreg_exp.training.loop import fit
from logreg_exp.training.model import LogisticRegression
from logreg_exp.training.schedules import Schedule, learning_rates, schedule_for
from logreg_exp.training.stacked import (
    ColumnLosses,
    StackedLogisticRegression,
    fit_stacked,
    stacked_updater,
)
from logreg_exp.training.updaters import ManualSGD
from tests.helpers import build, compose_config, fit_built
from tests.training.test_checkpoints import fit_in, same_history

# each schedule's settings and torch's scheduler built with them
TORCH_SCHEDULERS = {
    "step": (
        StepSchedulerConfig(step_size=3, gamma=0.5),
        lambda opt: lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    ),
    "cosine": (
        CosineSchedulerConfig(eta_min=0.001),
        lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001),
    ),
    "cosine-restarts": (  # past T_max torch's recursion goes up again
        CosineSchedulerConfig(T_max=4),
        lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=4),
    ),
    "plateau": (
        PlateauSchedulerConfig(patience=1, factor=0.5, cooldown=1),
        lambda opt: lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1),
    ),
    "plateau-abs-min_lr": (
        PlateauSchedulerConfig(patience=0, threshold=0.01, threshold_mode="abs", min_lr=0.02),
        lambda opt: lr_scheduler.ReduceLROnPlateau(
            opt, patience=0, threshold=0.01, threshold_mode="abs", min_lr=0.02
        ),
    ),
}
# a validation loss that improves, stalls and wobbles
LOSSES = [0.9, 0.8, 0.79, 0.795, 0.7, 0.7, 0.71, 0.69, 0.689, 0.7, 0.5, 0.51]


def sgd(lr: float = 0.1) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def torch_lrs(make, values, lr: float = 0.1) -> list[float]:
    """The lr of each epoch of an optimizer that torch's scheduler ``make`` drives."""
    optimizer = sgd(lr)
    scheduler = make(optimizer)
    lrs = []
    for value in values:
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
            scheduler.step(value)
        else:
            scheduler.step()
    return lrs


@pytest.mark.parametrize("name", list(TORCH_SCHEDULERS))
@pytest.mark.parametrize("updater", ["optim", "manual"])
def test_each_schedule_gives_torchs_learning_rates(name, updater):
    settings, make = TORCH_SCHEDULERS[name]
    target = sgd() if updater == "optim" else ManualSGD([torch.zeros(2)], lr=0.1)
    schedule = Schedule(target, [settings], epochs=10, monitor=Monitor.val_loss)
    lrs = []
    for value in LOSSES:
        lrs.append(learning_rates(target)[0])
        schedule.after_epoch([value])
    expected = torch_lrs(make, LOSSES)
    assert lrs == expected  # the same floats
    assert len(set(lrs)) > 1  # and the schedule did change them


def test_a_plateau_watches_val_acc_upwards():
    target = sgd()
    schedule = Schedule(target, [PlateauSchedulerConfig(patience=0)], 5, Monitor.val_acc)
    accuracies = [0.6, 0.7, 0.7, 0.65, 0.8]
    lrs = []
    for value in accuracies:
        lrs.append(learning_rates(target)[0])
        schedule.after_epoch([value])
    make = lambda opt: lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0)  # noqa: E731
    assert lrs == torch_lrs(make, accuracies)
    assert lrs[-1] < lrs[0]


def test_a_plateau_per_column_is_torchs_rule_on_each_columns_metric():
    """Three columns with their own settings and metric series: each column's lrs are
    torch's on its own series, in the stacked updater's lr tensor too; a column that
    stopped (None) keeps its lr."""
    lrs0 = [0.1, 0.2, 0.4]
    stacked = StackedLogisticRegression(LogisticRegression(2, dtype=torch.float64), 3)
    settings = [torch.optim.SGD([torch.zeros(1)], lr=lr).defaults for lr in lrs0]
    updater = stacked_updater(list(stacked.parameters()), torch.optim.SGD, settings)
    columns = [
        PlateauSchedulerConfig(patience=0),
        PlateauSchedulerConfig(patience=1, factor=0.5),
        PlateauSchedulerConfig(patience=0, threshold=0.05, cooldown=2),
    ]
    schedule = Schedule(updater, columns, epochs=8, monitor=Monitor.val_loss)
    series = [LOSSES[:8], [v * 1.5 for v in LOSSES[:8]], [*LOSSES[:5], None, None, None]]
    seen = []
    for epoch in range(8):
        seen.append(updater.learning_rates())
        assert updater.hyper["lr"].tolist() == seen[-1]
        schedule.after_epoch([s[epoch] for s in series])
    for j, column in enumerate(columns):
        values = [v for v in series[j] if v is not None]
        make = lambda opt, c=column: lr_scheduler.ReduceLROnPlateau(  # noqa: E731
            opt, patience=c.patience, factor=c.factor, threshold=c.threshold,
            cooldown=c.cooldown,
        )  # fmt: skip
        got = [lrs[j] for lrs in seen]
        assert got[: len(values)] == torch_lrs(make, values, lrs0[j]), j
        assert len(set(got)) > 1
    assert len({lrs[2] for lrs in seen[5:]}) == 1  # stopped after epoch 5


def test_scheduler_none_leaves_the_run_as_it_was():
    _, exp = build("dataset.n_samples=200")
    assert exp.schedule is None and "schedule" not in exp.state_dict()


# --- the three training paths ------------------------------------------------------------------

# per column: the overrides of each of two jobs of a group
SCHEDULES = {
    "step": [
        ["scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.5"],
        ["scheduler=step", "scheduler.step_size=2", "scheduler.gamma=0.3"],
    ],
    "cosine": [["scheduler=cosine"], ["scheduler=cosine", "scheduler.T_max=2"]],
    "plateau": [
        ["scheduler=plateau", "scheduler.patience=0", "scheduler.threshold=0.05"],
        ["scheduler=plateau", "scheduler.patience=0", "scheduler.factor=0.5"],
    ],
    "none-and-step": [["scheduler=none"], ["scheduler=step", "scheduler.step_size=1"]],
}
SMALL = ("dataset.n_samples=203", "epochs=4")  # 101 train points: 12 batches of 8 and one of 5
LRS = (0.05, 0.5)


def alone(overrides):
    """A single run, eagerly, as ``python -m logreg_exp`` trains it; and the learning rate
    it set after each epoch."""
    cfg, exp = build(*SMALL, *overrides)
    lrs = []
    result = fit_built(cfg, exp, on_epoch=lambda *_: lrs.append(learning_rates(exp.updater)[0]))
    return exp, result, lrs


def chunked(overrides):
    """The same run through the CUDA-graph train phase's eager form (chunks of 5 steps)."""
    cfg, exp = build(*SMALL, *overrides)
    captured = CapturedTraining(
        exp.model, exp.loss_fn, exp.updater, exp.train_loader, capture=False, steps_per_graph=5
    )
    result = fit(
        exp.model, exp.loss_fn, exp.updater, exp.train_loader, exp.val_loader,
        epochs=cfg.epochs, device=exp.device, evaluators=exp.evaluators,
        train_epoch=captured.train_one_epoch, schedule=exp.schedule,
    )  # fmt: skip
    return exp, result


def grouped(jobs):
    """The jobs (overrides each) as one vectorized group: a column each."""
    built = [build(*SMALL, *overrides) for overrides in jobs]
    first = built[0][1]
    stacked = StackedLogisticRegression(first.model, len(jobs))
    optimizer_cls = torch.optim.SGD
    if isinstance(first.updater, torch.optim.Optimizer):
        optimizer_cls = type(first.updater)
    settings = [exp.updater.defaults for _, exp in built]
    updater = stacked_updater(list(stacked.parameters()), optimizer_cls, settings)
    schedule = schedule_for(updater, [validated(cfg) for cfg, _ in built])
    return updater, fit_stacked(
        stacked, ColumnLosses(torch.nn.BCEWithLogitsLoss(reduction="none")), updater,
        first.train_loader, first.val_loader, epochs=4, device=first.device,
        monitor=Monitor.val_loss, evaluators=first.evaluators, schedule=schedule,
    )  # fmt: skip


def assert_close_fit(got, want, rel: float) -> None:
    assert got.status is want.status and got.best_epoch == want.best_epoch
    assert len(got.history) == len(want.history)
    for a, b in zip(got.history, want.history, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", *b.extra):
            x, y = getattr(a, key, None) or a.extra[key], getattr(b, key, None) or b.extra[key]
            assert math.isclose(x, y, rel_tol=rel, abs_tol=rel * 1e-3), (key, x, y)
    for key, value in want.best_state.items():
        torch.testing.assert_close(got.best_state[key], value, rtol=rel, atol=rel)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("name", "updater"),
    [("step", "optim"), ("cosine", "manual"), ("plateau", "adam"), ("none-and-step", "manual")],
)
def test_a_schedule_is_the_same_on_every_training_path(name, updater, dtype):
    """Each job alone, eagerly and chunked as CUDA graphs are (bit for bit), and as a column
    of a group (float64 to 1e-9, float32 to 1e-4, as the stacked updaters are); each
    schedule changes the learning rate of at least one job."""
    knobs = {
        "optim": ["updater=optim", "updater.momentum=0.5"],
        "manual": ["updater=manual", "updater.momentum=0.5"],
        "adam": ["updater=optim", "updater.optimizer._target_=torch.optim.Adam"],
    }[updater]
    jobs = [
        [f"dtype={dtype}", *knobs, f"updater.lr={lr}", *schedule]
        for lr, schedule in zip(LRS, SCHEDULES[name], strict=True)
    ]
    group_updater, columns = grouped(jobs)
    rel = {"float64": 1e-9, "float32": 1e-4}[dtype]
    changed = False
    for k, overrides in enumerate(jobs):
        exp, want, lrs = alone(overrides)
        chunked_exp, got = chunked(overrides)
        assert want.status is Status.COMPLETED and same_history(got, want)
        for a, b in zip(chunked_exp.model.parameters(), exp.model.parameters(), strict=True):
            assert torch.equal(a, b)
        assert_close_fit(columns[k], want, rel)
        assert group_updater.learning_rates()[k] == lrs[-1]
        changed |= lrs != [LRS[k]] * len(lrs)
    assert changed


@pytest.mark.parametrize(("name", "dtype"), [("step", "float32"), ("cosine", "float64"),
                                           ("plateau", "float32")])  # fmt: skip
def test_manual_and_optim_sgd_agree_bit_for_bit_on_a_schedule(name, dtype):
    overrides = [f"dtype={dtype}", "updater.momentum=0.9", "updater.lr=0.5", *SCHEDULES[name][1]]
    optim_exp, optim_result, optim_lrs = alone(["updater=optim", *overrides])
    manual_exp, manual_result, manual_lrs = alone(["updater=manual", *overrides])
    assert same_history(optim_result, manual_result) and len(optim_result.history) == 4
    for p, q in zip(optim_exp.model.parameters(), manual_exp.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert optim_lrs == manual_lrs and len(set(optim_lrs)) > 1


@pytest.mark.parametrize("name", ["step", "cosine", "plateau"])
def test_the_schedule_is_torchs_scheduler_on_the_optimizer(name):
    """A run with ``scheduler=NAME`` against the same run with no schedule and torch's
    scheduler attached to its optimizer, stepped after each epoch: the same parameters."""
    overrides = (*SMALL, "updater.lr=0.5", *SCHEDULES[name][0])
    cfg, scheduled = build(*overrides)
    fit_built(cfg, scheduled)
    plain_cfg, plain = build(*SMALL, "updater.lr=0.5")
    optimizer = plain.updater
    c = cfg.scheduler
    scheduler = {
        "step": lambda: lr_scheduler.StepLR(optimizer, c.step_size, c.gamma),
        "cosine": lambda: lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs, c.eta_min),
        "plateau": lambda: lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=c.factor, patience=c.patience, threshold=c.threshold
        ),
    }[name]()
    step = (lambda m, _: scheduler.step(m.val_loss)) if name == "plateau" else (
        lambda m, _: scheduler.step()
    )  # fmt: skip
    fit_built(plain_cfg, plain, on_epoch=step)
    assert optimizer.param_groups[0]["lr"] == scheduled.updater.param_groups[0]["lr"] != 0.5
    for p, q in zip(plain.model.parameters(), scheduled.model.parameters(), strict=True):
        assert torch.equal(p, q)


# --- resuming ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        ("updater=optim", "scheduler=step", "scheduler.step_size=2", "updater.momentum=0.9"),
        ("updater=manual", "scheduler=cosine", "updater.lr=0.5"),
        ("updater=optim", "scheduler=plateau", "scheduler.patience=0",
         "scheduler.threshold=0.05", "updater.lr=0.5"),
    ],
    ids=["step", "manual-cosine", "plateau"],
)  # fmt: skip
def test_a_run_resumed_mid_schedule_ends_exactly_as_one_never_stopped(tmp_path, overrides):
    whole, expected = fit_in(tmp_path / "whole", overrides)
    run = tmp_path / "run"
    stopped_exp, stopped = fit_in(run, overrides, stop_after=2)
    assert stopped.status is Status.INTERRUPTED
    earlier = load_progress(run)
    assert earlier["pipeline"]["schedule"] == stopped_exp.schedule.state_dict()
    resumed_exp, resumed = fit_in(run, overrides, start=earlier, perturb=True)
    assert same_history(resumed, expected) and resumed.best_epoch == expected.best_epoch
    assert resumed_exp.schedule.state_dict() == whole.schedule.state_dict()
    assert learning_rates(resumed_exp.updater) == learning_rates(whole.updater)
    assert learning_rates(whole.updater) != learning_rates(stopped_exp.updater)
    for name, p in whole.model.state_dict().items():
        assert torch.equal(resumed_exp.model.state_dict()[name], p), name


# --- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scheduler=step", "scheduler.gamma=-0.5"],
         "scheduler.gamma must be a number in (0, 1], got -0.5"),
        (["scheduler=step", "scheduler.step_size=0"],
         "scheduler.step_size must be a positive integer, got 0"),
        (["scheduler=cosine", "scheduler.T_max=0"],
         "scheduler.T_max must be a positive integer, or null (the run's epochs), got 0"),
        (["scheduler=cosine", "scheduler.eta_min=-1"],
         "scheduler.eta_min must be a number >= 0 and <= 3.4e+38, got -1.0"),
        (["scheduler=plateau", "scheduler.threshold_mode=relative"],
         "scheduler.threshold_mode must be rel or abs, got 'relative'"),
        (["scheduler=plateau", "scheduler.factor=1"],
         "scheduler.factor must be in the open interval (0, 1), got 1.0"),
        (["scheduler=plateau", "scheduler.patience=-1"],
         "scheduler.patience must be an integer >= 0, got -1"),
    ],
)  # fmt: skip
def test_a_bad_schedule_value_is_one_line_naming_the_key_and_what_it_allows(overrides, message):
    with pytest.raises(ConfigError) as err:
        validated(compose_config(*overrides))
    assert str(err.value) == message


def test_jobs_of_any_schedules_group_together_and_say_how_they_differ():
    jobs = [
        ["updater.lr=0.1"],
        ["updater.lr=0.2", "scheduler=step"],
        ["updater.lr=0.3", "scheduler=step", "scheduler.gamma=0.5"],
        ["updater.lr=0.4", "scheduler=plateau"],
        ["updater.lr=0.5", "scheduler=step", "epochs=3"],  # another run length: another group
    ]
    tasks = [task_container(compose_config(*overrides)) for overrides in jobs]
    groups, alone = group_jobs(tasks)
    (group,) = groups
    assert group.jobs == [0, 1, 2, 3] and alone == {4: ""}
    assert {"updater.lr", "scheduler.name", "scheduler.gamma", "scheduler.patience"} <= set(
        group.differ
    )


# --- on a GPU ----------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("updater", ["updater=optim", "updater=manual"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_replayed_graphs_take_each_epochs_learning_rate_on_the_gpu(name, updater):
    """As the eager path on the GPU: a graph recorded with one epoch's learning rate is
    recorded again when the schedule changes it, never replayed stale."""
    overrides = [*SMALL, updater, "updater.momentum=0.5", "dtype=float64", "updater.lr=0.5"]
    overrides += SCHEDULES[name][1]
    results = {}
    for graphs in (False, True):
        cfg = compose_config(*overrides, f"device.cuda_graphs={str(graphs).lower()}")
        exp = build_pipeline(cfg, torch.device("cuda"))
        results[graphs] = (exp, exp.fit(cfg.epochs, Monitor(cfg.monitor)))
    (eager_exp, eager), (replayed_exp, replayed) = results[False], results[True]
    assert learning_rates(replayed_exp.updater) == learning_rates(eager_exp.updater) != [0.5]
    for got, want in zip(replayed.history, eager.history, strict=True):
        for key in ("train_loss", "val_loss"):
            assert getattr(got, key) == pytest.approx(getattr(want, key), rel=1e-12), key
    for key, value in eager.best_state.items():
        torch.testing.assert_close(replayed.best_state[key], value, rtol=1e-12, atol=0)


def test_a_saved_runs_config_reads_back_with_its_schedule(tmp_path):
    """evaluate and predict read a run's .hydra/config.yaml on the schemas it names; a run
    from before schedules existed has none; an unknown one is one line."""
    (tmp_path / ".hydra").mkdir()
    path = tmp_path / ".hydra" / "config.yaml"
    cfg = compose_config("scheduler=plateau", "scheduler.patience=5")
    OmegaConf.save(cfg, path)
    assert saved_settings(tmp_path).scheduler == PlateauSchedulerConfig(patience=5)
    with open_dict(cfg):
        del cfg["scheduler"]
    OmegaConf.save(cfg, path)
    assert saved_settings(tmp_path).scheduler.name == "none"
    with open_dict(cfg):
        cfg.scheduler = {"name": "warmup"}
    OmegaConf.save(cfg, path)
    with pytest.raises(ConfigError, match=r"scheduler.name='warmup' is not known; allowed: none,"):
        saved_settings(tmp_path)


def test_graphs_recorded_with_another_learning_rate_are_recorded_again():
    """A CUDA graph replays the learning rate it was recorded with: once a schedule changes
    it, the graphs of the epochs before are dropped (here a stand-in for one, on the CPU)."""
    cfg, exp = build(*SMALL, "scheduler=step", "scheduler.step_size=1")
    captured = CapturedTraining(
        exp.model, exp.loss_fn, exp.updater, exp.train_loader, capture=False, steps_per_graph=5
    )
    captured.train_one_epoch()
    captured.graphs[5] = "a graph recorded at lr 0.01"
    captured.train_one_epoch()
    assert 5 in captured.graphs  # the same lr: replayed as recorded
    exp.schedule.after_epoch([0.5])
    captured.train_one_epoch()
    assert captured.graphs == {} and captured.recorded_lrs == [0.01 * cfg.scheduler.gamma]


def test_start_up_imports_what_a_manual_run_with_a_schedule_imports():
    """A schedule's stand-in is a torch optimizer, whose first construction imports
    torch._dynamo: the entrypoint imports it early (``startup``), as for updater=optim."""
    assert "torch._dynamo" in modules_for(compose_config("updater=manual", "scheduler=step"))
    assert "torch._dynamo" not in modules_for(compose_config("updater=manual"))
