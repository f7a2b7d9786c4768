"""``device=cuda`` through the real CLI on a real GPU (marked ``cuda``: skipped without one).

What a user reads back: the exercise's result, TensorBoard curves equal to the eager path's,
a checkpoint that loads on the CPU, and a vectorized sweep whose jobs equal the same jobs
trained on the CPU."""

from __future__ import annotations

import json

import pytest
import torch

from logreg_exp.training.checkpoints import load_model
from tests.helpers import read_metrics_json, run_cli, scalars

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_the_exercise_on_the_gpu_replays_graphs_and_equals_the_eager_path(tmp_path):
    runs = {}
    for graphs in ("true", "false"):
        run_dir = tmp_path / f"graphs-{graphs}"
        proc = run_cli(
            "device=cuda", f"device.cuda_graphs={graphs}", f"hydra.run.dir={run_dir}", cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs[graphs] = run_dir
    log = (runs["true"] / "logreg_exp.log").read_text()
    assert "replayed as CUDA graphs" in log and "device cuda (" in log
    metrics = read_metrics_json(runs["true"])
    assert metrics["status"] == "completed"
    assert 0.78 <= metrics["best_val_acc"] <= 0.79  # the exercise's expected result
    eager = read_metrics_json(runs["false"])
    assert metrics["best_epoch"] == eager["best_epoch"]
    replayed, want = scalars(runs["true"]), scalars(runs["false"])
    for tag in ("train/loss", "train/acc", "val/loss", "val/acc"):
        got = [v for _, v in replayed[tag]]
        assert got == pytest.approx([v for _, v in want[tag]], rel=1e-5), tag
    model, _ = load_model(runs["true"] / "best.pt", n_features=2)  # on the CPU
    assert next(model.parameters()).device.type == "cpu"


def test_a_vectorized_sweep_on_the_gpu_equals_the_cpu(tmp_path):
    dirs = {}
    for device in ("cuda", "cpu"):
        dirs[device] = tmp_path / device
        proc = run_cli(
            "-m", "hydra/launcher=vectorized", "updater.lr=0.01,0.1,1", "epochs=4",
            f"device={device}", f"hydra.sweep.dir={dirs[device]}", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = {d: sorted(dirs[d].glob("*/metrics.json")) for d in dirs}  # 0000_..., in order
    assert len(jobs["cuda"]) == len(jobs["cpu"]) == 3
    for gpu_file, cpu_file in zip(jobs["cuda"], jobs["cpu"], strict=True):
        gpu, cpu = (json.loads(f.read_text()) for f in (gpu_file, cpu_file))
        assert gpu["status"] == cpu["status"] == "completed"
        assert gpu["best_epoch"] == cpu["best_epoch"]
        assert gpu["best_val_loss"] == pytest.approx(cpu["best_val_loss"], rel=1e-4)
