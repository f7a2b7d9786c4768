"""``python -m logreg_exp.predict``, in-process: new rows through the run's own
standardization and model, columns found by name, class names as in the training CSV."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from logreg_exp.data.csv_file import ROWS_PER_CHUNK, read_csv_dataset, read_table
from logreg_exp.data.loaders import split_train_val_test
from logreg_exp.data.preprocessing import load_preprocessing
from logreg_exp.errors import ConfigError
from logreg_exp.predict import main, predictions_csv, write_predictions
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


# Damaged input, --out, and streaming, through the real command.


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("1e39", "new.csv line 3, column 'f2': '1e39' does not fit in float32 (largest 3.403e+38)"),
        ("-1e39", "new.csv line 3, column 'f2': '-1e39' does not fit in float32"),
    ],
)
def test_predict_refuses_values_float32_cannot_hold(cli_csv_run, tmp_path, cell, message):
    (tmp_path / "new.csv").write_text(f"f1,f2,f3\n1,2,3\n1,{cell},3\n")
    proc = predict_cli(cli_csv_run[0], "new.csv", cwd=tmp_path)
    assert_one_line_error(proc, message)
    assert proc.stdout == ""  # no row predicted, not even those before it


@pytest.mark.slow
def test_predict_keeps_the_input_and_an_existing_out_unless_told(cli_csv_run, tmp_path):
    run_dir = cli_csv_run[0]
    text = "f1,f2,f3\n1,2,3\n"
    (tmp_path / "new.csv").write_text(text)
    assert_one_line_error(
        predict_cli(run_dir, "new.csv", "--out", "./new.csv", "--overwrite", cwd=tmp_path),
        "--out new.csv is the input file; write the predictions to another file",
    )
    assert (tmp_path / "new.csv").read_text() == text
    (tmp_path / "p.csv").write_text("mine\n")
    assert_one_line_error(
        predict_cli(run_dir, "new.csv", "--out", "p.csv", cwd=tmp_path),
        "--out p.csv exists; add --overwrite to replace it",
    )
    assert (tmp_path / "p.csv").read_text() == "mine\n"
    proc = predict_cli(run_dir, "new.csv", "--out", "p.csv", "--overwrite", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p.csv").read_text().startswith("f1,f2,f3,p_pos,predicted\n1,2,3,")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("outdir", "--out outdir is a directory; name a file to write the predictions to"),
        ("/proc/self/p.csv", "cannot write /proc/self/p.csv: No such file or directory"),
    ],
)
def test_predict_errors_name_the_users_out_not_a_temporary_file(
    cli_csv_run, tmp_path, out, message
):
    (tmp_path / "new.csv").write_text("f1,f2,f3\n1,2,3\n")
    (tmp_path / "outdir").mkdir()
    proc = predict_cli(cli_csv_run[0], "new.csv", "--out", out, cwd=tmp_path)
    assert_one_line_error(proc, message)
    assert ".tmp" not in proc.stderr and list((tmp_path / "outdir").iterdir()) == []


def reference_predictions(run, path):
    """What predict wrote before it streamed: the whole file read as one table, every row
    through the model at once, the output built as one string."""
    table = read_table(path, ",")
    prep = run.preprocessing
    cols = [table.header.index(name) for name in prep.features]
    x = np.array([[float(row[c]) for c in cols] for row in table.rows])
    prep.scaler.transform_(x)
    with torch.no_grad():
        scores = run.model(torch.as_tensor(x, dtype=run.model.w.dtype))
    proba = torch.sigmoid(scores).numpy()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=",", lineterminator="\n")
    writer.writerow([*table.header, "p_pos", "predicted"])
    for row, p, s in zip(table.rows, proba, (scores > 0).tolist(), strict=True):
        writer.writerow([*row, str(p), prep.classes[int(s)]])
    return out.getvalue()


def awkward_rows(path, n=50):
    """Rows with quoted fields, a delimiter inside quotes, blank lines and CRLF endings."""
    rng = np.random.default_rng(3)
    lines = ['id,f3,"note, quoted",f1,f2']
    for i, (a, b, c) in enumerate(rng.normal(size=(n, 3)) * 2):
        lines.append(f'r{i},{c:.7g},"a ""b"", c",{a:.7g},{b:.7g}')
        if i % 7 == 0:
            lines.append("")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def test_predictions_chunk_by_chunk_are_those_of_the_whole_file(csv_run, tmp_path):
    run = open_run(csv_run[0])
    path = awkward_rows(tmp_path / "new.csv")
    written = []
    count = write_predictions(run, path, ",", written.append, rows_per_chunk=8)
    assert count == 50 and len(written) == 7  # 6 chunks of 8 rows and one of 2
    assert "".join(written) == reference_predictions(run, path)


def test_an_error_in_a_later_chunk_comes_after_the_earlier_chunks(csv_run, tmp_path):
    (tmp_path / "new.csv").write_text("f1,f2,f3\n1,2,3\n1,2,3\n1,x,3\n")
    written = []
    with pytest.raises(ConfigError, match=r"new.csv line 4, column 'f2': 'x' is not a number"):
        write_predictions(open_run(csv_run[0]), tmp_path / "new.csv", ",", written.append, 2)
    assert len(written) == 1 and written[0].count("\n") == 3


@pytest.mark.slow
def test_predict_writes_the_bytes_it_wrote_before_it_streamed(cli_csv_run, tmp_path):
    path = awkward_rows(tmp_path / "new.csv", n=300)
    proc = predict_cli(cli_csv_run[0], "new.csv", "--out", "p.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = reference_predictions(open_run(cli_csv_run[0]), path)
    assert (tmp_path / "p.csv").read_text() == expected
    stdout = predict_cli(cli_csv_run[0], "new.csv", cwd=tmp_path)
    assert stdout.returncode == 0 and stdout.stdout == expected


def rows_file(path, n, bad_last=False):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    rows = [
        f"row{i},{a:.6f},{b:.6f},{c:.6f},some text carried through" for i, (a, b, c) in enumerate(x)
    ]
    if bad_last:
        rows[-1] = "last,1,x,3,bad"
    path.write_text("id,f1,f2,f3,note\n" + "\n".join(rows) + "\n")
    return path


def peak_rss_mib(run_dir, data, cwd):
    """The peak resident memory of ``python -m logreg_exp.predict RUN DATA --out``, from a
    parent process of its own (RUSAGE_CHILDREN counts only the children it waited for)."""
    measure = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    command = [sys.executable, "-m", "logreg_exp.predict", str(run_dir), str(data)]
    out = ["--out", str(cwd / f"{data.stem}.predicted.csv")]
    proc = subprocess.run(
        [sys.executable, "-c", measure, *command, *out],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout) / 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
def test_predict_memory_is_bounded_by_a_chunk_not_by_the_file(cli_csv_run, tmp_path):
    """Five chunks' rows take no more memory than twice one chunk's beyond the model's;
    reading the whole file took about ten times its size."""
    run_dir = cli_csv_run[0]
    model = peak_rss_mib(run_dir, rows_file(tmp_path / "one.csv", 1), tmp_path)
    chunk = peak_rss_mib(run_dir, rows_file(tmp_path / "chunk.csv", ROWS_PER_CHUNK), tmp_path)
    many = rows_file(tmp_path / "many.csv", 5 * ROWS_PER_CHUNK)
    five = peak_rss_mib(run_dir, many, tmp_path)
    assert five - model <= 2 * (chunk - model), (model, chunk, five)


@pytest.mark.slow
def test_predict_writes_no_out_for_an_error_after_the_first_chunk(cli_csv_run, tmp_path):
    rows_file(tmp_path / "new.csv", ROWS_PER_CHUNK + 5, bad_last=True)
    proc = predict_cli(cli_csv_run[0], "new.csv", "--out", "p.csv", cwd=tmp_path)
    assert_one_line_error(proc, f"new.csv line {ROWS_PER_CHUNK + 6}, column 'f2': 'x' is not")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv"]
