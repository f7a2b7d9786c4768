"""Penalties, ``updater=lbfgs``, the metrics that decide and the tuned threshold through the
real CLI: each penalty by both updaters, a vectorized sweep of penalties equal job by job to
the basic launcher's, lbfgs alone, every metric in metrics.json and evaluate, a monitor that
names one, a tuned threshold that predict applies, and bad values in one line."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import torch

from tests.helpers import read_metrics_json, run_cli, scalars
from tests.sweeps.test_vectorized import assert_same_jobs, sweep

pytestmark = pytest.mark.slow

BREAST = ("experiment=breast_cancer", "epochs=4")
LBFGS = ("updater=lbfgs", "updater.momentum=0", "scheduler=none")  # on the preset's SGD
METRICS = ("log_loss", "balanced_acc", "precision", "recall", "f1", "f1_macro", "f1_weighted",
           "roc_auc", "pr_auc", "brier")  # fmt: skip


@pytest.mark.hydra_lines
@pytest.mark.parametrize("updater", ["optim", "manual"])
def test_an_l1_run_zeroes_weights_and_says_its_penalty(tmp_path, updater):
    proc = run_cli("experiment=breast_cancer", f"updater={updater}", "penalty=l1", "alpha=0.05",
                   "hydra.run.dir=run", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"updater {updater} (lr 0.1), penalty l1 (alpha 0.05)" in proc.stdout
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    w = best["state_dict"]["w"]
    assert 0 < int((w == 0).sum()) < w.numel()


def test_both_updaters_give_the_same_penalized_run(tmp_path):
    for updater in ("optim", "manual"):
        proc = run_cli(*BREAST, f"updater={updater}", "penalty=elasticnet", "alpha=0.01",
                       f"hydra.run.dir={updater}", cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    a, b = (read_metrics_json(tmp_path / d) for d in ("optim", "manual"))
    for key in ("best_val_loss", "final_val_loss", "test_loss", "test_f1", "best_epoch"):
        assert a[key] == b[key], key


@pytest.mark.hydra_lines
def test_a_vectorized_sweep_of_penalties_is_the_basic_launchers(tmp_path):
    args = ("epochs=3", "dataset.n_samples=400", "dtype=float64",
            "updater.lr=0.2", "penalty=none,l2,l1,elasticnet", "alpha=0.02")  # fmt: skip
    basic, basic_dir = sweep(tmp_path, "basic", *args)
    assert basic.returncode == 0, basic.stderr
    vectorized, vectorized_dir = sweep(tmp_path, "vectorized", *args, launcher="vectorized")
    assert vectorized.returncode == 0, vectorized.stderr
    assert re.search(r"group 1: 4 jobs .* differing in penalty", vectorized.stdout)
    assert_same_jobs(basic_dir, vectorized_dir, 1e-9)


@pytest.mark.hydra_lines
def test_lbfgs_trains_full_batch_and_reports_every_metric(tmp_path):
    proc = run_cli(*BREAST, *LBFGS, "val_metrics=true", "monitor=val_f1", "hydra.run.dir=run",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "updater lbfgs (lr 0.1), penalty l2 (alpha 0.0035)" in proc.stdout
    assert re.search(r"best epoch \d by val_f1", proc.stdout)
    metrics = read_metrics_json(tmp_path / "run")
    assert metrics["monitor"] == "val_f1" and metrics["threshold"] == 0.5
    for name in METRICS:
        assert 0 <= metrics[f"test_{name}"] <= 1 and 0 <= metrics[f"best_val_{name}"] <= 1
    assert len(metrics["test_confusion_matrix"]) == 2
    assert sum(map(sum, metrics["test_confusion_matrix"])) == 113
    assert metrics["test_per_class"]["support"] == [42, 71]
    tags = scalars(tmp_path / "run")
    assert {"val/f1", "val/roc_auc", "val/brier"} <= set(tags)
    images = (tmp_path / "run").glob("events.out.tfevents.*")
    assert any(b"confusion_matrix" in p.read_bytes() and b"reliability" in p.read_bytes()
               for p in images)  # fmt: skip


def test_a_tuned_threshold_is_saved_and_used_by_evaluate_and_predict(tmp_path):
    proc = run_cli(*BREAST, "threshold=tuned", "threshold_metric=balanced_acc",
                   "hydra.run.dir=run", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    threshold = read_metrics_json(run)["threshold"]
    assert 0 < threshold < 1 and threshold != 0.5
    evaluated = run_cli(str(run), cwd=tmp_path, module="logreg_exp.evaluate")
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"threshold {threshold:.4f} on p(benign) (threshold=tuned)" in evaluated.stdout
    assert "per class, test" in evaluated.stdout and "reliability, test" in evaluated.stdout
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["threshold"] == threshold
    assert evaluation["splits"]["test"]["acc"] == read_metrics_json(run)["test_acc"]
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(data.feature_names)
    writer.writerows(data.data[:40].tolist())
    (tmp_path / "new.csv").write_text(rows.getvalue())
    predicted = run_cli(str(run), "new.csv", cwd=tmp_path, module="logreg_exp.predict")
    assert predicted.returncode == 0, predicted.stderr
    out = list(csv.DictReader(io.StringIO(predicted.stdout)))
    for row in out:
        above = float(row["p_benign"]) > threshold
        assert row["predicted"] == ("benign" if above else "malignant")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["penalty=ridge"], "penalty must be none, l2, l1 or elasticnet, got 'ridge'"),
        (["alpha=-0.1"], "alpha must be a number >= 0"),
        (["updater=lbfgs", "penalty=l1"], "penalty=l1 is not allowed with updater=lbfgs: its L1"),
        (["threshold=1.5"], "threshold must be a number in (0, 1) or tuned, got '1.5'"),
        (["threshold_metric=auc"], "threshold_metric must be f1, acc or balanced_acc"),
        (["updater=lbfgs", "updater.momentum=0.9"], "updater.momentum must be 0 for updater=lbfgs"),
    ],
)
def test_a_bad_value_is_one_line_and_writes_nothing(tmp_path, overrides, message):
    proc = run_cli("dataset.n_samples=200", *overrides, "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert re.fullmatch(rf"error: {re.escape(message)}[^\n]*\n", proc.stderr), proc.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
