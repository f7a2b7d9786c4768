"""A sweep's settings over seeds and folds: the stats, the ranking, summary.md and
summary_settings.csv, the picture's points, and the settings' HParams rows."""

from __future__ import annotations

import csv
import math
import statistics

import pytest

from logreg_exp.results import Monitor
from logreg_exp.run_files import SETTINGS_CSV, SETTINGS_DIR, SUMMARY_MD
from logreg_exp.sweeps.aggregate import Stats, aggregate, t_975
from logreg_exp.sweeps.plots import layout
from logreg_exp.sweeps.summary import collect_jobs, write_summary
from tests.helpers import completed_metrics as completed
from tests.helpers import event_records, make_job, scalars

# (lr, seed) -> best val_loss; lr=0.1 is better on average, though seed 2 of lr=0.01 is the
# single best job
LOSSES = {
    ("0.01", 0): 0.52, ("0.01", 1): 0.54, ("0.01", 2): 0.45,
    ("0.1", 0): 0.48, ("0.1", 1): 0.49, ("0.1", 2): 0.47,
}  # fmt: skip


@pytest.fixture
def seeds_sweep(tmp_path):
    """seed=0,1,2 x updater.lr=0.01,0.1, and an lr=1 whose three seeds diverged."""
    sweep = tmp_path / "sweep"
    num = 0
    for lr in ("0.01", "0.1", "1"):
        for seed in range(3):
            metrics = {"status": "diverged"}
            if (lr, seed) in LOSSES:
                metrics = completed(LOSSES[lr, seed], 0.8 - LOSSES[lr, seed] / 10)
                metrics["test_acc"] = 0.7 + seed / 100
            make_job(sweep, num, [f"updater.lr={lr}", f"seed={seed}"], metrics)
            num += 1
    return sweep


def test_the_t_quantiles_are_students():
    assert t_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert t_975(4) == pytest.approx(2.7764, abs=1e-4)
    # beyond the table: the expansion (R's qt(0.975, df))
    assert t_975(31) == pytest.approx(2.039513, abs=1e-5)
    assert t_975(120) == pytest.approx(1.979930, abs=1e-5)
    assert t_975(10**6) == pytest.approx(1.959966, abs=1e-5)


def test_stats_are_the_mean_the_sample_std_and_the_t_interval():
    stats = Stats.of([1.0, 2.0, 3.0])
    assert (stats.n, stats.mean, stats.std) == (3, 2.0, 1.0)
    half = 4.302653 / math.sqrt(3)
    assert stats.low == pytest.approx(2 - half, abs=1e-5)
    assert stats.high == pytest.approx(2 + half, abs=1e-5)
    one = Stats.of([0.5])
    assert (one.n, one.mean, one.std, one.low, one.half_width) == (1, 0.5, None, None, None)


def test_settings_are_the_overrides_but_seed_ranked_by_mean(seeds_sweep):
    settings = aggregate(collect_jobs(seeds_sweep), Monitor.val_loss)
    assert [s.overrides for s in settings] == [
        ["updater.lr=0.1"],
        ["updater.lr=0.01"],
        ["updater.lr=1"],
    ]
    best = settings[0].stats["best_val_loss"]
    assert best.n == 3 and best.mean == pytest.approx(0.48)
    assert best.std == pytest.approx(statistics.stdev([0.48, 0.49, 0.47]))
    assert settings[0].stats["test_acc"].mean == pytest.approx(0.71)
    # the diverged setting: its jobs counted, no stats, last
    assert (settings[2].completed, len(settings[2].jobs), settings[2].stats) == (0, 3, {})


def test_higher_is_better_ranks_by_the_highest_mean(seeds_sweep):
    settings = aggregate(collect_jobs(seeds_sweep), Monitor.val_acc)
    assert settings[0].overrides == ["updater.lr=0.1"]  # val_acc 0.8 - loss / 10


def test_a_sweep_without_seeds_or_folds_has_no_settings(tmp_path):
    make_job(tmp_path, 0, ["updater.lr=0.1"], completed(0.5, 0.7))
    make_job(tmp_path, 1, ["updater.lr=0.2"], completed(0.4, 0.7))
    assert aggregate(collect_jobs(tmp_path), Monitor.val_loss) == []


def test_folds_repeat_a_setting_as_seeds_do(tmp_path):
    num = 0
    for lr in ("0.1", "0.2"):
        for fold in range(3):
            loss = 0.5 + fold / 100 - float(lr) / 10
            overrides = ["dataset.folds=3", f"dataset.fold={fold}", f"updater.lr={lr}"]
            make_job(tmp_path, num, overrides, completed(loss, 0.7))
            num += 1
    settings = aggregate(collect_jobs(tmp_path), Monitor.val_loss)
    assert [s.name for s in settings] == ["updater.lr=0.2", "updater.lr=0.1"]
    assert settings[0].overrides == ["dataset.folds=3", "updater.lr=0.2"]
    assert settings[0].stats["best_val_loss"].mean == pytest.approx(0.49)


def test_the_summary_gains_a_table_per_setting_and_a_csv(seeds_sweep):
    text = write_summary(seeds_sweep)
    assert text is not None
    assert "By setting, over seed: 3 settings" in text
    assert "Best setting: updater.lr=0.1, best val_loss 0.4800 ± 0.0248 over 3 runs" in text
    assert (seeds_sweep / SUMMARY_MD).read_text() == text
    rows = list(csv.DictReader((seeds_sweep / SETTINGS_CSV).open()))
    assert [r["setting"] for r in rows] == ["updater.lr=0.1", "updater.lr=0.01", "updater.lr=1"]
    assert [(r["runs"], r["completed"], r["jobs"]) for r in rows] == [
        ("3", "3", "3 4 5"),
        ("3", "3", "0 1 2"),
        ("3", "0", "6 7 8"),
    ]
    assert float(rows[0]["best_val_loss_mean"]) == pytest.approx(0.48)
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert float(rows[0]["best_val_loss_ci95_high"]) == pytest.approx(0.48 + half, abs=1e-6)
    assert rows[2]["best_val_loss_mean"] == ""


def test_a_summary_without_settings_removes_an_earlier_settings_csv(tmp_path):
    make_job(tmp_path, 0, ["updater.lr=0.1"], completed(0.5, 0.7))
    make_job(tmp_path, 1, ["updater.lr=0.2"], completed(0.4, 0.7))
    (tmp_path / SETTINGS_CSV).write_text("rank\n1\n")
    (tmp_path / SETTINGS_DIR / "0000_x").mkdir(parents=True)
    text = write_summary(tmp_path)
    assert text is not None and "By setting" not in text
    assert not (tmp_path / SETTINGS_CSV).exists() and not (tmp_path / SETTINGS_DIR).exists()


def test_the_picture_draws_a_point_per_setting_with_its_interval(seeds_sweep):
    plan = layout(collect_jobs(seeds_sweep), Monitor.val_loss)
    assert not isinstance(plan, str)
    assert plan.keys == ["updater.lr"] and plan.repeats == ["seed"]
    by_x = {p.x: p for p in plan.points}
    assert by_x[0.1].best == pytest.approx(0.48) and sorted(by_x[0.1].runs) == [0.47, 0.48, 0.49]
    assert by_x[0.1].low is not None and by_x[0.1].low < 0.47
    assert by_x[1.0].mark == "diverged"
    assert plan.best is by_x[0.1]
    assert plan.describe().endswith("3 settings of 9 jobs")


def test_a_sweep_over_seeds_alone_has_no_picture(tmp_path):
    for seed in range(3):
        make_job(tmp_path, seed, [f"seed={seed}"], completed(0.5 + seed / 100, 0.7))
    assert layout(collect_jobs(tmp_path), Monitor.val_loss) == (
        "only seed varied (its spread is in the summary)"
    )


def test_each_setting_gets_an_hparams_row_where_the_jobs_wrote_event_files(seeds_sweep):
    write_summary(seeds_sweep)
    assert not (seeds_sweep / SETTINGS_DIR).exists()  # no job wrote an event file
    for job in seeds_sweep.glob("000*"):
        (job / "events.out.tfevents.1.host.1.0").write_bytes(b"")
    write_summary(seeds_sweep)
    rows = sorted(p.name for p in (seeds_sweep / SETTINGS_DIR).iterdir())
    assert rows == ["0000_updater.lr=0.01", "0001_updater.lr=0.1", "0002_updater.lr=1"]
    row = seeds_sweep / SETTINGS_DIR / rows[1]
    values = {tag: points[0][1] for tag, points in scalars(row).items()}
    assert values["hparams/best_val_loss"] == pytest.approx(0.48)
    assert values["hparams/best_val_loss_std"] == pytest.approx(0.01)
    tags = {tag for tag, _, _ in event_records(row)}
    assert {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= tags
