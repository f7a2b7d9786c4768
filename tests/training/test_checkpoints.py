"""best.pt: read back with weights_only, and replaced atomically: a failed write leaves the old
file whole. last.pt: a run resumed from it ends bit for bit as if it had never stopped; and
what ``resume`` makes of a run dir."""

import pytest
import torch

from logreg_exp.errors import ConfigError
from logreg_exp.results import Status
from logreg_exp.training.checkpoints import (
    PROGRESS_FILE,
    ended_run_of,
    load_checkpoint,
    random_states,
    restore,
    run_to_resume,
    save_checkpoint,
    save_progress,
    set_random_states,
    unfinished_run,
    unfinished_run_of,
)
from tests.helpers import build, fit_built


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    state = {"w": torch.randn(3, 1), "bias": torch.zeros(1)}
    path = save_checkpoint(tmp_path, state, epoch=4, monitor="val_acc", value=0.8)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["epoch"] == 4 and ckpt["monitor"] == "val_acc" and ckpt["value"] == 0.8
    assert torch.equal(ckpt["state_dict"]["w"], state["w"])
    assert load_checkpoint(path)["epoch"] == 4


def test_a_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, epoch=1, monitor="val_loss", value=0.5)

    def crash(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, {"w": torch.zeros(2)}, epoch=2, monitor="val_loss", value=0.4)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


# last.pt and resuming: a run stopped after some epochs and resumed in a freshly built
# pipeline ends bit for bit as a run that was never stopped.

UPDATERS = [
    ("updater=optim", "updater.optimizer._target_=torch.optim.Adam", "updater.lr=0.05"),
    ("updater=manual", "updater.momentum=0.9", "updater.weight_decay=0.01"),
]


def fit_in(run_dir, overrides, stop_after=None, start=None, perturb=False):
    """Fit a freshly built pipeline, saving last.pt in ``run_dir`` each epoch; stopped after
    epoch ``stop_after``, or going on from ``start`` (a SavedRun)."""
    cfg, exp = build("epochs=4", "dataset.n_samples=400", "batch_size=16", *overrides)
    config = {"overrides": list(overrides)}
    run_dir.mkdir(exist_ok=True)
    done = None
    if perturb:
        torch.manual_seed(1234)  # whatever ran before in this process must not matter
    if start is not None:
        done = restore(exp, start.progress)
    stop = []
    result = fit_built(
        cfg, exp, start=done, stop_requested=lambda: bool(stop),
        save_progress=lambda r: save_progress(run_dir, exp, r, config, wall_s=1.0),
        on_epoch=lambda m, best: stop.append(True) if m.epoch == stop_after else None,
    )  # fmt: skip
    return exp, result, config


def same_history(a, b):
    keep = lambda m: {k: v for k, v in vars(m).items() if k not in ("train_s", "val_s")}  # noqa: E731
    return [keep(m) for m in a.history] == [keep(m) for m in b.history]


@pytest.mark.parametrize("overrides", UPDATERS, ids=["adam", "manual-momentum"])
def test_a_resumed_fit_ends_exactly_as_one_never_stopped(tmp_path, overrides):
    whole, expected, _ = fit_in(tmp_path / "whole", overrides)
    run = tmp_path / "run"
    _, stopped, config = fit_in(run, overrides, stop_after=2)
    assert stopped.status is Status.INTERRUPTED and len(stopped.history) == 2
    earlier = unfinished_run_of(run, config)
    assert earlier is not None and earlier.epochs_done == 2

    resumed_exp, resumed, _ = fit_in(run, overrides, start=earlier, perturb=True)
    assert resumed.status is Status.COMPLETED
    assert same_history(resumed, expected)
    assert resumed.best_epoch == expected.best_epoch and resumed.steps == expected.steps
    for name, p in whole.model.state_dict().items():
        assert torch.equal(resumed_exp.model.state_dict()[name], p), name
        assert torch.equal(resumed.best_state[name].cpu(), expected.best_state[name]), name


def test_last_pt_is_rewritten_each_epoch_and_reads_with_weights_only(tmp_path):
    _, _, config = fit_in(tmp_path, UPDATERS[0])
    progress = torch.load(tmp_path / PROGRESS_FILE, weights_only=True)
    assert progress["epoch"] == 4 and progress["config"] == config
    assert len(progress["fit"]["history"]) == 4
    assert set(progress["pipeline"]) == {"model", "updater", "train_batches"}
    assert [p.name for p in tmp_path.iterdir()] == [PROGRESS_FILE]  # no temporary left


def write_progress(run_dir, config, epoch=2):
    (run_dir / PROGRESS_FILE).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "config": config, "epoch": epoch}, run_dir / PROGRESS_FILE)


def test_what_resume_makes_of_a_run_dir(tmp_path):
    config = {"epochs": 4, "seed": 0, "resume": "auto"}
    assert run_to_resume(tmp_path, config, "auto") is None  # nothing there: start
    with pytest.raises(ConfigError, match=r"^resume=true, but .* holds no unfinished run"):
        run_to_resume(tmp_path, config, "true")

    write_progress(tmp_path, config)
    for mode in ("auto", "true"):
        assert run_to_resume(tmp_path, {**config, "resume": "true"}, mode).epochs_done == 2
    assert run_to_resume(tmp_path, config, "false") is None
    with pytest.raises(ConfigError, match=r"has another config \(epochs: 4 -> 8; seed: 0 -> 1\)"):
        run_to_resume(tmp_path, {**config, "epochs": 8, "seed": 1}, "auto")
    assert unfinished_run_of(tmp_path, {**config, "seed": 1}) is None

    (tmp_path / "metrics.json").write_text('{"status": "interrupted"}')
    assert unfinished_run_of(tmp_path, config) is not None
    assert ended_run_of(tmp_path, config) is None
    for ended in ("completed", "diverged"):
        (tmp_path / "metrics.json").write_text(f'{{"status": "{ended}"}}')
        assert unfinished_run(tmp_path) is None
        assert ended_run_of(tmp_path, config).ended  # resume=auto leaves it as it is
        assert ended_run_of(tmp_path, {**config, "seed": 1}) is None

    (tmp_path / "metrics.json").unlink()
    (tmp_path / PROGRESS_FILE).write_bytes(b"cut sh")  # a crash cannot leave this, a user can
    assert unfinished_run(tmp_path) is None


def test_random_states_put_back_draw_the_same_numbers():
    states = random_states()
    expected = torch.rand(5)
    torch.manual_seed(7)
    set_random_states(states)
    assert torch.equal(torch.rand(5), expected)
