"""CSV datasets: what a good file gives, and the one-line error for each kind of bad file."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from logreg_exp.data.csv_file import columns, listed, parse_columns, read_csv_dataset, read_table
from logreg_exp.errors import ConfigError


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_reads_features_and_maps_two_labels_in_sorted_order(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2,yes\n3,4.5,no\n-1,0,yes\n")
    data = read_csv_dataset(path, "label")
    np.testing.assert_array_equal(data.x, [[1, 2], [3, 4.5], [-1, 0]])
    np.testing.assert_array_equal(data.y, [1, 0, 1])  # 'no' -> 0, 'yes' -> 1
    assert data.class_names == ["no", "yes"] and data.feature_names == ["a", "b"]


def test_numeric_labels_sort_as_numbers_and_features_can_be_chosen(tmp_path):
    path = write(tmp_path, "y;a;b;c\n10;1;2;3\n2;4;5;6\n")
    data = read_csv_dataset(path, "y", features=["c", "a"], delimiter=";")
    np.testing.assert_array_equal(data.x, [[3, 1], [6, 4]])
    np.testing.assert_array_equal(data.y, [1, 0])  # 2 -> 0, 10 -> 1 (not "10" < "2")
    assert data.class_names == ["2", "10"]


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("", {}, r"data.csv is empty: expected a header line"),
        ("a,label\n", {}, r"data.csv has a header but no data rows"),
        ("a,b\n1,2\n", {}, r"dataset.target='label' is not a column of .*data.csv; columns: a, b"),
        ("a,label\n1,0\nx1,1\n", {}, r"data.csv line 3, column 'a': 'x1' is not a number"),
        ("a,label\n1,0\n,1\n", {}, r"data.csv line 3, column 'a': missing value"),
        ("a,label\n1,0\nNaN,1\n", {}, r"data.csv line 3, column 'a': missing value"),
        ("a,label\n1,0\ninf,1\n", {}, r"data.csv line 3, column 'a': 'inf' is not a finite number"),
        ("a,label\n1,0\n2,\n", {}, r"data.csv line 3, column 'label': missing label"),
        ("a,label\n1,0\n2,0\n", {}, r"has 1 distinct value \('0'\); it must have two classes"),
        ("a,label\n1,0\n2,1,5\n", {}, r"data.csv line 3: 3 fields, but the header has 2"),
        ("a,label\n1,0\n", {"features": ["a", "z"]}, r"dataset.features: 'z' not a column"),
        ("label\n1\n0\n", {}, r"has no feature columns besides the target 'label'"),
        (
            "a;label\n1;0\n2;1\n",
            {},
            r"columns: a;label \(the header read as one column with delimiter ','; try "
            r"dataset.delimiter=';'\)$",
        ),
        (b"a,label\n1,0\n\xff2,1\n", {}, r"data.csv line 3, byte 1: b'\\xff' is not UTF-8"),
        (
            'a,label\n"1,0\n' + "2,1\n" * 70_000,
            {},
            r"data.csv lines 2-\d+: not valid CSV: field larger than field limit \(131072\) "
            r"\(an unclosed quote\?\)",
        ),
        ("a,b,a,label\n1,2,3,0\n", {}, r"line 1: the column name 'a' appears twice \(columns 1"),
        ("a,label,\n1,0,\n", {}, r"line 1: column 3 has no name \(a delimiter at the end"),
        (
            "a,label\n1,0\n1e39,1\n",
            {"dtype": np.float32},
            r"line 3, column 'a': '1e39' does not fit in float32 \(largest 3.403e\+38\); use "
            r"dtype=float64",
        ),
        ("a,label\n1,1\n2,1.0\n", {}, r"has 1 distinct value \('1'\)"),
    ],
)
def test_bad_files_give_one_line_naming_file_line_and_column(tmp_path, text, args, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        read_csv_dataset(path, "label", **args)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.path='.*nope.csv': no such file"):
        read_csv_dataset(tmp_path / "nope.csv", "label")


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes("a,label\n1,x\n2,y\n".encode("utf-8-sig"))
    assert read_csv_dataset(path, "label").feature_names == ["a"]


def test_a_file_that_is_not_utf8_text_is_one_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,label\n\xff\xfe,1\n")
    with pytest.raises(ConfigError, match=r"data.csv is not UTF-8 text \(byte 8: invalid start"):
        read_table(path, ",")


def test_columns_by_name_for_new_data(tmp_path):
    table = read_table(write(tmp_path, "id,b,a\nr1,2,1\n\nr2,4,3\n"), ",")
    assert table.rows == [["r1", "2", "1"], ["r2", "4", "3"]] and table.line_numbers == [2, 4]
    np.testing.assert_array_equal(parse_columns(table, ["a", "b"], [2, 1]), [[1, 2], [3, 4]])
    with pytest.raises(ConfigError) as info:
        columns(table, ["a", "c", "d"], role="the run's feature")
    assert str(info.value).endswith(
        "lacks the run's feature columns 'c', 'd'; its columns: id, b, a"
    )


def test_long_lists_of_names_are_cut_short():
    assert listed(["a", "b", "c"]) == "a, b, c"
    assert listed(map(str, range(10)), limit=3) == "0, 1, 2, ... (10 in all)"
    assert listed(["x" * 70]) == "x" * 57 + "..."


def test_a_directory_is_not_a_csv_file(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.path='.*' is a directory, not a CSV file"):
        read_csv_dataset(tmp_path, "label")


def test_a_byte_order_mark_does_not_hide_the_first_column_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("label,a\n0,1\n1,2\n".encode("utf-8-sig"))
    data = read_csv_dataset(path, "label")
    assert data.feature_names == ["a"] and list(data.y) == [0, 1]


LABELS_SCRIPT = """
import sys
from logreg_exp.data.csv_file import read_csv_dataset
data = read_csv_dataset(sys.argv[1], "label")
print(data.class_names, data.y.tolist(), data.label_spellings)
"""


def test_one_number_spelt_two_ways_is_one_class_whatever_the_hash_seed(tmp_path):
    path = write(tmp_path, "a,label\n1,1.0\n2,0\n3,1\n4,1.00\n5,0.0\n")
    outputs = {
        subprocess.run(
            [sys.executable, "-c", LABELS_SCRIPT, str(path)], capture_output=True, text=True,
            env={**os.environ, "PYTHONHASHSEED": seed}, check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }  # fmt: skip
    assert outputs == {
        "['0', '1'] [1.0, 0.0, 1.0, 1.0, 0.0] {'0.0': '0', '1.0': '1', '1.00': '1'}\n"
    }
