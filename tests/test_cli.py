"""End-to-end: the real ``python -m logreg_exp`` in a subprocess, read back as a user would."""

from __future__ import annotations

import json
import re

import pytest
import torch
from omegaconf import OmegaConf

from logreg_exp.registry import path_safe
from logreg_exp.training.model import LogisticRegression
from tests.helpers import run_cli, scalars, without_timings, write_csv

pytestmark = pytest.mark.slow

TAGS = ["train/acc", "train/loss", "val/acc", "val/loss", "val/population_acc"]
HPARAM_TAGS = [
    "hparams/best_epoch", "hparams/best_val_acc", "hparams/best_val_loss",
    "hparams/final_val_acc", "hparams/final_val_loss", "hparams/test_population_acc",
]  # fmt: skip
METRIC_KEYS = {
    "status", "monitor", "best_epoch", "best_val_loss", "best_val_acc", "final_val_loss",
    "final_val_acc", "epochs_run", "train_s", "val_s", "wall_s", "train_samples_per_s",
    "best_val_population_acc", "final_val_population_acc", "test_loss", "test_acc",
    "test_population_acc", "threshold",
}  # fmt: skip


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One default run, ``python -m logreg_exp``, from a fresh working directory."""
    cwd = tmp_path_factory.mktemp("default")
    proc = run_cli(cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = list((cwd / "outputs").glob("*/*"))  # outputs/DATE/TIME
    return proc, run_dir


@pytest.mark.hydra_lines
def test_default_run_lands_in_outputs_of_the_working_directory(default_run):
    _, run_dir = default_run
    names = {p.name for p in run_dir.iterdir()}
    assert {
        ".hydra", "metrics.json", "best.pt", "preprocessing.json", "logreg_exp.log",
        "decision_boundary.png",
    } <= names  # fmt: skip
    assert "__main__.log" not in names
    assert any(n.startswith("events.out.tfevents.") for n in names)
    assert {p.name for p in (run_dir / ".hydra").iterdir()} == {
        "config.yaml", "hydra.yaml", "overrides.yaml",
    }  # fmt: skip


def test_default_run_logs_every_tag_at_every_epoch(default_run):
    _, run_dir = default_run
    found = scalars(run_dir)
    assert sorted(found) == sorted(TAGS + HPARAM_TAGS)
    for tag in TAGS:
        assert [step for step, _ in found[tag]] == list(range(1, 13)), tag
    metrics = json.loads((run_dir / "metrics.json").read_text())
    last_val_acc = found["val/acc"][-1][1]
    assert abs(last_val_acc - metrics["final_val_acc"]) < 1e-6
    for tag in HPARAM_TAGS:  # one value each, at the last epoch, as in metrics.json
        ((step, value),) = found[tag]
        assert step == 12 and value == pytest.approx(metrics[tag.split("/")[1]], rel=1e-6)


def test_default_run_metrics_file_and_result(default_run):
    _, run_dir = default_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == METRIC_KEYS
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 12
    assert 1 <= metrics["best_epoch"] <= 12
    assert 0.76 <= metrics["best_val_acc"] <= 0.81  # the exercise's 0.78-0.79, with slack
    assert metrics["best_val_loss"] <= metrics["final_val_loss"]
    assert metrics["train_s"] > 0 and metrics["wall_s"] >= metrics["train_s"] + metrics["val_s"]
    assert metrics["train_samples_per_s"] == pytest.approx(2500 * 12 / metrics["train_s"])
    # no test split for the exercise: its honest number is the best model's population one
    assert metrics["test_loss"] is None and metrics["test_acc"] is None
    assert metrics["test_population_acc"] == metrics["best_val_population_acc"]


def test_best_checkpoint_reloads_and_reproduces_the_best_accuracy(default_run):
    _, run_dir = default_run
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert ckpt["epoch"] == metrics["best_epoch"] and ckpt["monitor"] == "val_loss"
    assert ckpt["value"] == metrics["best_val_loss"]
    model = LogisticRegression(2)
    model.load_state_dict(ckpt["state_dict"])
    # rebuild the validation split exactly as the run did and score the checkpoint on it
    from logreg_exp.training.build import build_pipeline
    from tests.helpers import compose_config

    exp = build_pipeline(compose_config(), torch.device("cpu"))
    x, y = exp.val_set.tensors
    with torch.no_grad():
        acc = (model.predict(x) == y).float().mean().item()
    assert acc == pytest.approx(metrics["best_val_acc"], abs=1e-6)


def test_console_shows_each_epoch_and_where_to_look(default_run):
    proc, run_dir = default_run
    out = proc.stdout + proc.stderr
    epochs = re.findall(
        r"epoch +(\d+)/12 +train_loss [\d.]+ .*val_loss [\d.]+ +val_acc [\d.]+", out
    )
    assert epochs == [str(i) for i in range(1, 13)]
    assert "*best" in out
    shown = run_dir.relative_to(run_dir.parents[2])  # outputs/DATE/TIME, as the user is in cwd
    assert f"run dir {shown}\n" in out
    assert f"tensorboard --logdir {shown}\n" in out


def test_manual_updater_gives_the_same_result(default_run, tmp_path):
    _, default_dir = default_run
    proc = run_cli("updater=manual", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manual = json.loads((tmp_path / "run" / "metrics.json").read_text())
    default = json.loads((default_dir / "metrics.json").read_text())
    assert without_timings(manual) == without_timings(default)


def test_multirun_2x2_gives_each_job_its_own_named_dir_and_events(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", "updater.lr=0.01,0.1", "batch_size=32,8", "epochs=3", f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == [
        "0000_batch_size=32,epochs=3,updater.lr=0.01",
        "0001_batch_size=8,epochs=3,updater.lr=0.01",
        "0002_batch_size=32,epochs=3,updater.lr=0.1",
        "0003_batch_size=8,epochs=3,updater.lr=0.1",
    ]
    picture = "sweep picture: heat map of best val_loss over updater.lr x batch_size, 4 jobs;"
    assert picture in proc.stdout + proc.stderr
    assert (sweep / "sweep.png").read_bytes().startswith(b"\x89PNG")
    event_files = set()
    for job in jobs:
        found = scalars(sweep / job)
        assert sorted(found) == sorted(TAGS + HPARAM_TAGS)
        assert all([s for s, _ in found[t]] == [1, 2, 3] for t in TAGS)
        (event_file,) = (sweep / job).glob("events.out.tfevents.*")
        event_files.add(event_file.name)
        assert json.loads((sweep / job / "metrics.json").read_text())["status"] == "completed"
    assert len(event_files) == 4

    # a job's result does not depend on the jobs before it in the same process
    proc = run_cli("batch_size=8", "epochs=3", f"hydra.run.dir={tmp_path}/alone", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    alone = json.loads((tmp_path / "alone" / "metrics.json").read_text())
    in_sweep = json.loads((sweep / jobs[1] / "metrics.json").read_text())
    assert without_timings(alone) == without_timings(in_sweep)


def test_default_sweep_dir_is_under_outputs(tmp_path):
    proc = run_cli("-m", "epochs=1", "seed=0,1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.parent.name for p in (tmp_path / "outputs").glob("multirun/*/*/*/metrics.json"))
    assert jobs == ["0000_epochs=1,seed=0", "0001_epochs=1,seed=1"]
    assert not (tmp_path / "multirun").exists()


def test_path_safe_flattens_paths_and_shortens_long_names_deterministically():
    assert path_safe("dataset.path=data/a.csv,seed=1") == "dataset.path=data_a.csv,seed=1"
    long = "dataset.path=" + "/very_long_directory_name" * 20 + "/ü.csv"
    name = path_safe(long)
    assert len(name.encode()) <= 150 and name == path_safe(long)
    assert name.startswith("dataset.path=_very_long_directory_name_very")
    assert re.fullmatch(r".*-[0-9a-f]{12}", name)
    assert path_safe(long.replace("ü", "u")) != name


def test_a_sweep_over_long_paths_runs_every_job_with_its_full_overrides(tmp_path):
    folder = tmp_path.joinpath(*(["a_folder_with_a_long_name_for_the_data" * 3] * 2))
    folder.mkdir(parents=True)
    for name in ("one.csv", "two.csv"):
        write_csv(folder / name)
    paths = [str(folder / "one.csv"), str(folder / "two.csv")]
    proc = run_cli(
        "-m", "experiment=csv", "dataset.target=kind", "epochs=1",
        f"dataset.path={','.join(paths)}", "hydra.sweep.dir=sweep", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    jobs = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(jobs) == 2
    for job, path in zip(jobs, paths, strict=True):
        assert len(job.parent.name.encode()) <= 255
        assert f"dataset.path={path}" in OmegaConf.load(job.parent / ".hydra" / "overrides.yaml")
    summary = (tmp_path / "sweep" / "summary.csv").read_text()
    assert all(f"dataset.path={path}" in summary for path in paths)
