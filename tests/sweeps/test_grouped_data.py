"""hydra/launcher=vectorized over seeds and folds: jobs on data of their own in one stacked
model, each job what the basic launcher makes of it; the summary aggregated per setting."""

from __future__ import annotations

import csv
import os
import re
import signal
import statistics
import time
from pathlib import Path

import pytest

from logreg_exp.sweeps.vectorized import group_jobs
from tests.helpers import read_metrics_json
from tests.sweeps.test_vectorized import (
    SMALL,
    assert_same_jobs,
    job_dirs,
    start_vectorized_sweep,
    sweep,
    task,
)


@pytest.mark.slow
def test_seeds_and_folds_join_the_group_of_their_updater_values():
    tasks = [
        task(f"seed={seed}", f"updater.lr={lr}", "dataset.folds=3", f"dataset.fold={fold}")
        for seed in (0, 1)
        for lr in (0.1, 0.2)
        for fold in range(3)
    ]
    groups, alone = group_jobs(tasks)
    assert len(groups) == 1 and alone == {}
    assert groups[0].differ == ["dataset.fold", "seed", "updater.lr"]


def settings_rows(sweep_dir: Path) -> dict[str, dict[str, str]]:
    return {r["setting"]: r for r in csv.DictReader((sweep_dir / "summary_settings.csv").open())}


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_a_seeds_by_lrs_sweep_is_one_group_equal_to_the_basic_launchers(tmp_path):
    args = [*SMALL, "dtype=float64", "seed=0,1,2", "updater.lr=0.05,0.5"]
    basic, basic_dir = sweep(tmp_path, "basic", *args)
    assert basic.returncode == 0, basic.stderr
    grouped, grouped_dir = sweep(tmp_path, "grouped", *args, launcher="vectorized")
    assert grouped.returncode == 0, grouped.stderr
    out = grouped.stdout + grouped.stderr
    assert "Traceback" not in out
    assert re.search(r"group 1: 6 jobs .* differing in seed, updater.lr", out), out
    assert_same_jobs(basic_dir, grouped_dir, 1e-9)
    # the summary per setting: the mean over the three seeds of each lr
    assert "By setting, over seed: 2 settings" in out
    rows = settings_rows(grouped_dir)
    assert rows.keys() == {"updater.lr=0.05", "updater.lr=0.5"}
    for setting, row in rows.items():
        jobs = [d for d in job_dirs(grouped_dir) if setting in d.name]
        losses = [read_metrics_json(d)["best_val_loss"] for d in jobs]
        assert (row["runs"], row["completed"]) == ("3", "3")
        assert float(row["best_val_loss_mean"]) == pytest.approx(statistics.fmean(losses))
        assert float(row["best_val_loss_std"]) == pytest.approx(statistics.stdev(losses))
    basic_rows = settings_rows(basic_dir)
    for setting, row in rows.items():
        basic_mean = float(basic_rows[setting]["best_val_loss_mean"])
        assert float(row["best_val_loss_mean"]) == pytest.approx(basic_mean, rel=1e-9)
    assert (grouped_dir / "sweep.png").is_file() and (grouped_dir / "by_setting").is_dir()


@pytest.mark.slow
def test_k_fold_cross_validation_groups_and_aggregates_its_folds(tmp_path):
    args = [
        *SMALL, "dataset.test_fraction=0.2", "dataset.folds=4", "dataset.fold=range(4)",
        "updater.lr=0.05,0.5",
    ]  # fmt: skip
    basic, basic_dir = sweep(tmp_path, "basic", *args)
    assert basic.returncode == 0, basic.stderr
    grouped, grouped_dir = sweep(tmp_path, "grouped", *args, launcher="vectorized")
    assert grouped.returncode == 0, grouped.stderr
    out = grouped.stdout + grouped.stderr
    assert re.search(r"group 1: 8 jobs .* differing in dataset.fold, updater.lr", out), out
    assert_same_jobs(basic_dir, grouped_dir, 1e-4)
    # each fold validates on a quarter of what the test split (80 of 400) leaves
    for job in job_dirs(grouped_dir):
        assert "240 train / 80 val / 80 test samples" in (job / "logreg_exp.log").read_text()
    assert "By setting, over dataset.fold: 2 settings" in out
    rows = settings_rows(grouped_dir)
    assert rows.keys() == {"updater.lr=0.05", "updater.lr=0.5"}
    assert (
        rows["updater.lr=0.5"]["overrides"]
        == "epochs=3 dataset.n_samples=400 dataset.test_fraction=0.2 dataset.folds=4 updater.lr=0.5"
    )
    assert {r["completed"] for r in rows.values()} == {"4"}


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_pruned_jobs_end_pruned_with_their_files_and_the_others_as_without(tmp_path):
    args = ["epochs=4", "dataset.n_samples=400", "dtype=float64", "updater.lr=0.001,0.01,0.1,1"]
    plain, plain_dir = sweep(tmp_path, "plain", *args, launcher="vectorized")
    assert plain.returncode == 0, plain.stderr
    pruned, pruned_dir = sweep(
        tmp_path, "pruned", *args, "+hydra.launcher.prune=2", launcher="vectorized"
    )
    assert pruned.returncode == 0, pruned.stderr
    out = pruned.stdout + pruned.stderr
    assert "Traceback" not in out and "4 jobs, 2 completed, 2 pruned" in out
    statuses = {}
    for a, b in zip(job_dirs(plain_dir), job_dirs(pruned_dir), strict=True):
        ma, mb = read_metrics_json(a), read_metrics_json(b)
        statuses[b.name] = mb["status"]
        if mb["status"] == "pruned":
            assert (mb["pruned_epoch"], mb["epochs_run"]) == (2, 2)
            assert (b / "best.pt").is_file() and mb["best_val_loss"] is not None
            assert "pruned after epoch 2" in (b / "logreg_exp.log").read_text()
        else:
            assert mb["best_val_loss"] == pytest.approx(ma["best_val_loss"], rel=1e-12)
            assert mb["epochs_run"] == 4
    assert sorted(statuses.values()) == ["completed", "completed", "pruned", "pruned"]
    rows = list(csv.DictReader((pruned_dir / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["completed", "completed", "pruned", "pruned"]


@pytest.mark.slow
def test_a_bad_prune_setting_is_one_line_before_anything_runs(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path, "bad", "epochs=2", "updater.lr=0.1,0.2", "+hydra.launcher.prune=0",
        launcher="vectorized",
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: hydra.launcher.prune must be a positive integer (epochs) or null, got 0"
    ]
    assert not sweep_dir.exists() or not job_dirs(sweep_dir)


@pytest.mark.slow
def test_a_fold_whose_data_is_invalid_fails_its_jobs_alone(tmp_path):
    """Two positives in 30 rows, three stratified folds: fold 2 validates on no positive."""
    rows = ["a,b,label"] + [f"{i},{i % 7},{int(i in (3, 17))}" for i in range(30)]
    (tmp_path / "few.csv").write_text("\n".join(rows) + "\n")
    args = [
        "dataset=csv", f"dataset.path={tmp_path / 'few.csv'}", "dataset.target=label",
        "dataset.test_fraction=0", "dataset.folds=3", "dataset.fold=range(3)",
        "updater.lr=0.1,0.2", "epochs=2",
    ]  # fmt: skip
    basic, basic_dir = sweep(tmp_path, "basic", *args)
    grouped, grouped_dir = sweep(tmp_path, "grouped", *args, launcher="vectorized")
    assert basic.returncode == grouped.returncode == 1
    assert "Traceback" not in grouped.stdout + grouped.stderr
    for a, b in zip(job_dirs(basic_dir), job_dirs(grouped_dir), strict=True):
        ma, mb = read_metrics_json(a), read_metrics_json(b)
        assert ma["status"] == mb["status"] == ("failed" if "fold=2" in b.name else "completed")
        if mb["status"] == "failed":
            assert mb["error"] == ma["error"] and "dataset.folds=3" in mb["error"]
        else:
            assert mb["best_val_loss"] == pytest.approx(ma["best_val_loss"], rel=1e-4)


@pytest.mark.slow
def test_sigterm_stops_a_seeds_group_with_every_job_interrupted_and_summarized(tmp_path):
    proc = start_vectorized_sweep(
        tmp_path, "seed=0,1", "updater.lr=0.01,0.1", "epochs=100000", "dataset.n_samples=400"
    )
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if re.search(r"epoch +3/100000", line) or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    jobs = job_dirs(tmp_path / "sweep")
    assert len(jobs) == 4
    for job in jobs:
        metrics = read_metrics_json(job)
        assert metrics["status"] == "interrupted" and metrics["epochs_run"] >= 3
        assert (job / "best.pt").is_file()
    assert (tmp_path / "sweep" / "summary.md").is_file()
