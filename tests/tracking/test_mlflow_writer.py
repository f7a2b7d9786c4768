"""The sweep's MLflow writer process: it writes the sweep it is handed; one that died is
replaced by the sweep's own process; one handed nothing, or whose sweep's process is killed,
ends without writing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logreg_exp.sweeps.summary import collect_jobs
from logreg_exp.tracking.mlflow_store import TrackerSettings, track_sweep
from logreg_exp.tracking.mlflow_writer import OFF_VARIABLE, SweepWriter
from tests.helpers import run_cli

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient

SMALL = ["dataset.n_samples=400", "epochs=2"]


def test_the_switch_leaves_the_sweep_to_its_own_process(monkeypatch, tmp_path):
    monkeypatch.setenv(OFF_VARIABLE, "1")
    assert SweepWriter.start(TrackerSettings(f"sqlite:///{tmp_path / 'm.db'}")) is None
    assert SweepWriter.start(None) is None
    assert not (tmp_path / "m.db").exists()


def wait_gone(pid: int, seconds: float = 60) -> bool:
    import psutil

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_the_writer_writes_the_sweep_and_a_dead_one_is_replaced(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(
        "-m", "hydra/launcher=vectorized", "updater.lr=0.01,0.1", *SMALL,
        f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    jobs = collect_jobs(sweep_dir)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    node = {"name": "mlflow", "tracking_uri": uri}

    writer = SweepWriter.start(TrackerSettings(uri))
    assert writer is not None
    parent_id, written = writer.written(sweep_dir, jobs)
    assert written == 2 and writer.process.returncode == 0
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("logreg_exp").experiment_id])
    assert len(runs) == 3
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]
    assert sorted(r.data.params["updater.lr"] for r in children) == ["0.01", "0.1"]

    dead = SweepWriter.start(TrackerSettings(uri))
    assert dead is not None
    dead.process.kill()
    dead.process.wait()
    assert dead.written(sweep_dir, jobs) is None  # no answer: the caller writes it
    assert track_sweep(sweep_dir, jobs, node, dead) == parent_id  # ... and does
    assert len(client.search_runs([runs[0].info.experiment_id])) == 3

    idle = SweepWriter.start(TrackerSettings(uri))
    assert idle is not None
    idle.close()  # the sweep ended before its end: nothing is written
    assert idle.process.returncode == 0
    assert len(client.search_runs([runs[0].info.experiment_id])) == 3


@pytest.mark.slow
def test_the_writer_ends_with_the_sweeps_process_however_that_ends(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = (
        "import os, signal, sys\n"
        "from logreg_exp.tracking.mlflow_store import TrackerSettings\n"
        "from logreg_exp.tracking.mlflow_writer import SweepWriter\n"
        f"writer = SweepWriter.start(TrackerSettings({uri!r}))\n"
        "print(writer.process.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=Path.cwd()
    )
    assert proc.returncode == -9, proc.stderr
    pid = int(proc.stdout.split()[0])
    assert wait_gone(pid), "the writer outlived the sweep's process"


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_the_sweeps_process_imports_no_mlflow_its_writer_writes_the_sweep(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "logreg_exp", "-m", "hydra/launcher=vectorized",
         "updater.lr=0.01,0.1", *SMALL, "tracker=mlflow", f"tracker.tracking_uri={uri}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},  # the sweep's process's imports
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MLflow: sweep run " in proc.stdout + proc.stderr
    imported = [
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    assert "logreg_exp.tracking.mlflow_writer" in imported
    assert not [name for name in imported if name.split(".")[0] == "mlflow"]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("logreg_exp")
    assert len(client.search_runs([experiment.experiment_id])) == 3
