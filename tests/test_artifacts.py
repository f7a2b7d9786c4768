"""metrics.json and best.pt are replaced atomically: a failed write leaves the old file whole."""

import json

import pytest
import torch

from logreg_exp import artifacts
from logreg_exp.artifacts import load_checkpoint, save_checkpoint
from logreg_exp.results import read_metrics, write_metrics


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


def test_a_crash_mid_write_keeps_the_previous_metrics(tmp_path, monkeypatch):
    write_metrics(tmp_path, {"status": "completed"})

    def crash(src, dst):
        raise OSError("power cut before rename")

    monkeypatch.setattr(artifacts.os, "replace", crash)
    with pytest.raises(OSError):
        write_metrics(tmp_path, {"status": "failed"})
    monkeypatch.undo()
    assert read_metrics(tmp_path).metrics == {"status": "completed"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_written_files_get_ordinary_permissions(tmp_path):
    path = write_metrics(tmp_path, {"a": 1})
    assert path.stat().st_mode & 0o644 == 0o644
    assert json.loads(path.read_text()) == {"a": 1}
