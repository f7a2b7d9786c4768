"""Bad input and runs that end early, through the real CLI: a clear line, a non-zero exit,
and nothing already written lost."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import run_cli, scalars, without_timings, write_csv

pytestmark = pytest.mark.slow


def assert_user_error(proc, message):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["batch_size=0"], "error: batch_size must be a positive integer, got 0"),
        (["updater.lr=-1"], "error: updater.lr must be a number > 0"),
        (["dataset.label_flip=0.7"], "error: dataset.label_flip must be in [0, 0.5), got 0.7"),
        (["updater=foo"], "Could not find 'updater/foo'"),
        (["epochs=abc"], "Value 'abc' of type 'str' could not be converted to Integer"),
        (["epoch=3"], "Key 'epoch' not in 'JobConfig'"),
        (["dataset=csv", "dataset.path=nope.csv", "dataset.target=y"], "nope.csv': no such file"),
        (["dataset=csv"], "error: dataset.path is required for dataset=csv"),
        (["dataset.n_samples=6"], "error: dataset.n_samples=6: too few samples to split; the"),
    ],
)
def test_bad_input_is_one_clear_line_without_traceback(tmp_path, args, message):
    proc = run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)
    assert_user_error(proc, message)
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_without_cuda_suggests_cpu_or_auto(tmp_path):
    assert_user_error(
        run_cli("device=cuda", cwd=tmp_path),
        "error: device=cuda: CUDA is not available on this machine; use device=cpu or device=auto",
    )
    proc = run_cli("device=auto", "epochs=1", cwd=tmp_path)
    assert proc.returncode == 0 and "device=auto chose cpu" in proc.stdout


def test_full_error_env_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "logreg_exp", "batch_size=0"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_a_bad_value_does_not_touch_an_earlier_run_in_the_same_dir(tmp_path):
    assert run_cli("epochs=1", "hydra.run.dir=run", cwd=tmp_path).returncode == 0
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    checkpoint = (tmp_path / "run" / "best.pt").read_bytes()
    assert_user_error(run_cli("epochs=0", "hydra.run.dir=run", cwd=tmp_path), "epochs must be")
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before
    assert (tmp_path / "run" / "best.pt").read_bytes() == checkpoint


def test_divergence_stops_the_run_and_keeps_what_was_logged(tmp_path):
    # weight decay 20.5 at lr 0.1 multiplies the weights by -1.05 a step: overflow in epoch 6
    proc = run_cli(
        "updater.lr=0.1", "updater.weight_decay=20.5", "epochs=12", "hydra.run.dir=run",
        cwd=tmp_path,
    )  # fmt: skip
    assert_user_error(proc, "error: training diverged: non-finite loss at epoch")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    epoch, step = metrics["diverged_epoch"], metrics["diverged_step"]
    assert metrics["status"] == "diverged" and epoch >= 2
    assert (epoch - 1) * 313 < step <= epoch * 313  # 2500 points in batches of 8: 313 a epoch
    assert f"epoch {epoch}, step {step}" in proc.stderr
    assert metrics["epochs_run"] == epoch - 1
    found = scalars(tmp_path / "run")
    assert [s for s, _ in found["val/loss"]] == list(range(1, epoch))
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_ctrl_c_stops_soon_and_leaves_a_consistent_run(tmp_path):
    # as a terminal sends it: SIGINT to the whole process group
    proc = subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "epochs=100000", "hydra.run.dir=run"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:  # a line an epoch; wait for the third
            if re.search(r"epoch +3/100000", line) or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        proc.wait(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    print(f"stopped {stopped_after:.2f} s after SIGINT")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] >= 3
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert ckpt["epoch"] == metrics["best_epoch"]
    found = scalars(tmp_path / "run")
    assert len(found["val/acc"]) == metrics["epochs_run"]


def test_csv_with_too_few_rows_names_the_file(tmp_path):
    (tmp_path / "tiny.csv").write_text("f1,kind\n1,pos\n2,neg\n3,pos\n")
    proc = run_cli("dataset=csv", "dataset.path=tiny.csv", "dataset.target=kind", cwd=tmp_path)
    assert_user_error(proc, "error: tiny.csv: too few samples to split; the")


def test_csv_dataset_trains_and_is_deterministic(tmp_path):
    write_csv(tmp_path / "data.csv")
    args = ["experiment=csv", "dataset.path=data.csv", "dataset.target=kind", "epochs=4"]
    first = run_cli(*args, "hydra.run.dir=a", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "labels 'neg' -> 0, 'pos' -> 1" in first.stdout
    assert run_cli(*args, "hydra.run.dir=b", cwd=tmp_path).returncode == 0
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert a["best_val_acc"] > 0.95
    assert without_timings(a) == without_timings(b)


def test_experiment_breast_cancer_reaches_095(tmp_path):
    proc = run_cli("experiment=breast_cancer", "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best_val_acc"] >= 0.95
    assert "'malignant' -> 0, 'benign' -> 1" in proc.stdout


def test_a_failing_job_does_not_stop_the_sweep_but_fails_the_command(tmp_path):
    write_csv(tmp_path / "good.csv")
    missing = tmp_path / "data" / "missing.csv"
    proc = run_cli(
        "-m", "dataset=csv", "dataset.target=kind", "epochs=2",
        f"dataset.path={tmp_path / 'good.csv'},{missing},{tmp_path / 'good.csv'}",
        "hydra.sweep.dir=sweep", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    jobs = sorted((tmp_path / "sweep").iterdir(), key=lambda p: p.name)
    job_dirs = [p for p in jobs if p.is_dir()]
    assert [p.name.split("_")[0] for p in job_dirs] == ["0000", "0001", "0002"]  # "/" flattened
    statuses = [json.loads((p / "metrics.json").read_text()) for p in job_dirs]
    assert [s["status"] for s in statuses] == ["completed", "failed", "completed"]
    assert statuses[1]["error"] == f"dataset.path='{missing}': no such file"
    assert "1 of 3 jobs failed" in proc.stdout + proc.stderr
    with (tmp_path / "sweep" / "summary.csv").open() as f:
        rows = {row["job"]: row for row in csv.DictReader(f)}
    assert {job: row["status"] for job, row in rows.items()} == {
        "0": "completed", "1": "failed", "2": "completed",
    }  # fmt: skip


def test_runs_started_in_the_same_second_get_their_own_dirs(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "logreg_exp", "epochs=1"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(list((tmp_path / "outputs").glob("*/*/metrics.json"))) == 2
