"""Parallel and cluster launchers, the optuna search and the presets, through the real CLI:
every job's files are read back, and compared with the same job run alone."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from logreg_exp.sweeps.launchers import usable_cores
from tests.helpers import job_id, reached_epoch, run_cli, scalars, wait_until, without_timings

pytestmark = pytest.mark.slow


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit()), key=str)


def assert_complete_job(job: Path, epochs: int) -> dict:
    """A finished job's files: metrics.json completed, an event file with every epoch, best.pt."""
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == epochs, job
    assert (job / "best.pt").is_file()
    assert [step for step, _ in scalars(job)["val/acc"]] == list(range(1, epochs + 1))
    return metrics


def summary_rows(sweep: Path) -> list[dict]:
    """summary.csv, which the sweep callback writes at the end of every sweep, best job first."""
    with (sweep / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def assert_summary_lists(sweep: Path, metrics: list[dict], monitor: str) -> list[dict]:
    """Every job in summary.csv, completed, with its metrics.json value, best first."""
    rows = summary_rows(sweep)
    assert sorted(int(r["job"]) for r in rows) == list(range(len(metrics)))
    assert all(r["status"] == "completed" for r in rows)
    for row in rows:
        assert float(row[f"best_{monitor}"]) == metrics[int(row["job"])][f"best_{monitor}"]
    values = [float(r[f"best_{monitor}"]) for r in rows]
    assert values == sorted(values, reverse=monitor == "val_acc")
    assert (sweep / "summary.md").read_text().startswith("Sweep ")
    return rows


def threads_logged(job: Path) -> int:
    (line,) = [ln for ln in (job / "logreg_exp.log").read_text().splitlines() if "thread" in ln]
    return int(line.split(" torch thread")[0].rsplit(", ", 1)[1])


def test_joblib_runs_jobs_in_parallel_workers_with_their_share_of_the_cores(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1", "epochs=2",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Launching 2 jobs, 2 at a time in worker processes of their own" in proc.stdout
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == ["0000_epochs=2,seed=0", "0001_epochs=2,seed=1"]
    metrics = [assert_complete_job(j, 2) for j in jobs]
    assert [threads_logged(j) for j in jobs] == [max(1, usable_cores() // 2)] * 2
    assert_summary_lists(sweep, metrics, "val_loss")
    # a sweep over seeds alone has no picture: its spread is in the summary (by setting)
    assert "no sweep picture: only seed varied" in proc.stdout + proc.stderr
    assert not (sweep / "sweep.png").exists()

    # a job in a worker gives what it gives alone
    proc = run_cli("seed=1", "epochs=2", "hydra.run.dir=alone", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    alone = json.loads((tmp_path / "alone" / "metrics.json").read_text())
    assert without_timings(alone) == without_timings(metrics[1])


@pytest.mark.hydra_lines
@pytest.mark.parametrize("launcher", ["submitit_local", "slurm_local"])
def test_submitit_local_runs_each_job_through_submitit(tmp_path, launcher):
    """The plugin's own submitit_local, and our SLURM preset's local twin."""
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", f"hydra/launcher={launcher}", "updater.lr=0.01,0.1", "epochs=2",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Submitit 'local' sweep output dir" in proc.stdout + proc.stderr
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == [
        "0000_epochs=2,updater.lr=0.01",
        "0001_epochs=2,updater.lr=0.1",
    ]
    assert_summary_lists(sweep, [assert_complete_job(j, 2) for j in jobs], "val_loss")
    for job in jobs:
        if launcher == "slurm_local":
            assert threads_logged(job) == 1  # the preset's cpus_per_task
        hydra_cfg = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra_cfg["launcher"]["_target_"].endswith("LocalLauncher")
    # submitit's own record of each job: its stdout (our epoch lines) and its result
    logs = sorted((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2
    assert all("best epoch" in log.read_text() for log in logs)


def trainer_of(controller: int) -> psutil.Process:
    """The process that trains a job of submitit's local executor: the child of the
    controller process whose PID is the job id in .hydra/hydra.yaml."""
    (trainer,) = psutil.Process(controller).children()
    return trainer


def processes_of(sweep: Path) -> list[psutil.Process]:
    """The processes that run a job of ``sweep`` (its submitit folder in their command line)."""
    return [
        proc
        for proc in psutil.process_iter(["cmdline"])
        if str(sweep) in " ".join(proc.info["cmdline"] or [])
    ]


def test_a_submitit_sweep_waits_for_every_job_and_summarizes_cancelled_and_killed_ones(tmp_path):
    """Job 0 gets SIGTERM (as scancel sends it: its controller forwards it to the trainer),
    job 1's trainer SIGKILL (the out-of-memory killer); job 2 completes. The sweep waits for
    all three, lists each, and exits 1; no trainer outlives it."""
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "-m", "hydra/launcher=slurm_local",
         "epochs=3000,3001,3", "dataset.max_samples=400", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        jobs = {n: sweep / f"{n:04d}_dataset.max_samples=400,epochs={e}" for n, e in
                ((0, 3000), (1, 3001), (2, 3))}  # fmt: skip
        for n, sig in ((0, signal.SIGTERM), (1, signal.SIGKILL)):
            controller = int(wait_until(lambda n=n: job_id(jobs[n]), f"job {n} started"))
            wait_until(lambda n=n: reached_epoch(jobs[n], 2), f"epoch 2 of job {n}")
            if sig == signal.SIGTERM:
                os.kill(controller, sig)
            else:
                killed = trainer_of(controller)
                killed.kill()
                killed.wait(timeout=30)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
        for left in processes_of(sweep):  # a test that fails midway leaves none running
            with contextlib.suppress(psutil.Error):
                left.kill()
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    rows = {int(r["job"]): r for r in summary_rows(sweep)}
    assert [rows[n]["status"] for n in range(3)] == ["interrupted", "no metrics.json", "completed"]
    assert json.loads((jobs[0] / "metrics.json").read_text())["interrupted_by"] == "SIGTERM"
    assert re.search(r"job #1 \(\d+\) ended without a result: no result", out)
    assert "1 of 3 jobs failed: 0001_dataset.max_samples=400,epochs=3001" in out
    assert processes_of(sweep) == []  # the killed trainer among them


@pytest.mark.hydra_lines
def test_optuna_search_records_the_best_trial(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "hparams_search=optuna", "hydra.sweeper.n_trials=3", "epochs=1",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best) == {"name", "best_params", "best_value"}
    assert set(best["best_params"]) == {"updater.lr", "batch_size"}

    trials, metrics = {}, []
    for job in job_dirs(sweep):
        assert "hparams_search" not in job.name
        metrics.append(assert_complete_job(job, 1))
        assert metrics[-1]["monitor"] == "val_acc"
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        params = dict(o.split("=", 1) for o in overrides if o.split("=")[0] in best["best_params"])
        trials[job.name] = (metrics[-1]["best_val_acc"], params)
    assert len(trials) == 3
    assert len({tuple(sorted(p.items())) for _, p in trials.values()}) == 3  # distinct trials
    for _, params in trials.values():
        assert 1e-4 <= float(params["updater.lr"]) <= 1.0
        assert int(params["batch_size"]) in (8, 16, 32, 64, 128)

    top_value = max(value for value, _ in trials.values())
    assert best["best_value"] == top_value
    matching = [p for value, p in trials.values() if value == top_value]
    assert {k: str(v) for k, v in best["best_params"].items()} in matching

    # the summary ranks the same job first and repeats the search's verdict
    rows = assert_summary_lists(sweep, metrics, "val_acc")
    assert float(rows[0]["best_val_acc"]) == best["best_value"]
    params = " ".join(f"{k}={v}" for k, v in best["best_params"].items())
    summary = (sweep / "summary.md").read_text()
    assert f"- best parameters: {params}\n" in summary
    assert f"best value {best['best_value']:.4f}" in summary
    assert summary in proc.stdout

    # each trial's HParams are what the search varies; the picture, the trials over both
    for job in job_dirs(sweep):
        assert set(session_hparams(job)) == {"updater.lr", "batch_size"}
    assert "updater.lr x batch_size, 3 jobs; in sweep.png" in proc.stdout + proc.stderr
    assert (sweep / "sweep.png").is_file()


def session_hparams(run_dir: Path) -> dict:
    """The hparams of the HParams session a run's event file starts."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
    return dict(metadata.parse_session_start_info_plugin_data(content).hparams)


def test_experiment_exercise_reproduces_the_exercise(tmp_path):
    proc = run_cli("experiment=exercise", "hydra.run.dir=exercise", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "exercise"
    cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert (cfg["batch_size"], cfg["val_batch_size"], cfg["epochs"]) == (8, 32, 12)
    assert cfg["updater"]["name"] == "manual" and cfg["updater"]["lr"] == 0.01
    assert cfg["loss"]["_target_"] == "logreg_exp.training.model.SigmoidBCELoss"
    metrics = assert_complete_job(run, 12)
    assert 0.76 <= metrics["best_val_acc"] <= 0.81  # the exercise's 0.78-0.79, with slack

    # the same run, spelt out choice by choice
    proc = run_cli("updater=manual", "loss=bce", "hydra.run.dir=spelt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    spelt = json.loads((tmp_path / "spelt" / "metrics.json").read_text())
    assert without_timings(spelt) == without_timings(metrics)


def test_debug_fast_runs_one_epoch_on_small_data_apart_from_real_runs(tmp_path):
    proc = run_cli("debug=fast", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = (tmp_path / "outputs" / "debug").glob("*/*")  # outputs/debug/DATE/TIME
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 1
    assert metrics["train_samples_per_s"] * metrics["train_s"] == pytest.approx(250)
    assert "using 500 of 5000 samples" in proc.stdout
    assert "250 train / 250 val samples" in proc.stdout
    assert (run / "best.pt").is_file()
    assert not list(run.glob("events.out.tfevents.*"))


# Runs the CLI with some modules made unimportable, as if their package were not installed.
WITHOUT = """
import sys
from importlib.abc import MetaPathFinder

class Without(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[:len(HIDDEN)] == HIDDEN or name == ".".join(HIDDEN):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

HIDDEN = sys.argv.pop(1).split(".")
sys.meta_path.insert(0, Without())
from logreg_exp.cli import run_cli
run_cli()
"""


@pytest.mark.parametrize(
    ("hidden", "choice", "message"),
    [
        (
            "hydra_plugins.hydra_optuna_sweeper",
            "hparams_search=optuna",
            "error: hparams_search=optuna needs hydra-optuna-sweeper "
            "(hydra_plugins.hydra_optuna_sweeper is not installed): "
            "pip install 'logreg-exp[optuna]'",
        ),
        (
            "joblib",
            "hydra/launcher=joblib",
            "error: hydra/launcher=joblib needs hydra-joblib-launcher (joblib is not installed): "
            "pip install 'logreg-exp[launchers]'",
        ),
        (
            "submitit",
            "hydra/launcher=slurm",
            "error: hydra/launcher=slurm needs hydra-submitit-launcher (submitit is not "
            "installed): pip install 'logreg-exp[launchers]'",
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(tmp_path, hidden, choice, message):
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT, hidden, "-m", choice, "epochs=1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == message + "\n"
    assert not (tmp_path / "outputs").exists()


@pytest.mark.filterwarnings("ignore:Deprecated API features detected")  # optuna 2.10's models
def test_optuna_study_in_sqlite_grows_across_commands(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'search.db'}"
    for n, seed in ((2, 0), (1, 1)):
        proc = run_cli(
            "hparams_search=optuna", f"hydra.sweeper.n_trials={n}", "epochs=1",
            f"hydra.sweeper.storage={storage}", f"hydra.sweeper.sampler.seed={seed}",
            f"hydra.sweep.dir={tmp_path / f'sweep{seed}'}", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="logreg_exp", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert len({t.params["updater.lr"] for t in study.trials}) == 3
    best = yaml.safe_load((tmp_path / "sweep1" / "optimization_results.yaml").read_text())
    assert best["best_value"] == study.best_value == max(t.value for t in study.trials)
