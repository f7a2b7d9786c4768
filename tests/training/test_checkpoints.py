"""best.pt: read back with weights_only, and replaced atomically: a failed write leaves the old
file whole."""

import pytest
import torch

from logreg_exp.training.checkpoints import load_checkpoint, save_checkpoint


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
