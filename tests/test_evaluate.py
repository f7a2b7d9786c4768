"""``python -m logreg_exp.evaluate``, in-process: a finished run's best model on its rebuilt
splits gives back the numbers of its metrics.json, and more."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from logreg_exp.errors import ConfigError
from logreg_exp.evaluate import evaluate_run, main
from logreg_exp.saved_run import open_run
from tests.helpers import assert_one_line_error, finished_run, read_metrics_json, run_cli


def test_the_rebuilt_splits_give_back_the_runs_own_numbers(csv_run):
    run = open_run(csv_run[0])
    evaluation = evaluate_run(run)
    splits = evaluation["splits"]
    assert list(splits) == ["train", "val", "test"]
    assert [splits[name]["samples"] for name in splits] == [60, 36, 24]
    metrics = run.metrics
    assert splits["val"]["loss"] == pytest.approx(metrics["best_val_loss"], rel=1e-6)
    assert splits["val"]["acc"] == metrics["best_val_acc"]
    assert splits["test"]["loss"] == pytest.approx(metrics["test_loss"], rel=1e-6)
    assert splits["test"]["acc"] == metrics["test_acc"]
    for split in splits.values():
        matrix = np.array(split["confusion_matrix"])
        assert matrix.sum() == split["samples"]
        assert np.trace(matrix) / split["samples"] == pytest.approx(split["acc"])
        assert 0.5 < split["roc_auc"] <= 1
    assert evaluation["classes"] == ["neg", "pos"]
    assert evaluation["checkpoint"]["epoch"] == metrics["best_epoch"]


def test_the_command_prints_a_table_and_writes_evaluation_json(csv_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main([str(csv_run[0]), "--split", "test", "val", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    written = json.loads(out.read_text())
    assert list(written["splits"]) == ["test", "val"]
    test = written["splits"]["test"]
    row = ["test", "24", f"{test['loss']:.4f}", f"{test['acc']:.4f}", f"{test['roc_auc']:.4f}"]
    assert printed.splitlines()[2].split() == ["split", "samples", "loss", "acc", "roc_auc"]
    assert printed.splitlines()[3].split() == row
    assert "confusion matrix, test (rows: true class, columns: predicted class)" in printed
    (tn, fp), (fn, tp) = test["confusion_matrix"]
    assert f"\n     neg  pos\nneg  {tn:>3}  {fp:>3}\npos  {fn:>3}  {tp:>3}\n" in printed
    assert printed.endswith(f"wrote {out}\n")


def test_data_that_changed_since_the_run_are_not_evaluated(csv_run, tmp_path):
    run_dir, data = csv_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    lines = data.read_text().splitlines()
    (tmp_path / "data.csv").write_text("\n".join(lines[:-1]) + "\n")  # one row fewer
    OmegaConf.save({"hydra": {"runtime": {"cwd": str(tmp_path)}}}, copy / ".hydra" / "hydra.yaml")
    with pytest.raises(ConfigError, match=r"are not the ones it trained on: the training split"):
        evaluate_run(open_run(copy))


def test_gaussian2d_has_its_population_accuracy_and_no_test_split(tmp_path, capsys):
    run_dir = finished_run(
        tmp_path / "run", "dataset.n_samples=200", "dataset.n_features=3", "epochs=1",
        "tensorboard=false",
    )  # fmt: skip
    run = open_run(run_dir)
    evaluation = evaluate_run(run)
    assert list(evaluation["splits"]) == ["train", "val"]
    assert evaluation["population_acc"] == run.metrics["test_population_acc"]
    assert main([str(run_dir), "--split", "test"]) == 1
    assert capsys.readouterr().err == (
        f"error: {run_dir} has no test split (dataset.test_fraction=0); choose from train, val\n"
    )


def evaluate_cli(*args, cwd):
    return run_cli(*map(str, args), cwd=cwd, module="logreg_exp.evaluate")


@pytest.mark.slow
def test_evaluate_a_real_run_from_anywhere(cli_csv_run, tmp_path):
    run_dir, _ = cli_csv_run
    proc = evaluate_cli(run_dir, "--out", tmp_path / "eval.json", cwd=tmp_path)  # not launch dir
    assert proc.returncode == 0, proc.stderr
    metrics = read_metrics_json(run_dir)
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    splits = evaluation["splits"]
    assert [splits[name]["samples"] for name in ("train", "val", "test")] == [100, 60, 40]
    assert splits["val"]["acc"] == metrics["best_val_acc"]
    assert splits["test"]["acc"] == metrics["test_acc"]
    assert splits["test"]["loss"] == pytest.approx(metrics["test_loss"], rel=1e-6)
    lines = proc.stdout.splitlines()
    assert (
        lines[0]
        == f"{run_dir}: best.pt of epoch {metrics['best_epoch']} (by val_loss), dataset=csv"
    )
    assert lines[5].split() == [
        "test", "40", f"{metrics['test_loss']:.4f}", f"{metrics['test_acc']:.4f}",
        f"{splits['test']['roc_auc']:.4f}",
    ]  # fmt: skip


@pytest.mark.slow
def test_evaluate_bad_input_is_one_line_and_exit_1(cli_csv_run, tmp_path):
    run_dir, _ = cli_csv_run
    assert_one_line_error(evaluate_cli(tmp_path / "nope", cwd=tmp_path), "nope: no such directory")
    assert_one_line_error(evaluate_cli(tmp_path, cwd=tmp_path), "is not a run dir of logreg_exp")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dir, unfinished)
    (unfinished / "metrics.json").unlink()
    assert_one_line_error(evaluate_cli(unfinished, cwd=tmp_path), "has not finished")
    # a checkpoint of another run, whose model has 2 features, not 3
    other = run_cli("dataset.n_samples=200", "epochs=1", "hydra.run.dir=other", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    mixed = tmp_path / "mixed"
    shutil.copytree(run_dir, mixed)
    shutil.copy(tmp_path / "other" / "best.pt", mixed / "best.pt")
    assert_one_line_error(
        evaluate_cli(mixed, cwd=tmp_path),
        "best.pt holds a model of 2 features, but its run's data have 3: is it the checkpoint "
        "of another run?",
    )
    assert_one_line_error(
        evaluate_cli(tmp_path / "other", "--split", "test", cwd=tmp_path), "has no test split"
    )


def test_the_numbers_are_printed_even_where_they_cannot_be_written(csv_run, tmp_path, capsys):
    (tmp_path / "taken").mkdir()  # a directory where the file should go
    assert main([str(csv_run[0]), "--split", "val", "--out", str(tmp_path / "taken")]) == 1
    printed = capsys.readouterr()
    assert printed.out.splitlines()[3].startswith("val ")
    assert (
        printed.err.startswith("error: [Errno 21] Is a directory") and printed.err.count("\n") == 1
    )


def half_precision(path):
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["state_dict"] = {k: v.half() for k, v in checkpoint["state_dict"].items()}
    torch.save(checkpoint, path)


def plain_pickle(path):
    """A best.pt written with pickle, not torch.save: torch warns of its protocol, then
    refuses it with weights_only=True."""
    checkpoint = torch.load(path, weights_only=True)
    with open(path, "wb") as f:
        pickle.dump(checkpoint, f)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (half_precision, "best.pt holds float16 parameters, but the run trained in float32 "
         "(dtype in .hydra/config.yaml): is it the checkpoint of another run?"),
        (plain_pickle, "best.pt holds objects other than tensors and plain values"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_best_pt_of_another_dtype_or_a_pickle_is_one_line(
    cli_csv_run, tmp_path, damage, message, command
):
    run_dir, data = cli_csv_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    damage(copy / "best.pt")
    args = [copy] if command == "evaluate" else [copy, data]
    proc = run_cli(*map(str, args), cwd=tmp_path, module=f"logreg_exp.{command}")
    assert_one_line_error(proc, message)  # one line: no warning of torch's before it
    assert proc.stdout == ""


@pytest.mark.slow
def test_evaluate_prints_a_run_dir_name_that_is_not_utf8(cli_csv_run, tmp_path):
    copy = os.fsdecode(bytes(tmp_path / "run") + b"\xe9")
    try:
        shutil.copytree(cli_csv_run[0], copy)
    except OSError as err:  # a file system that takes only UTF-8 names
        pytest.skip(f"cannot make a name that is not UTF-8 here: {err}")
    proc = subprocess.run(
        [sys.executable, "-m", "logreg_exp.evaluate", copy],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},  # whatever the locale says
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("run\\udce9: best.pt of epoch ")
    assert proc.stdout.endswith("\nwrote run\\udce9/evaluation.json\n")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("outdir", "error: [Errno 21] Is a directory: 'outdir'"),
        ("/proc/self/e.json", "error: cannot write /proc/self/e.json: No such file or directory"),
    ],
)
def test_evaluate_errors_name_the_users_out_not_a_temporary_file(
    cli_csv_run, tmp_path, out, message
):
    (tmp_path / "outdir").mkdir()
    proc = evaluate_cli(cli_csv_run[0], "--out", out, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr == message + "\n"
    assert proc.stdout.startswith(f"{cli_csv_run[0]}: best.pt of epoch ")  # the numbers first
    assert list((tmp_path / "outdir").iterdir()) == []


def run_files(run_dir):
    return {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_evaluate_draws_each_splits_pictures_beside_its_json_and_no_run_file_changes(
    cli_csv_run, tmp_path
):
    run_dir = tmp_path / "run"
    shutil.copytree(cli_csv_run[0], run_dir)
    before = run_files(run_dir)
    proc = evaluate_cli(run_dir, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\nwrote 6 pictures: run/evaluation_*_*.png\n" in proc.stdout  # from tmp_path
    after = run_files(run_dir)
    assert {path: after[path] for path in before} == before  # the run's own files as they were
    new = sorted(str(path) for path in set(after) - set(before))
    assert new == sorted(
        ["evaluation.json"]
        + [f"evaluation_{what}_{split}.png" for what in ("confusion_matrix", "reliability")
           for split in ("train", "val", "test")]
    )  # fmt: skip
    assert all(after[Path(name)].startswith(b"\x89PNG") for name in new if name.endswith(".png"))
    # --out elsewhere: the pictures follow it; --no-pictures: none
    proc = evaluate_cli(run_dir, "--split", "val", "--out", tmp_path / "e.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.glob("e_*.png")) == [
        "e_confusion_matrix_val.png", "e_reliability_val.png"
    ]  # fmt: skip
    proc = evaluate_cli(run_dir, "--out", tmp_path / "f.json", "--no-pictures", cwd=tmp_path)
    assert proc.returncode == 0 and "pictures" not in proc.stdout
    assert not list(tmp_path.glob("f_*"))


@pytest.mark.slow
def test_evaluate_without_matplotlib_says_so_in_one_line_and_prints_the_tables(
    cli_csv_run, tmp_path
):
    run = (  # as python -m logreg_exp.evaluate, with matplotlib not installed
        "import runpy, sys; sys.modules['matplotlib'] = None; sys.argv[1:] = sys.argv[2:]; "
        "runpy.run_module('logreg_exp.evaluate', run_name='__main__')"
    )
    out = tmp_path / "e.json"
    proc = subprocess.run(
        [sys.executable, "-c", run, "evaluate", str(cli_csv_run[0]), "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "confusion matrix, test" in proc.stdout and "reliability, test" in proc.stdout
    skipped = "pictures skipped: matplotlib is not installed (pip install 'logreg-exp[plots]')"
    assert proc.stdout.count(skipped) == 1 and out.exists()
    assert not list(tmp_path.glob("*.png"))
