"""``tracker=mlflow`` against a real MLflow tracking server on 127.0.0.1 (started and stopped
here) and a SQLite store, read back through MLflow's own client: the runs, their params,
metric histories equal to the TensorBoard scalars, tags and artifacts; a sweep logged again
updates its runs; an unreachable server fails nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from logreg_exp.sweeps.launchers import missing_plugin
from logreg_exp.tracking import mlflow_store
from logreg_exp.tracking.mlflow_store import key_of, retried, tracker_settings
from tests.helpers import run_cli, scalars

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

SMALL = ["dataset.n_samples=400", "epochs=3"]


def test_the_settings_come_from_the_tracker_node(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracker_settings({"name": "none"}) is None
    assert tracker_settings(None) is None
    assert tracker_settings({"name": "mlflow"}).uri == "sqlite:///outputs/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example:5000")
    assert tracker_settings({"name": "mlflow"}).uri == "http://example:5000"
    given = tracker_settings({"name": "mlflow", "tracking_uri": "sqlite:///a.db"}, "file:/b")
    assert given.uri == "file:/b"


def test_a_locked_store_is_retried_then_reported(monkeypatch):
    monkeypatch.setattr(mlflow_store.time, "sleep", lambda s: None)
    calls = []

    def twice_locked():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "done"

    assert retried(twice_locked) == "done" and len(calls) == 3

    def always_locked():
        raise RuntimeError("database is locked")

    with pytest.raises(RuntimeError, match="locked"):
        retried(always_locked)

    def other():
        calls.append(1)
        raise ValueError("no such table")

    calls.clear()
    with pytest.raises(ValueError):
        retried(other)
    assert len(calls) == 1  # not retried


def test_tracker_mlflow_without_the_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr("logreg_exp.sweeps.launchers.is_installed", lambda name: False)
    message = missing_plugin(["tracker=mlflow"])
    assert message == (
        "error: tracker=mlflow needs mlflow (mlflow is not installed): "
        "pip install 'logreg-exp[mlflow]'"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """``mlflow server`` on a free port of 127.0.0.1, with a SQLite store and its artifacts
    in a tmp dir; stopped (its whole process group) at the end."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server",
         "--backend-store-uri", f"sqlite:///{root / 'store.db'}",
         "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,
        # no job runner: its huey consumers are sessions of their own, outside the group
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("mlflow server did not start:\n" + log.name)
            time.sleep(0.5)
        yield url
    finally:
        import psutil

        children = []
        with contextlib.suppress(psutil.Error):  # what it started, wherever they went
            children = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        log.close()


def experiment_runs(client: MlflowClient, name: str = "logreg_exp") -> list:
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], max_results=1000)


def artifact_names(client: MlflowClient, run_id: str) -> set[str]:
    names = set()
    for entry in client.list_artifacts(run_id):
        if entry.is_dir:
            names |= {f.path for f in client.list_artifacts(run_id, entry.path)}
        else:
            names.add(entry.path)
    return names


def assert_same_as_tensorboard(client: MlflowClient, run_id: str, run_dir: Path) -> None:
    """Every scalar curve of the run's event files is a metric history of the run."""
    curves = scalars(run_dir)
    assert {"train/loss", "val/loss", "val/acc", "hparams/best_val_loss"} <= set(curves)
    for tag, points in curves.items():
        history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, tag))
        assert [s for s, _ in history] == [s for s, _ in points], tag
        assert [v for _, v in history] == pytest.approx([v for _, v in points], rel=1e-6), tag


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_a_sweep_is_a_parent_run_with_a_child_per_job_logged_once(tmp_path, mlflow_server):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(
        "-m", "hydra/launcher=vectorized", "updater.lr=0.01,0.1,1.0", *SMALL, "tracker=mlflow",
        f"tracker.tracking_uri={mlflow_server}", "tracker.experiment=sweeps",
        f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "MLflow: sweep run " in proc.stderr + proc.stdout
    jobs = sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/hydra.yaml"))
    names = [f"{n:04d}_dataset.n_samples=400,epochs=3,updater.lr={lr}" for n, lr in
             enumerate(("0.01", "0.1", "1.0"))]  # fmt: skip
    assert [j.name for j in jobs] == names  # tracker=mlflow names no job dir

    client = MlflowClient(tracking_uri=mlflow_server)
    runs = experiment_runs(client, "sweeps")
    assert len(runs) == 4
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.tags["run_dir"]: r for r in runs if r is not parent}
    assert set(children) == {str(j.resolve()) for j in jobs}
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep_dir"] == str(sweep_dir.resolve())
    assert parent.data.metrics["completed_jobs"] == 3
    assert {"summary.md", "summary.csv", "multirun.yaml"} <= artifact_names(
        client, parent.info.run_id
    )
    for job in jobs:
        child = children[str(job.resolve())]
        metrics = json.loads((job / "metrics.json").read_text())
        provenance = json.loads((job / "provenance.json").read_text())
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED" and child.data.tags["status"] == "completed"
        assert child.info.run_name == job.name
        assert child.data.params["updater.lr"] == job.name.rsplit("=", 1)[1]
        assert child.data.params["epochs"] == "3" and "tracker.name" not in child.data.params
        assert child.data.metrics["best_val_loss"] == pytest.approx(metrics["best_val_loss"])
        assert child.data.tags["provenance.versions.torch"] == provenance["versions"]["torch"]
        assert child.data.tags["provenance.command"].startswith("python -m logreg_exp -m ")
        assert_same_as_tensorboard(client, child.info.run_id, job)
        assert {
            "best.pt", "metrics.json", "provenance.json", "decision_boundary.png",
            "hydra/config.yaml", "hydra/overrides.yaml",
        } <= artifact_names(client, child.info.run_id)  # fmt: skip

    # logged again from its files: the same runs, nothing added or replaced
    again = run_cli(str(sweep_dir), "--mlflow", cwd=tmp_path, module="logreg_exp.summary")
    assert again.returncode == 0, again.stderr
    assert "(0 written now)" in again.stdout + again.stderr
    rerun = experiment_runs(client, "sweeps")
    assert sorted(r.info.run_id for r in rerun) == sorted(r.info.run_id for r in runs)

    # a job whose results changed since has its run replaced, still one per job
    metrics_file = jobs[0] / "metrics.json"
    changed = json.loads(metrics_file.read_text())
    changed["wall_s"] += 1.0
    metrics_file.write_text(json.dumps(changed))
    again = run_cli(
        str(sweep_dir), "--mlflow", mlflow_server, "--monitor", "val_loss", cwd=tmp_path,
        module="logreg_exp.summary",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "(1 written now)" in again.stdout + again.stderr
    assert len(experiment_runs(client, "sweeps")) == 4


@pytest.mark.slow
def test_a_single_run_logs_itself_to_a_sqlite_store(tmp_path):
    run_dir = tmp_path / "run"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli(
        *SMALL, "tracker=mlflow", f"tracker.tracking_uri={uri}", f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(tracking_uri=uri)
    (run,) = experiment_runs(client)
    assert run.info.status == "FINISHED"
    assert run.data.tags["run_dir"] == str(run_dir.resolve())
    assert run.data.tags[mlflow_store.RUN_KEY] == key_of(run_dir)
    assert run.data.params["dataset.n_samples"] == "400"
    assert_same_as_tensorboard(client, run.info.run_id, run_dir)
    assert "best.pt" in artifact_names(client, run.info.run_id)
    assert (tmp_path / "mlartifacts").is_dir()  # the artifacts beside the SQLite file

    again = run_cli(str(run_dir), "--mlflow", uri, cwd=tmp_path, module="logreg_exp.summary")
    assert again.returncode == 0, again.stderr
    assert [r.info.run_id for r in experiment_runs(client)] == [run.info.run_id]


@pytest.mark.slow
def test_an_unreachable_server_fails_nothing_and_says_how_to_log_later(tmp_path):
    sweep_dir = tmp_path / "sweep"
    started = time.monotonic()
    proc = run_cli(
        "-m", "updater.lr=0.01,0.1", *SMALL, "tracker=mlflow",
        f"tracker.tracking_uri=http://127.0.0.1:{free_port()}",
        f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 120
    output = proc.stdout + proc.stderr
    lines = [line for line in output.splitlines() if "could not be written" in line]
    assert len(lines) == 1, output
    assert "python -m logreg_exp.summary sweep --mlflow" in lines[0]  # relative to cwd
    assert "Traceback" not in output
    assert (sweep_dir / "summary.md").is_file()
    assert len(list(sweep_dir.glob("*/metrics.json"))) == 2
