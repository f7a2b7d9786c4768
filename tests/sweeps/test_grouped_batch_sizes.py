"""hydra/launcher=vectorized over batch sizes: jobs of several batch sizes in one stacked
model, each column stepping at its own minibatch boundaries (``stacked.BatchSizes``), each job
what the basic launcher makes of it."""

from __future__ import annotations

import re
import signal

import pytest
import torch

from logreg_exp.sweeps.vectorized import batch_size_sets, group_jobs
from tests.helpers import read_metrics_json, run_cli, scalars
from tests.sweeps.test_vectorized import (
    SMALL,
    assert_same_jobs,
    job_dirs,
    signal_after_epoch_3,
    start_vectorized_sweep,
    sweep,
    task,
)

# SMALL trains on 200 samples: 8 divides them, 12, 24, 40 and 64 end on a partial minibatch


def test_batch_sizes_share_a_pass_where_the_chunks_of_their_gcd_are_not_too_many():
    assert batch_size_sets({8, 16, 32, 64, 128}) == [{8, 16, 32, 64, 128}]
    assert batch_size_sets({8, 12, 64}) == [{8, 12, 64}]  # chunks of 4
    assert batch_size_sets({8, 9}) == [{8}, {9}]  # chunks of 1: 4x the two groups' steps
    assert batch_size_sets({8, 9, 16, 18}) == [{8, 16}, {9, 18}]
    assert batch_size_sets({32}) == [{32}]


def test_jobs_of_batch_sizes_that_share_no_pass_form_groups_of_their_own():
    tasks = [task(f"updater.lr={lr}", f"batch_size={b}") for b in (8, 9, 32) for lr in (0.1, 1)]
    groups, alone = group_jobs(tasks)
    assert [(g.jobs, g.differ) for g in groups] == [
        ([0, 1, 4, 5], ["batch_size", "updater.lr"]),
        ([2, 3], ["updater.lr"]),
    ]
    assert alone == {}
    groups, _ = group_jobs(tasks, batch_sizes=False)  # the benchmarking switch
    assert [g.jobs for g in groups] == [[0, 1], [2, 3], [4, 5]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "rel"),
    [
        pytest.param(
            ["dtype=float64", "batch_size=8,12,64", "updater.lr=0.05,0.5",
             "updater.momentum=0.9", "scheduler=cosine"],
            1e-9, marks=pytest.mark.hydra_lines,
        ),
        (["updater.optimizer._target_=torch.optim.Adam", "batch_size=16,40",
          "updater.lr=0.01,0.1"], 1e-4),
        (["dtype=float64", "updater=manual", "batch_size=8,24", "updater.lr=0.1,0.3",
          "penalty=l1", "alpha=0.01", "scheduler=step", "scheduler.step_size=2"], 1e-9),
        (["dtype=float64", "seed=0,1", "batch_size=8,32", "updater.lr=0.1"], 1e-9),
    ],
    ids=["sgd-momentum-cosine-f64", "adam-f32", "manual-l1-step-f64", "seeds-f64"],
)  # fmt: skip
def test_a_batch_size_grid_is_one_group_equal_to_the_basic_launchers(tmp_path, args, rel):
    basic, basic_dir = sweep(tmp_path, "basic", *SMALL, *args)
    assert basic.returncode == 0, basic.stderr
    grouped, grouped_dir = sweep(tmp_path, "grouped", *SMALL, *args, launcher="vectorized")
    assert grouped.returncode == 0, grouped.stderr
    out = grouped.stdout + grouped.stderr
    assert "Traceback" not in out
    jobs = len(job_dirs(basic_dir))
    assert f"Launching {jobs} jobs: {jobs} in 1 group trained as one, 0 alone" in out
    assert re.search(r"group 1: \d+ jobs \(.*\), differing in batch_size", out), out
    assert_same_jobs(basic_dir, grouped_dir, rel)


@pytest.mark.slow
def test_a_diverging_column_ends_diverged_at_its_own_step_and_the_others_train_on(tmp_path):
    """lr 1e20 diverges at a step of its own batch size (its minibatches span chunks of 4
    samples), as alone; the group's other jobs are what the basic launcher gives."""
    args = [*SMALL, "dtype=float64", "updater.weight_decay=1", "batch_size=8,12",
            "updater.lr=0.05,1e20"]  # fmt: skip
    basic, basic_dir = sweep(tmp_path, "basic", *args)
    grouped, grouped_dir = sweep(tmp_path, "grouped", *args, launcher="vectorized")
    assert basic.returncode == grouped.returncode == 0, grouped.stderr
    assert "4 in 1 group" in grouped.stdout + grouped.stderr
    statuses = {d.name: read_metrics_json(d)["status"] for d in job_dirs(grouped_dir)}
    assert sorted(statuses.values()) == ["completed", "completed", "diverged", "diverged"]
    assert_same_jobs(basic_dir, grouped_dir, 1e-9)  # diverged_epoch and _step too


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_a_batch_size_group_with_every_job_interrupted(tmp_path, sig):
    proc = start_vectorized_sweep(
        tmp_path, "batch_size=8,12", "updater.lr=0.01,0.1", "epochs=100000",
        "dataset.n_samples=400",
    )  # fmt: skip
    signal_after_epoch_3(proc, sig)
    assert proc.returncode == 130
    jobs = job_dirs(tmp_path / "sweep")
    assert len(jobs) == 4
    for job in jobs:
        metrics = read_metrics_json(job)
        assert metrics["status"] == "interrupted" and metrics["epochs_run"] >= 3
        assert torch.load(job / "best.pt", weights_only=True)["epoch"] == metrics["best_epoch"]
        assert len(scalars(job)["val/acc"]) == metrics["epochs_run"]
    assert (tmp_path / "sweep" / "summary.md").is_file()


@pytest.mark.slow
def test_a_dry_run_shows_the_batch_sizes_in_one_group(tmp_path):
    proc = run_cli(
        "-m", "hydra/launcher=vectorized", "updater.lr=0.01,0.1", "batch_size=8,32,128",
        "dry_run=true", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "would train 6 jobs: 6 in 1 group trained as one, 0 alone" in proc.stdout
    assert "group 1: 6 jobs (#0,1,2,3,4,5), differing in batch_size, updater.lr" in proc.stdout
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_a_bad_batch_size_fails_its_jobs_alone(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path, "bad", *SMALL, "batch_size=0,8,12", "updater.lr=0.1,0.2", launcher="vectorized"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out
    assert "group 2: 4 jobs (#2,3,4,5), differing in batch_size, updater.lr" in out
    statuses = [read_metrics_json(j)["status"] for j in job_dirs(sweep_dir)]
    assert statuses == ["failed", "failed", "completed", "completed", "completed", "completed"]
    assert read_metrics_json(job_dirs(sweep_dir)[0])["error"].startswith("batch_size")


@pytest.mark.slow
def test_pruning_halves_a_batch_size_group_and_the_kept_jobs_are_the_basic_launchers(tmp_path):
    args = ["epochs=4", "dataset.n_samples=400", "dtype=float64", "batch_size=8,12",
            "updater.lr=0.001,1"]  # fmt: skip
    basic, basic_dir = sweep(tmp_path, "basic", *args)
    pruned, pruned_dir = sweep(
        tmp_path, "pruned", *args, "+hydra.launcher.prune=2", launcher="vectorized"
    )
    assert basic.returncode == pruned.returncode == 0, pruned.stderr
    assert "4 jobs, 2 completed, 2 pruned" in pruned.stdout + pruned.stderr
    statuses = []
    for a, b in zip(job_dirs(basic_dir), job_dirs(pruned_dir), strict=True):
        ma, mb = read_metrics_json(a), read_metrics_json(b)
        statuses.append(mb["status"])
        if mb["status"] == "pruned":
            assert (mb["pruned_epoch"], mb["epochs_run"]) == (2, 2)
            kept, alone = scalars(b)["val/loss"], scalars(a)["val/loss"][:2]
            assert [s for s, _ in kept] == [s for s, _ in alone] == [1, 2]
            assert [v for _, v in kept] == pytest.approx([v for _, v in alone], rel=1e-9)
        else:
            assert mb["best_val_loss"] == pytest.approx(ma["best_val_loss"], rel=1e-9)
            assert mb["epochs_run"] == 4
    assert sorted(statuses) == ["completed", "completed", "pruned", "pruned"]
