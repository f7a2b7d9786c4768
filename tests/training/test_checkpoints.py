"""best.pt: read back with weights_only, and replaced atomically: a failed write leaves the old
file whole. last.pt: a run resumed from it ends bit for bit as if it had never stopped; and
what ``resume`` makes of a run dir."""

import pytest
import torch

from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor, Status
from logreg_exp.training.checkpoints import (
    PROGRESS_FILE,
    load_checkpoint,
    load_model,
    load_progress,
    random_states,
    restore,
    save_checkpoint,
    save_progress,
    set_random_states,
)
from logreg_exp.training.loop import FitResult
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


def write_model(path, w, bias=None):
    state = {"w": w, "bias": torch.zeros(1, dtype=w.dtype) if bias is None else bias}
    torch.save({"state_dict": state, "epoch": 1, "monitor": "val_loss", "value": 0.5}, path)
    return path


def test_load_model_gives_the_trained_model_in_its_dtype(tmp_path):
    w = torch.tensor([[1.5], [-2.0]], dtype=torch.float64)
    model, ckpt = load_model(write_model(tmp_path / "best.pt", w), n_features=2)
    assert model.w.dtype == torch.float64 and torch.equal(model.w, w) and ckpt["epoch"] == 1
    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    assert model(x).item() == -0.5


class NotATensor:
    pass


def written(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "best.pt: no such file"),
        (lambda p: written(p, b""), r"best.pt is not a readable checkpoint \("),
        (lambda p: written(p, b"PK\x03\x04 cut short"), "is not a readable checkpoint"),
        (
            lambda p: torch.save({"state_dict": {}, "x": NotATensor()}, p) or p,
            "holds objects other than tensors and plain values",
        ),
        (lambda p: torch.save({"w": torch.ones(2, 1)}, p) or p, "it has no state_dict"),
        (
            lambda p: torch.save({"state_dict": {"weight": torch.ones(1, 2)}}, p) or p,
            "its state_dict holds weight, not w and bias",
        ),
        (lambda p: write_model(p, torch.ones(3)), r"parameters of another shape \(w \(3,\)"),
        (
            lambda p: write_model(p, torch.ones(3, 1)),
            "holds a model of 3 features, but its run's data have 2: is it the checkpoint of "
            "another run",
        ),
        (lambda p: write_model(p, torch.full((2, 1), float("nan"))), "non-finite"),
    ],
)
def test_a_file_that_is_not_our_model_is_one_line(tmp_path, make, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_model(make(tmp_path / "best.pt"), n_features=2)
    assert "\n" not in str(info.value)


# last.pt and resuming: a run stopped after some epochs and resumed in a freshly built
# pipeline ends bit for bit as a run that was never stopped.

UPDATERS = [
    ("updater=optim", "updater.optimizer._target_=torch.optim.Adam", "updater.lr=0.05"),
    ("updater=manual", "updater.momentum=0.9", "updater.weight_decay=0.01"),
]


def fit_in(run_dir, overrides, stop_after=None, start=None, perturb=False):
    """Fit a freshly built pipeline, saving last.pt in ``run_dir`` each epoch; stopped after
    epoch ``stop_after``, or going on from ``start`` (what ``load_progress`` read)."""
    cfg, exp = build("epochs=4", "dataset.n_samples=400", "batch_size=16", *overrides)
    run_dir.mkdir(exist_ok=True)
    done = None
    if perturb:
        torch.manual_seed(1234)  # whatever ran before in this process must not matter
    if start is not None:
        done = restore(exp, start)
    stop = []
    result = fit_built(
        cfg, exp, start=done, stop_requested=lambda: bool(stop),
        save_progress=lambda r: save_progress(run_dir, exp, r, wall_s=1.0),
        on_epoch=lambda m, best: stop.append(True) if m.epoch == stop_after else None,
    )  # fmt: skip
    return exp, result


def same_history(a, b):
    keep = lambda m: {k: v for k, v in vars(m).items() if k not in ("train_s", "val_s")}  # noqa: E731
    return [keep(m) for m in a.history] == [keep(m) for m in b.history]


@pytest.mark.parametrize("overrides", UPDATERS, ids=["adam", "manual-momentum"])
def test_a_resumed_fit_ends_exactly_as_one_never_stopped(tmp_path, overrides):
    whole, expected = fit_in(tmp_path / "whole", overrides)
    run = tmp_path / "run"
    _, stopped = fit_in(run, overrides, stop_after=2)
    assert stopped.status is Status.INTERRUPTED and len(stopped.history) == 2
    earlier = load_progress(run)
    assert earlier is not None and earlier["epoch"] == 2

    resumed_exp, resumed = fit_in(run, overrides, start=earlier, perturb=True)
    assert resumed.status is Status.COMPLETED
    assert same_history(resumed, expected)
    assert resumed.best_epoch == expected.best_epoch and resumed.steps == expected.steps
    for name, p in whole.model.state_dict().items():
        assert torch.equal(resumed_exp.model.state_dict()[name], p), name
        assert torch.equal(resumed.best_state[name].cpu(), expected.best_state[name]), name


def test_last_pt_is_rewritten_each_epoch_and_reads_with_weights_only(tmp_path):
    fit_in(tmp_path, UPDATERS[0])
    progress = torch.load(tmp_path / PROGRESS_FILE, weights_only=True)
    assert progress["epoch"] == 4 and len(progress["fit"]["history"]) == 4
    assert set(progress["pipeline"]) == {"model", "updater", "train_batches"}
    assert [p.name for p in tmp_path.iterdir()] == [PROGRESS_FILE]  # no temporary left
    assert load_progress(tmp_path)["epoch"] == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"cut sh", r"last.pt (is not a readable checkpoint|holds objects other than tensors)"),
        ({"format": 99, "epoch": 2}, r"last.pt is not a last.pt of this logreg_exp \(format 99"),
    ],
)
def test_a_last_pt_that_cannot_be_resumed_from_is_one_line(tmp_path, content, message):
    assert load_progress(tmp_path) is None  # none: the run starts at epoch 1
    path = tmp_path / PROGRESS_FILE
    if isinstance(content, bytes):
        path.write_bytes(content)  # a crash cannot leave this (atomic writes), a user can
    else:
        torch.save(content, path)
    with pytest.raises(ConfigError, match=f"^cannot resume: .*{message}") as info:
        load_progress(tmp_path)
    assert str(info.value).endswith("; resume=false starts the run over")
    assert "\n" not in str(info.value)


def test_random_states_put_back_draw_the_same_numbers():
    states = random_states()
    expected = torch.rand(5)
    torch.manual_seed(7)
    set_random_states(states)
    assert torch.equal(torch.rand(5), expected)


# what made last.pt: a run resumes only from its own


def test_last_pt_says_what_made_it_and_only_its_own_run_resumes_from_it(tmp_path):
    from logreg_exp.training.checkpoints import check_origin, run_origin

    _, exp = build("epochs=2", "dataset.n_samples=400")
    origin = run_origin({"seed": 0}, exp)
    save_progress(tmp_path, exp, FitResult(Monitor("val_loss")), 0.0, origin)
    progress = load_progress(tmp_path)
    check_origin(tmp_path, progress, origin)  # its own run: no error
    _, other_data = build("epochs=2", "dataset.n_samples=400", "seed=7")
    cases = [
        (run_origin({"seed": 1}, exp), "made by a run of another config"),
        (run_origin({"seed": 0}, other_data), "the data changed"),
        ({**origin, "dtype": "float64"}, "made in float32, this run trains in float64"),
        ({**origin, "shapes": {"train": [[1, 2], [1]]}}, "data of other shapes"),
    ]
    for other, why in cases:
        with pytest.raises(ConfigError, match=f"last.pt: .*{why}.*; resume=false starts") as info:
            check_origin(tmp_path, progress, other)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="does not say which config and data made it"):
        check_origin(tmp_path, {**progress, "origin": {}}, origin)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pipeline": None}, "pipeline missing or of the wrong type"),
        ({"fit": 3, "wall_s": "1"}, "fit, wall_s missing or of the wrong type"),
        ({"epoch": True}, "epoch missing or of the wrong type"),
    ],
)
def test_a_last_pt_with_missing_or_wrong_typed_entries_is_one_line(tmp_path, change, message):
    _, exp = build("epochs=2", "dataset.n_samples=400")
    save_progress(tmp_path, exp, FitResult(Monitor("val_loss")), 0.0)
    progress = {**torch.load(tmp_path / PROGRESS_FILE, weights_only=True), **change}
    torch.save({k: v for k, v in progress.items() if v is not None}, tmp_path / PROGRESS_FILE)
    with pytest.raises(ConfigError, match=f"^cannot resume: .*{message}; resume=false"):
        load_progress(tmp_path)


def test_a_last_pt_of_another_model_or_updater_is_one_line_not_a_traceback(tmp_path):
    _, three = build("epochs=2", "dataset.n_samples=400", "dataset.n_features=3")
    save_progress(tmp_path, three, FitResult(Monitor("val_loss")), 0.0)
    _, two = build("epochs=2", "dataset.n_samples=400", "updater=manual", "updater.momentum=0.9")
    with pytest.raises(ConfigError, match=r"^cannot resume: last\.pt does not fit this run"):
        restore(two, load_progress(tmp_path))
