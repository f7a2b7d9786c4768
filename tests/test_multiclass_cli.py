"""K classes through the real CLI: runs on 3 and 10 classes, a CSV with string labels, the
vectorized launcher equal to the basic one job by job, resume, evaluate and predict, early
stopping and class weights, and the bad input of each as one line with nothing written."""

from __future__ import annotations

import csv
import json
import re
import signal
from pathlib import Path

import pytest
import torch

from tests.helpers import (
    REPO,
    assert_one_line_error,
    event_records,
    read_metrics_json,
    run_cli,
    scalars,
)
from tests.sweeps.test_vectorized import assert_same_jobs, sweep
from tests.test_resume import assert_same_run, signal_on_line, start_cli

pytestmark = pytest.mark.slow


def write_three_classes(path, n: int = 150):
    """Rows of 2 features and a label 'ant', 'bee' or 'cat', one class around each of three
    points."""
    gen = torch.Generator().manual_seed(3)
    y = torch.arange(n) % 3
    x = torch.randn(n, 2, generator=gen) + 3 * torch.stack([y == 1, y == 2], 1)
    names = ["ant", "bee", "cat"]
    lines = ["f1,f2,kind"] + [
        f"{a:.4f},{b:.4f},{names[k]}" for (a, b), k in zip(x.tolist(), y, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("iris")
    proc = run_cli("experiment=iris", "hydra.run.dir=run", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return cwd, proc


def test_iris_trains_a_multinomial_model_and_evaluates_it(iris_run):
    cwd, _ = iris_run
    metrics = read_metrics_json(cwd / "run")
    assert metrics["status"] == "completed" and metrics["test_acc"] > 0.85
    best = torch.load(cwd / "run" / "best.pt", weights_only=True)["state_dict"]
    assert best["w"].shape == (4, 3) and best["bias"].shape == (3,)
    prep = json.loads((cwd / "run" / "preprocessing.json").read_text())
    assert prep["classes"] == ["setosa", "versicolor", "virginica"]
    evaluation = run_cli("run", "--split", "test", cwd=cwd, module="logreg_exp.evaluate")
    assert evaluation.returncode == 0, evaluation.stderr
    assert re.search(r"\n\s+setosa\s+versicolor\s+virginica\n", evaluation.stdout)
    saved = json.loads((cwd / "run" / "evaluation.json").read_text())["splits"]["test"]
    assert saved["acc"] == pytest.approx(metrics["test_acc"]) and saved["samples"] == 30
    matrix = saved["confusion_matrix"]
    assert len(matrix) == 3 and [sum(row) for row in matrix] == [10, 10, 10]
    assert 0.9 < saved["roc_auc"] <= 1.0


def test_val_metrics_log_each_metric_per_epoch_and_the_test_splits_pictures(tmp_path):
    proc = run_cli("experiment=wine", "epochs=4", "val_metrics=true", "hydra.run.dir=run",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    metrics = read_metrics_json(tmp_path / "run")
    tags = scalars(tmp_path / "run")
    for name in ("balanced_acc", "f1_macro", "f1_weighted", "roc_auc", "pr_auc", "brier"):
        assert [step for step, _ in tags[f"val/{name}"]] == [1, 2, 3, 4], name
        assert 0 <= metrics[f"test_{name}"] <= 1, name
    images = {tag: (step, png) for tag, step, png in event_records(tmp_path / "run")
              if tag in ("confusion_matrix", "reliability")}  # fmt: skip
    assert images.keys() == {"confusion_matrix", "reliability"}
    for step, png in images.values():
        assert step == metrics["best_epoch"] and b"\x89PNG" in png  # an image plugin tensor


def test_predict_writes_each_class_probability_and_the_class_name(iris_run):
    cwd, _ = iris_run
    rows = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
    rows += "5.1,3.5,1.4,0.2\n6.5,3.0,5.5,2.0\n"
    (cwd / "new.csv").write_text(rows)
    proc = run_cli("run", "new.csv", cwd=cwd, module="logreg_exp.predict")
    assert proc.returncode == 0, proc.stderr
    table = list(csv.DictReader(proc.stdout.splitlines()))
    assert list(table[0])[-4:] == ["p_setosa", "p_versicolor", "p_virginica", "predicted"]
    assert [row["predicted"] for row in table] == ["setosa", "virginica"]
    for row in table:
        total = sum(float(row[f"p_{c}"]) for c in ("setosa", "versicolor", "virginica"))
        assert total == pytest.approx(1.0, abs=1e-6)
    header = rows.splitlines()[0]
    (cwd / "clash.csv").write_text(f"{header},p_virginica\n5.1,3.5,1.4,0.2,1\n")
    clash = run_cli("run", "clash.csv", cwd=cwd, module="logreg_exp.predict")
    assert_one_line_error(clash, "clash.csv has a column 'p_virginica' already")


def readme_seed_0_test_acc(preset: str) -> str:
    """The seed 0 test accuracy the README's table of the multiclass presets gives."""
    text = (REPO / "README.md").read_text()
    row = re.search(rf"\| `python -m logreg_exp experiment={preset}` \| \d+ \| ([\d.]+) \|", text)
    assert row, f"README.md has no row for experiment={preset}"
    return row.group(1)


@pytest.mark.parametrize("preset", ["wine", "digits"])
def test_the_preset_reproduces_the_readmes_test_accuracy(tmp_path, preset):
    proc = run_cli(f"experiment={preset}", "tensorboard=false", "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    test_acc = read_metrics_json(tmp_path / "run")["test_acc"]
    assert f"{test_acc:.4f}" == readme_seed_0_test_acc(preset)


def test_iris_reproduces_the_readmes_test_accuracy(iris_run):
    test_acc = read_metrics_json(iris_run[0] / "run")["test_acc"]
    assert f"{test_acc:.4f}" == readme_seed_0_test_acc("iris")


def test_digits_trains_ten_classes(tmp_path):
    proc = run_cli("experiment=digits", "epochs=2", "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = read_metrics_json(tmp_path / "run")
    assert metrics["status"] == "completed" and metrics["test_acc"] > 0.6  # chance: 0.1
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["state_dict"]
    assert best["w"].shape == (64, 10)


def test_a_csv_with_three_named_classes(tmp_path):
    write_three_classes(tmp_path / "data.csv")
    proc = run_cli(
        "experiment=csv", "dataset.path=data.csv", "dataset.target=kind", "epochs=4",
        "class_weight={cat: 2.0}", "hydra.run.dir=run", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "labels 'ant' -> 0, 'bee' -> 1, 'cat' -> 2" in proc.stdout
    prep = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert prep["classes"] == ["ant", "bee", "cat"]
    metrics = read_metrics_json(tmp_path / "run")
    assert metrics["test_acc"] > 0.8
    # evaluate weighs the loss as training did: its validation loss is metrics.json's
    evaluation = run_cli("run", "--split", "val", cwd=tmp_path, module="logreg_exp.evaluate")
    assert evaluation.returncode == 0, evaluation.stderr
    val = json.loads((tmp_path / "run" / "evaluation.json").read_text())["splits"]["val"]
    assert val["loss"] == pytest.approx(metrics["best_val_loss"], rel=1e-6)
    assert val["acc"] == metrics["best_val_acc"]


@pytest.mark.hydra_lines
@pytest.mark.parametrize(
    "extra",
    [["updater=optim"], ["updater=manual", "class_weight=balanced"]],
    ids=["optim", "manual"],
)
def test_each_k_class_job_is_what_the_basic_launcher_makes_of_it(tmp_path, extra):
    args = [
        "dataset=gaussian_classes", "dataset.n_samples=301", "epochs=3", "dtype=float64",
        *extra, "updater.lr=0.05,0.5", "updater.momentum=0,0.9",
    ]  # fmt: skip
    basic_dir = same_under_both_launchers(tmp_path, args, 1e-9, "group 1: 4 jobs")
    assert read_metrics_json(next(basic_dir.glob("0000_*")))["best_val_population_acc"] > 0.6


def test_a_ten_class_seed_and_lr_sweep_in_float32_is_the_basic_launchers_job_by_job(tmp_path):
    # digits in float32, as the preset ships it but for 3 epochs of 150: over 150 epochs the
    # launchers' float32 roundings (a stacked matmul sums in another order) grow to some 3e-3
    # in a metric, as they move the run from its float64 self by 6%; in float64 they agree
    # to 1e-9 (docs/sweeps-and-launchers.md)
    args = ["experiment=digits", "epochs=3", "seed=0,1", "updater.lr=0.05,0.1"]
    same_under_both_launchers(tmp_path, args, 1e-4, "group 1: 4 jobs")


def same_under_both_launchers(tmp_path, args, rel: float, grouped: str = "") -> Path:
    """The sweep ``args`` under the basic and the vectorized launcher, equal job by job
    within ``rel`` (the vectorized log says ``grouped``): the basic sweep's dir."""
    basic, basic_dir = sweep(tmp_path, "basic", *args)
    assert basic.returncode == 0, basic.stderr
    vectorized, vectorized_dir = sweep(tmp_path, "vectorized", *args, launcher="vectorized")
    assert vectorized.returncode == 0, vectorized.stderr
    assert grouped in vectorized.stdout + vectorized.stderr
    assert_same_jobs(basic_dir, vectorized_dir, rel, picture=False)
    return basic_dir


def test_every_penalty_by_both_updaters_on_three_classes_under_both_launchers(tmp_path):
    args = ["experiment=iris", "epochs=3", "dtype=float64", "alpha=0.3",
            "penalty=none,l2,l1,elasticnet", "updater=optim,manual"]  # fmt: skip
    basic_dir = same_under_both_launchers(tmp_path, args, 1e-9)
    jobs = {}
    for job in basic_dir.glob("000*"):
        penalty, updater = re.search(r"penalty=(\w+),updater=(\w+)", job.name).groups()
        jobs[penalty, updater] = job
    weights = {}
    for penalty in ("none", "l2", "l1", "elasticnet"):
        optim, manual = (jobs[penalty, u] for u in ("optim", "manual"))
        a, b = read_metrics_json(optim), read_metrics_json(manual)
        for key in ("best_val_loss", "test_loss", "test_f1_macro", "best_epoch"):
            assert a[key] == b[key], (penalty, key)  # the hand-written step, bit for bit
        weights[penalty] = torch.load(optim / "best.pt", weights_only=True)["state_dict"]["w"]
    for penalty in ("l2", "l1", "elasticnet"):  # each shrinks (3 epochs zero no weight yet)
        assert weights[penalty].abs().sum() < weights["none"].abs().sum() - 1, penalty


def test_a_k_class_run_stopped_by_sigterm_resumes_bit_for_bit(tmp_path):
    args = ("experiment=wine", "epochs=6", "updater.momentum=0.9", "batch_size=2")
    whole = run_cli(*args, "hydra.run.dir=whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    out = signal_on_line(
        start_cli(*args, "hydra.run.dir=run", cwd=tmp_path), r"epoch 2/6", signal.SIGTERM
    )
    # the signal lands in epoch 3, or later where the machine is busy (the run reaches its
    # next epochs before this process has read the line)
    done = read_metrics_json(tmp_path / "run")["epochs_run"]
    assert "Traceback" not in out and 2 <= done < 6, out
    resumed = run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {done + 1}/6" in resumed.stdout and "epoch 1/6" not in resumed.stdout
    assert_same_run(tmp_path / "run", tmp_path / "whole")


def test_early_stopping_is_recorded_in_metrics_and_the_summary(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path, "sweep", "dataset.n_samples=400", "epochs=12", "patience=1",
        "min_delta=0.5", "updater.lr=0.01,0.02", launcher="vectorized",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "patience (early stopping) ends each job at an epoch of its own" in out
    for job in sorted(sweep_dir.glob("000*")):
        metrics = read_metrics_json(job)
        assert metrics["status"] == "completed" and metrics["stopped_early_epoch"] == 2
        assert metrics["epochs_run"] == 2
        assert "stopped early after epoch 2" in (job / "logreg_exp.log").read_text()
    summary = (sweep_dir / "summary.md").read_text()
    assert "stopped early" in summary
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    assert [r["stopped_early_epoch"] for r in rows] == ["2", "2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["patience=20"], "error: patience must be an integer from 1 to epochs (12), or null"),
        (
            ["dataset=iris", "class_weight={daisy: 2}"],
            "error: class_weight: 'daisy' is not a class of the data; its classes: setosa,",
        ),
        (
            ["experiment=csv", "dataset.path=one.csv", "dataset.target=kind"],
            "error: dataset.target='kind' in one.csv has 1 distinct value ('ant'); it must "
            "have two classes or more",
        ),
        (
            ["experiment=csv", "dataset.path=rare.csv", "dataset.target=kind"],
            "error: rare.csv: the validation split has no sample of class 'cat' after "
            "stratification (1 in all, at dataset.val_fraction=0.3)",
        ),
    ],
)
def test_bad_k_class_input_is_one_line_with_nothing_written(tmp_path, args, message):
    (tmp_path / "one.csv").write_text("f1,kind\n1,ant\n2,ant\n3,ant\n4,ant\n")
    rows = "".join(f"{i},{'ant' if i % 2 else 'bee'}\n" for i in range(40))
    (tmp_path / "rare.csv").write_text(f"f1,kind\n{rows}99,cat\n")
    proc = run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not list((tmp_path / "run").glob("*.pt")) if (tmp_path / "run").exists() else True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["experiment=csv", "dataset.path=one.csv", "dataset.target=kind"],
         "dataset.target='kind' in one.csv has 1 distinct value ('ant'); it must have two"),
        (["experiment=csv", "dataset.path=rare.csv", "dataset.target=kind",
          "dataset.val_fraction=0.5", "dataset.test_fraction=0.4"],
         "rare.csv: the training split has no sample of class 'cat' after stratification (2 in "
         "all, at dataset.val_fraction=0.5, dataset.test_fraction=0.4)"),
        (["experiment=iris", "class_weight={daisy: 2}"],
         "class_weight: 'daisy' is not a class of the data; its classes: setosa, versicolor,"),
        (["experiment=iris", "updater=lbfgs", "updater.momentum=0", "scheduler=none",
          "penalty=l1"],
         "penalty=l1 is not allowed with updater=lbfgs: its L1"),
        (["experiment=iris", "alpha=-0.5"], "alpha must be a number >= 0"),
        (["experiment=iris", "epochs=5", "patience=6"],
         "patience must be an integer from 1 to epochs (5), or null"),
    ],
    ids=["one-class", "class-missing-from-train", "class-weight", "l1-lbfgs", "alpha", "patience"],
)  # fmt: skip
def test_each_bad_input_of_the_issue_is_one_line_and_leaves_no_run_dir(tmp_path, args, message):
    (tmp_path / "one.csv").write_text("f1,kind\n1,ant\n2,ant\n3,ant\n4,ant\n")
    rows = "".join(f"{i},{'ant' if i % 2 else 'bee'}\n" for i in range(40))
    (tmp_path / "rare.csv").write_text(f"f1,kind\n{rows}98,cat\n99,cat\n")
    proc = run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)  # three classes but one.csv
    assert_one_line_error(proc, message)
    assert not (tmp_path / "run").exists()
