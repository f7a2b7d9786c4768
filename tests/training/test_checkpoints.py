"""best.pt: read back with weights_only, and replaced atomically: a failed write leaves the old
file whole."""

import pytest
import torch

from logreg_exp.errors import ConfigError
from logreg_exp.training.checkpoints import load_checkpoint, load_model, save_checkpoint


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
