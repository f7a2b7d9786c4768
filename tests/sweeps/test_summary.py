"""The sweep summary from job dirs alone: sorting, robustness to jobs that did not complete,
and ``python -m logreg_exp.summary`` on an earlier sweep."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from logreg_exp.results import Monitor
from logreg_exp.sweeps.summary import (
    SUMMARY_CSV,
    SUMMARY_MD,
    collect_jobs,
    sort_jobs,
    write_summary,
)
from logreg_exp.sweeps.swept import PLAN_FILE
from tests.helpers import completed_metrics as completed
from tests.helpers import make_job


@pytest.fixture
def mixed_sweep(tmp_path) -> Path:
    """Seven planned jobs: three completed, one diverged, one failed before its metrics,
    one whose metrics.json is cut short, and one that never started."""
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["updater.lr=0.001"], completed(0.60, 0.70))
    make_job(sweep, 1, ["updater.lr=0.01"], completed(0.50, 0.78))
    make_job(sweep, 2, ["updater.lr=0.1"], completed(0.55, 0.79))
    make_job(sweep, 3, ["updater.lr=10"], {"status": "diverged", "best_val_loss": float("nan")})
    make_job(sweep, 4, ["updater.lr=100"], None)
    make_job(sweep, 5, ["updater.lr=1000"], '{"status": "compl')
    plan = [[f"updater.lr={lr}"] for lr in ("0.001", "0.01", "0.1", "10", "100", "1000", "1e4")]
    (sweep / PLAN_FILE).write_text(json.dumps({"jobs": plan}))
    return sweep


def test_completed_jobs_come_first_best_first_then_the_rest_by_job_number(mixed_sweep):
    jobs = sort_jobs(collect_jobs(mixed_sweep), Monitor.val_loss)
    assert [(j.num, j.status) for j in jobs] == [
        (1, "completed"),
        (2, "completed"),
        (0, "completed"),
        (3, "diverged"),
        (4, "no metrics.json"),
        (5, "unreadable metrics.json"),
        (6, "not started"),
    ]
    assert jobs[-1].overrides == ["updater.lr=1e4"] and jobs[-1].dir is None


def test_jobs_are_collected_in_job_order_not_in_the_text_order_of_their_dirs(tmp_path):
    for num in (10, 2, 1):
        make_job(tmp_path, num, [f"seed={num}"], None, name=f"{num}_seed={num}")
    unnumbered = make_job(tmp_path, 0, ["seed=0"], None)
    (unnumbered / ".hydra" / "hydra.yaml").write_text("hydra: [")
    assert [job.num for job in collect_jobs(tmp_path)] == [1, 2, 10, None]


def test_higher_is_better_for_val_acc(mixed_sweep):
    jobs = sort_jobs(collect_jobs(mixed_sweep), Monitor.val_acc)
    assert [j.num for j in jobs][:3] == [2, 1, 0]


def test_a_completed_job_without_the_monitored_value_goes_after_those_with_one(tmp_path):
    make_job(tmp_path, 0, ["seed=0"], {"status": "completed"})
    make_job(tmp_path, 1, ["seed=1"], completed(0.9, 0.5))
    make_job(tmp_path, 2, ["seed=2"], "[1, 2]")  # JSON, but not an object
    make_job(tmp_path, 3, ["seed=3"], {"best_val_loss": 0.1})  # no status
    jobs = sort_jobs(collect_jobs(tmp_path), Monitor.val_loss)
    assert [(j.num, j.status) for j in jobs] == [
        (1, "completed"),
        (0, "completed"),
        (2, "unreadable metrics.json"),
        (3, "unknown"),
    ]


def test_files_hold_one_row_per_job_with_the_values_of_metrics_json(mixed_sweep):
    text = write_summary(mixed_sweep)
    rows = list(csv.DictReader((mixed_sweep / SUMMARY_CSV).open()))
    assert [r["job"] for r in rows] == ["1", "2", "0", "3", "4", "5", "6"]
    best = rows[0]
    expected = completed(0.50, 0.78)
    for key in ("best_epoch", "best_val_loss", "best_val_acc", "final_val_loss", "wall_s"):
        assert float(best[key]) == expected[key], key
    assert best["overrides"] == "updater.lr=0.01" and best["dir"] == "0001_updater.lr=0.01"
    assert rows[4]["status"] == "no metrics.json" and rows[4]["best_val_loss"] == ""
    assert rows[6]["dir"] == ""

    assert (mixed_sweep / SUMMARY_MD).read_text() == text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 7 and len({len(line) for line in table}) == 1  # lined up
    assert "sorted by best val_loss (lower is better)" in text
    assert "Best: job 1, best val_loss 0.5000 at epoch 3" in text
    assert "\n- overrides: updater.lr=0.01\n" in text


def test_jobs_that_monitored_different_metrics_are_pointed_out(tmp_path):
    make_job(tmp_path, 0, ["monitor=val_loss"], completed(0.5, 0.7))
    make_job(tmp_path, 1, ["monitor=val_acc"], completed(0.6, 0.8, monitor="val_acc"))
    text = write_summary(tmp_path)
    assert "(the jobs picked their best epochs by val_acc or val_loss)" in text


def test_a_sweep_with_no_completed_job_says_so(tmp_path):
    make_job(tmp_path, 0, ["seed=0"], {"status": "failed"})
    assert write_summary(tmp_path).endswith("No job completed.\n")


def test_an_empty_dir_has_no_summary_and_nothing_is_written(tmp_path):
    assert write_summary(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def summary_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logreg_exp.summary", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},  # whatever the locale says
    )  # fmt: skip


@pytest.mark.slow
def test_cli_rebuilds_the_summary_of_an_earlier_sweep(mixed_sweep):
    proc = summary_cli("sweep", cwd=mixed_sweep.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Sweep sweep: 7 jobs, 3 completed;")
    assert "\n- run dir: sweep/0001_updater.lr=0.01\n" in proc.stdout
    assert (mixed_sweep / SUMMARY_MD).read_text() in proc.stdout
    assert proc.stdout.endswith(
        "\nwrote sweep/summary.csv and summary.md\n"
        "sweep picture: best val_loss against updater.lr (log axis), 7 jobs; in sweep.png\n"
    )  # no job wrote TensorBoard events, so the picture is not in TensorBoard either
    assert (mixed_sweep / "sweep.png").read_bytes().startswith(b"\x89PNG")
    assert not list(mixed_sweep.glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_cli_monitor_option_changes_the_order(mixed_sweep):
    proc = summary_cli(str(mixed_sweep), "--monitor", "val_acc", cwd=mixed_sweep)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((mixed_sweep / SUMMARY_CSV).open()))
    assert [r["job"] for r in rows][:3] == ["2", "1", "0"]


@pytest.mark.slow
@pytest.mark.parametrize("make", ["empty", "missing"])
def test_cli_says_in_one_line_when_there_is_no_sweep(tmp_path, make):
    target = tmp_path / "sweep"
    if make == "empty":
        target.mkdir()
    proc = summary_cli(str(target), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: {target}: ")
    assert not any(tmp_path.glob("**/summary.*"))


def test_a_job_whose_hydra_files_are_cut_short_still_gets_a_row(tmp_path):
    make_job(tmp_path, 0, ["seed=0"], completed(0.5, 0.7))
    broken = make_job(tmp_path, 1, ["seed=1"], None)
    (broken / ".hydra" / "hydra.yaml").write_text("hydra:\n  job: [num")
    (broken / ".hydra" / "overrides.yaml").unlink()
    jobs = sort_jobs(collect_jobs(tmp_path), Monitor.val_loss)
    assert [(j.num, j.overrides, j.status) for j in jobs] == [
        (0, ["seed=0"], "completed"),
        (None, [], "no metrics.json"),
    ]
    rows = [line for line in write_summary(tmp_path).splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and rows[2].startswith("|     | no metrics.json |")  # header, 2 jobs


def test_a_search_adds_its_best_parameters_to_the_summary(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["batch_size=8", "updater.lr=0.01"], completed(0.5, 0.78, "val_acc"))
    make_job(sweep, 1, ["batch_size=16", "updater.lr=0.1"], completed(0.49, 0.79, "val_acc"))
    (sweep / "optimization_results.yaml").write_text(
        "name: optuna\nbest_params:\n  batch_size: 16\n  updater.lr: 0.1\nbest_value: 0.79\n"
    )
    text = write_summary(sweep)
    assert text.endswith(
        "Search (optuna, optimization_results.yaml): best value 0.7900\n"
        "- best parameters: batch_size=16 updater.lr=0.1\n"
    )
    assert (sweep / SUMMARY_MD).read_text() == text


@pytest.mark.parametrize("content", ["- not\n- a mapping\n", "name: optuna\nbest_params: 3\n", ":"])
def test_an_odd_search_file_leaves_the_summary_as_it_was(tmp_path, content):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["seed=0"], completed(0.5, 0.78))
    plain = write_summary(sweep)
    (sweep / "optimization_results.yaml").write_text(content)
    assert write_summary(sweep) == plain


def test_the_spread_over_completed_jobs_is_reported(mixed_sweep):
    text = write_summary(mixed_sweep)
    # completed: best_val_acc 0.70, 0.78, 0.79; best_val_loss 0.60, 0.50, 0.55
    assert "\nOver the 3 completed jobs:\n" in text
    assert "- best_val_acc: mean 0.7567, min 0.7000, max 0.7900\n" in text
    assert "- best_val_loss: mean 0.5500, min 0.5000, max 0.6000\n" in text


def test_no_spread_for_a_single_completed_job(tmp_path):
    make_job(tmp_path, 0, ["seed=0"], completed(0.5, 0.7))
    assert "completed jobs:" not in write_summary(tmp_path)


def test_a_job_dir_without_a_readable_metrics_json_fails_the_sweep(tmp_path, caplog):
    from logreg_exp.sweeps.callback import exit_on_unfinished_jobs

    make_job(tmp_path, 0, ["seed=0"], completed(0.5, 0.7))
    make_job(tmp_path, 1, ["seed=1"], {"status": "diverged"})
    exit_on_unfinished_jobs(collect_jobs(tmp_path))  # diverged ends as asked: no failure
    make_job(tmp_path, 4, ["seed=4"], {"status": "interrupted", "interrupted_by": "SIGTERM"})
    with pytest.raises(SystemExit) as stop:
        exit_on_unfinished_jobs(collect_jobs(tmp_path))
    assert stop.value.code == 130  # a cancelled job: as a shell reports Ctrl-C
    assert "1 of 3 jobs interrupted: 0004_seed=4" in caplog.text
    make_job(tmp_path, 2, ["seed=2"], None)  # killed before it could write its result
    make_job(tmp_path, 3, ["seed=3"], '{"status": "compl')
    with pytest.raises(SystemExit) as stop:
        exit_on_unfinished_jobs(collect_jobs(tmp_path))
    assert stop.value.code == 1
    assert "2 of 5 jobs failed: 0002_seed=2, 0003_seed=3" in caplog.text


def test_test_numbers_get_columns_and_spread_lines_beside_the_validation_ones(tmp_path):
    for seed, (val_acc, test_acc) in enumerate([(0.98, 0.95), (0.97, 0.96), (0.99, 0.94)]):
        metrics = {**completed(0.1 * (seed + 1), val_acc), "test_loss": 0.2, "test_acc": test_acc}
        make_job(tmp_path, seed, [f"seed={seed}"], metrics)
    text = write_summary(tmp_path)
    header = text.splitlines()[2]
    assert "| final val_acc | test loss | test acc | epochs |" in header
    assert "test population_acc" not in header  # no job has one
    assert "- best_val_acc: mean 0.9800, min 0.9700, max 0.9900\n" in text
    assert "- test_acc: mean 0.9500, min 0.9400, max 0.9600\n" in text
    assert "- test_loss: mean 0.2000, min 0.2000, max 0.2000\n" in text
    # job by job: 0.98 - 0.95, 0.97 - 0.96, 0.99 - 0.94
    assert "- best_val_acc - test_acc: mean +0.0300, min +0.0100, max +0.0500\n" in text
    with (tmp_path / SUMMARY_CSV).open() as f:
        row = next(csv.DictReader(f))
    assert (row["test_acc"], row["test_loss"], row["test_population_acc"]) == ("0.95", "0.2", "")


def test_the_population_accuracy_is_the_test_number_of_gaussian2d(tmp_path):
    make_job(tmp_path, 0, ["seed=0"], {**completed(0.5, 0.79), "test_population_acc": 0.785})
    make_job(tmp_path, 1, ["seed=1"], {**completed(0.5, 0.78), "test_population_acc": 0.775})
    text = write_summary(tmp_path)
    assert "| test population_acc |" in text and "test acc" not in text
    assert "- test_population_acc: mean 0.7800, min 0.7750, max 0.7850\n" in text
    assert "- best_val_acc - test_population_acc: mean +0.0050, min +0.0050" in text


# Damaged sweep dirs through the real command: each damaged file said in one line, the rest
# summarized (a sweep of many jobs keeps its summary when one file is damaged, as it does
# for a metrics.json cut short).


def damage_metrics(job: Path, key: str, value: object) -> None:
    metrics = json.loads((job / "metrics.json").read_text())
    (job / "metrics.json").write_text(json.dumps({**metrics, key: value}))


def damage_hydra(job: Path, text: str, by: str) -> None:
    path = job / ".hydra" / "hydra.yaml"
    path.write_text(path.read_text().replace(text, by))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "file", "warning"),
    [
        (lambda job: damage_metrics(job, "monitor", ["val_loss"]), "metrics.json",
         "metrics.json: monitor is ['val_loss'], not a metric's name (val_loss, val_acc, "
         "val_log_loss, ...)"),
        (lambda job: damage_metrics(job, "monitor", {"a": 1}), "metrics.json",
         "metrics.json: monitor is {'a': 1}, not a metric's name (val_loss, val_acc, "
         "val_log_loss, ...)"),
        (lambda job: damage_hydra(job, "num: 0", "num: [0]"), ".hydra/hydra.yaml",
         ".hydra/hydra.yaml: hydra.job.num is [0], not a job number"),
        (lambda job: (job / ".hydra" / "overrides.yaml").write_text("5\n"),
         ".hydra/overrides.yaml", ".hydra/overrides.yaml holds 5, not a list of overrides"),
        (lambda job: damage_hydra(job, "task:\n      - seed=0", "task: 7"), ".hydra/hydra.yaml",
         ".hydra/hydra.yaml: hydra.overrides.task is 7, not a list"),
    ],
)  # fmt: skip
def test_cli_summarizes_a_sweep_with_a_wrong_typed_file_and_names_it(
    tmp_path, damage, file, warning
):
    sweep = tmp_path / "sweep"
    damaged = make_job(sweep, 0, ["seed=0"], completed(0.5, 0.7))
    make_job(sweep, 1, ["seed=1"], completed(0.4, 0.8))
    if file == ".hydra/hydra.yaml" and "task" in warning:
        (damaged / ".hydra" / "overrides.yaml").unlink()  # read from hydra.yaml then
    damage(damaged)
    proc = summary_cli("sweep", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == f"warning: sweep/0000_seed=0/{warning}; the job's row goes without it\n"
    assert "Traceback" not in proc.stdout and "Best: job 1, best val_loss 0.4000" in proc.stdout
    rows = list(csv.DictReader((sweep / SUMMARY_CSV).open()))
    assert [row["status"] for row in rows] == ["completed", "completed"]


@pytest.mark.slow
def test_cli_prints_dir_names_that_are_not_utf8(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["seed=0"], completed(0.5, 0.7), name="0_seed=0")
    try:
        os.rename(bytes(sweep / "0_seed=0"), bytes(sweep / "0_seed=0") + b"\xe9")
        os.rename(bytes(sweep), bytes(sweep) + b"\xff")
    except OSError as err:  # a file system that takes only UTF-8 names
        pytest.skip(f"cannot make a name that is not UTF-8 here: {err}")
    proc = summary_cli(os.fsdecode(bytes(sweep) + b"\xff"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "- run dir: sweep\\udcff/0_seed=0\\udce9\n" in proc.stdout and proc.stderr == ""
    written = (Path(os.fsdecode(bytes(sweep) + b"\xff")) / SUMMARY_CSV).read_bytes()
    assert written.decode().endswith(",0_seed=0\\udce9\n")


@pytest.mark.slow
def test_cli_refuses_a_single_runs_dir_and_writes_nothing(tmp_path):
    run = make_job(tmp_path, 0, [], completed(0.5, 0.7), name="run")
    (run / ".hydra" / "hydra.yaml").write_text("hydra:\n  job:\n    name: logreg_exp\n")
    before = sorted(tmp_path.rglob("*"))
    proc = summary_cli("run", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (
        "error: run is a run's dir, not a sweep's: summary reads a sweep dir "
        "(hydra.sweep.dir); for one run, python -m logreg_exp.evaluate run\n"
    )
    assert sorted(tmp_path.rglob("*")) == before
