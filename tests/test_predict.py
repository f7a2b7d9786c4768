"""``python -m logreg_exp.predict``, in-process: new rows through the run's own
standardization and model, columns found by name, class names as in the training CSV."""

from __future__ import annotations

import csv
import io
import re
import shutil

import numpy as np
import pytest
import torch

from logreg_exp.data.csv_file import read_csv_dataset, read_table
from logreg_exp.data.loaders import split_train_val_test
from logreg_exp.data.preprocessing import load_preprocessing
from logreg_exp.errors import ConfigError
from logreg_exp.predict import main, predictions_csv
from logreg_exp.saved_run import open_run
from logreg_exp.training.build import seeded_streams
from tests.helpers import assert_one_line_error, read_metrics_json, run_cli


def new_rows(path, text):
    path.write_text(text)
    return read_table(path, ",")


def test_rows_get_the_probability_and_the_class_name(csv_run, tmp_path):
    run = open_run(csv_run[0])
    table = new_rows(tmp_path / "new.csv", "id,f3,f1,f2\nr1,0.5,-1,2\nr2,4,3.5,2.5\nr3,0,0,0\n")
    rows = list(csv.reader(io.StringIO(predictions_csv(run, table))))
    assert rows[0] == ["id", "f3", "f1", "f2", "p_pos", "predicted"]
    assert [row[:4] for row in rows[1:]] == [row for row in table.rows]  # carried as they were
    # the same numbers by hand, from the saved statistics and weights
    prep = load_preprocessing(csv_run[0])
    x = np.array([[-1, 2, 0.5], [3.5, 2.5, 4], [0, 0, 0]])
    scores = ((x - prep.scaler.mean) / prep.scaler.std) @ run.model.w.detach().double().numpy()
    proba = 1 / (1 + np.exp(-(scores[:, 0] + run.model.bias.item())))
    np.testing.assert_allclose([float(row[4]) for row in rows[1:]], proba, rtol=1e-5)
    assert [row[5] for row in rows[1:]] == ["pos" if p > 0.5 else "neg" for p in proba]
    assert rows[2][5] == "pos" and rows[1][5] == "neg"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("f1,f2,kind\n1,2,pos\n", "new.csv lacks the run's feature column 'f3'; its columns:"),
        ("f1,f2,f3\n", "new.csv has a header but no data rows"),
        ("f1,f2,f3\n1,nan,3\n", "new.csv line 2, column 'f2': missing value ('nan')"),
        ("f1,f2,f3,predicted\n1,2,3,x\n", "new.csv has a column 'predicted' already"),
    ],
)
def test_rows_that_cannot_be_predicted_are_one_line(csv_run, tmp_path, text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        predictions_csv(open_run(csv_run[0]), new_rows(tmp_path / "new.csv", text))


def test_the_command_writes_to_stdout_or_a_file(csv_run, tmp_path, capsys):
    (tmp_path / "new.csv").write_text("f1;f2;f3\n1;2;3\n")
    assert main([str(csv_run[0]), str(tmp_path / "new.csv"), "--delimiter", ";"]) == 0
    assert capsys.readouterr().out.startswith("f1;f2;f3;p_pos;predicted\n1;2;3;")
    out = tmp_path / "p.csv"
    assert main([str(csv_run[0]), str(tmp_path / "new.csv"), "--out", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'new.csv'} lacks the run's feature columns 'f1', 'f2', 'f3'; its "
        "columns: f1;f2;f3 (the header read as one column with delimiter ','; try "
        "--delimiter ';')\n"
    )
    assert not out.exists()
    assert (
        main([str(csv_run[0]), str(tmp_path / "new.csv"), "--out", str(out), "--delimiter", ";"])
        == 0
    )
    assert out.read_text().startswith("f1;f2;f3;p_pos;predicted\n")
    assert capsys.readouterr().out.startswith(f"wrote 1 predictions to {out}: p_pos, the")


def predict_cli(*args, cwd):
    return run_cli(*map(str, args), cwd=cwd, module="logreg_exp.predict")


def held_out_rows(data, seed=0):
    """The row numbers of the run's test split: the split depends only on the labels and
    the seed's data stream, which reading a CSV does not draw from."""
    y = read_csv_dataset(data, "kind").y
    rows = np.arange(len(y))[:, None]
    rng = seeded_streams(seed)[0]
    *_, (test, _) = split_train_val_test(rows, y, 0.3, rng, stratify=True, test_fraction=0.2)
    return test[:, 0]


@pytest.mark.slow
def test_predict_on_the_held_out_rows_scores_the_runs_test_accuracy(cli_csv_run, tmp_path):
    run_dir, data = cli_csv_run
    proc = predict_cli(run_dir, data, "--out", tmp_path / "p.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "wrote 200 predictions to p.csv: p_pos, the probability of 'pos', and predicted, 'pos' "
        "where it is above 0.5, else 'neg'\n"
    )
    with (tmp_path / "p.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["f1", "f2", "f3", "kind", "p_pos", "predicted"]
    test = [rows[i] for i in held_out_rows(data)]
    assert len(test) == 40
    accuracy = sum(row["predicted"] == row["kind"] for row in test) / len(test)
    assert accuracy == read_metrics_json(run_dir)["test_acc"]
    assert all((float(row["p_pos"]) > 0.5) == (row["predicted"] == "pos") for row in rows)


@pytest.mark.slow
def test_predict_writes_to_stdout_with_extra_columns_carried(cli_csv_run, tmp_path):
    (tmp_path / "new.csv").write_text("id,f3,f2,f1,note\na,3,3,3,x y\nb,-1,-1,-1,\n")
    proc = predict_cli(cli_csv_run[0], "new.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == ["id", "f3", "f2", "f1", "note", "p_pos", "predicted"]
    assert [row[:5] for row in rows[1:]] == [
        ["a", "3", "3", "3", "x y"],
        ["b", "-1", "-1", "-1", ""],
    ]
    assert [row[6] for row in rows[1:]] == ["pos", "neg"] and proc.stderr == ""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        (
            "f1,f2,x\n1,2,3\n",
            [],
            "new.csv lacks the run's feature column 'f3'; its columns: f1, f2, x",
        ),
        ("f1,f2,f3\n1,2,3\n1,NaN,3\n", [], "new.csv line 3, column 'f2': missing value ('NaN')"),
        ("f1,f2,f3\n1,2,inf\n", [], "new.csv line 2, column 'f3': 'inf' is not a finite number"),
        (
            "f1;f2;f3\n1;2;3\n",
            [],
            "(the header read as one column with delimiter ','; try --delimiter ';')",
        ),
        ("f1,f2,f3\n1,2,3,4\n", [], "new.csv line 2: 4 fields, but the header has 3"),
        ("f1,f2,f3\n1,2,3\n", ["--out", "missing/p.csv"], "--out missing/p.csv: no such directory"),
    ],
)
def test_predict_bad_input_is_one_line_and_exit_1(cli_csv_run, tmp_path, text, args, message):
    (tmp_path / "new.csv").write_text(text)
    proc = predict_cli(cli_csv_run[0], "new.csv", *args, cwd=tmp_path)
    assert_one_line_error(proc, message)


@pytest.mark.slow
def test_predict_with_a_run_that_cannot_be_used_is_one_line(cli_csv_run, tmp_path):
    run_dir, data = cli_csv_run
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dir, unfinished)
    (unfinished / "metrics.json").write_text('{"status": "interrupted"}')
    assert_one_line_error(predict_cli(unfinished, data, cwd=tmp_path), "did not complete")
    assert_one_line_error(predict_cli(data.parent, data, cwd=tmp_path), "is a sweep dir")
    torch.save({"state_dict": {"w": torch.ones(4, 1), "bias": torch.zeros(1)}}, unfinished / "x")
    mixed = tmp_path / "mixed"
    shutil.copytree(run_dir, mixed)
    shutil.copy(unfinished / "x", mixed / "best.pt")
    assert_one_line_error(predict_cli(mixed, data, cwd=tmp_path), "holds a model of 4 features")
