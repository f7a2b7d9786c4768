"""Signals and resuming, through the real CLI: a signal at any moment leaves a valid
metrics.json and no traceback; a run started again in its dir goes on where it stopped and
ends bit for bit as a run never stopped (metrics, best.pt, last.pt, TensorBoard); a sweep
stopped by a signal still writes its summary, and the same command finishes it."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import event_records, read_metrics_json, run_cli, without_timings

pytestmark = pytest.mark.slow

SMALL = ("dataset.max_samples=400", "batch_size=16")


def start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def signal_on_line(proc: subprocess.Popen, pattern: str, sig: int) -> str:
    """Read the command's output until a line matches ``pattern``, send ``sig``, and return
    all of its output once it has ended."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if re.search(pattern, line):
            proc.send_signal(sig)
            break
    lines += proc.stdout.readlines()
    proc.wait(timeout=120)
    return "".join(lines)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2])
def test_a_signal_before_the_first_epoch_leaves_a_valid_metrics_json(tmp_path, sig):
    """Sent as soon as Hydra has made the run dir: the run is starting up (importing torch,
    building the data, opening TensorBoard)."""
    proc = start_cli("epochs=3", *SMALL, "hydra.run.dir=run", cwd=tmp_path)
    try:
        config = tmp_path / "run" / ".hydra" / "config.yaml"
        while not config.exists() and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "Traceback" not in out and out.rstrip().endswith("interrupted")
    metrics = read_metrics_json(tmp_path / "run")
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] == 0
    assert metrics["interrupted_by"] == signal.Signals(sig).name
    assert metrics["best_epoch"] is None and not (tmp_path / "run" / "best.pt").exists()


@pytest.mark.hydra_lines
def test_a_run_stopped_by_sigterm_resumes_bit_for_bit(tmp_path):
    args = ("epochs=6", *SMALL, "updater.momentum=0.9")
    whole = run_cli(*args, "hydra.run.dir=whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr

    out = signal_on_line(
        start_cli(*args, "hydra.run.dir=run", cwd=tmp_path), r"epoch 2/6", signal.SIGTERM
    )
    assert "Traceback" not in out
    run = tmp_path / "run"
    # the signal lands in epoch 3, or later where the machine is busy (the run reaches its
    # next epochs before this process has read the line)
    done = read_metrics_json(run)["epochs_run"]
    assert 2 <= done < 6, out
    assert re.search(rf"interrupted by SIGTERM in epoch {done + 1}; .* run again in run ", out)

    resumed = run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    going_on = f"going on with the unfinished run in run at epoch {done + 1} of 6 ({done} epochs"
    assert f"resume=auto: {going_on}" in resumed.stdout
    assert "epoch 1/6" not in resumed.stdout and f"epoch {done + 1}/6" in resumed.stdout
    assert_same_run(run, tmp_path / "whole")
    log = (run / "logreg_exp.log").read_text()  # one log, both attempts
    assert "interrupted by SIGTERM" in log and "going on with" in log

    # the same command once more: the run has ended; it is refused, its files stay as they are
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.suffix != ".lock"}
    again = run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.splitlines() == [
        "error: the run dir run holds a completed run; choose another hydra.run.dir, or add "
        "overwrite=true to delete it first"
    ]
    assert files == {
        p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.suffix != ".lock"
    }


def assert_same_run(run: Path, whole: Path) -> None:
    """Everything a user reads of the two runs is the same, but for timings."""
    assert without_timings(read_metrics_json(run)) == without_timings(read_metrics_json(whole))
    assert (run / "best.pt").read_bytes() == (whole / "best.pt").read_bytes()
    last, expected = (torch.load(d / "last.pt", weights_only=True) for d in (run, whole))
    assert last["epoch"] == expected["epoch"]
    for part in ("model", "updater"):
        assert repr(last["pipeline"][part]) == repr(expected["pipeline"][part]), part
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert event_records(run) == event_records(whole)


def test_resume_true_false_and_another_config(tmp_path):
    args = ("epochs=4", *SMALL)
    out = signal_on_line(
        start_cli(*args, "hydra.run.dir=run", cwd=tmp_path), r"epoch 1/4", signal.SIGUSR1
    )
    assert "interrupted by SIGUSR1" in out

    other = run_cli("epochs=5", *SMALL[:1], "hydra.run.dir=run", cwd=tmp_path)
    assert other.returncode == 1
    assert other.stderr.splitlines() == [
        "error: the run dir run holds an unfinished run of another config (batch_size, epochs "
        "differ); run it with its own config to resume it, choose another hydra.run.dir, or add "
        "overwrite=true to delete it first"
    ]
    assert read_metrics_json(tmp_path / "run")["status"] == "interrupted"  # untouched

    over = run_cli(*args, "resume=false", "hydra.run.dir=run", cwd=tmp_path)
    assert over.returncode == 0, over.stderr
    assert "an unfinished run (interrupted) in run starts over (resume=false)" in over.stdout
    assert "epoch 1/4" in over.stdout
    whole = run_cli(*args, "resume=false", "hydra.run.dir=whole", cwd=tmp_path)  # same text
    assert whole.returncode == 0, whole.stderr
    assert_same_run(tmp_path / "run", tmp_path / "whole")  # nothing left of the first attempt

    done = run_cli(*args, "resume=true", "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: resume=true, but the run dir run holds no unfinished run of this config to "
        "resume (a completed run); choose another hydra.run.dir, or add overwrite=true instead "
        "of resume=true to delete it first"
    ]


@pytest.mark.hydra_lines
def test_a_sweep_stopped_by_a_signal_writes_its_summary_and_the_same_command_finishes_it(
    tmp_path,
):
    args = ("-m", "seed=0,1,2", "epochs=60", *SMALL, "hydra.sweep.dir=sweep")
    proc = start_cli(*args, cwd=tmp_path)
    out = signal_on_line(proc, r"epoch  2/60", signal.SIGTERM)
    assert proc.returncode == 130 and "Traceback" not in out
    sweep = tmp_path / "sweep"
    with (sweep / "summary.csv").open() as f:
        rows = {row["job"]: row for row in csv.DictReader(f)}
    assert rows["0"]["status"] == "interrupted"
    assert rows["1"]["status"] == rows["2"]["status"] == "not started"
    assert "the sweep stopped early" in out

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    with (sweep / "summary.csv").open() as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["completed"] * 3
    (first,) = sweep.glob("0000_*")
    assert "going on with" in (first / "logreg_exp.log").read_text()
