"""preprocessing.json: what predicting needs from the training data, saved exactly, read back
with a one-line error for a file that is missing or malformed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from logreg_exp.data.loaders import Standardizer
from logreg_exp.data.preprocessing import (
    PREPROCESSING_FILE,
    Preprocessing,
    load_preprocessing,
    save_preprocessing,
)
from logreg_exp.errors import ConfigError


def fitted() -> Preprocessing:
    x = np.random.default_rng(0).normal(3.0, 7.0, size=(50, 2))
    return Preprocessing(["b", "a"], ["neg", "pos"], Standardizer.fit(x))


def test_round_trip_keeps_every_statistic_to_the_last_bit(tmp_path):
    prep = fitted()
    save_preprocessing(tmp_path, prep)
    back = load_preprocessing(tmp_path)
    assert back.features == ["b", "a"] and back.classes == ["neg", "pos"]
    assert back.scaler.mean.tolist() == prep.scaler.mean.tolist()
    assert back.scaler.std.tolist() == prep.scaler.std.tolist()
    assert back.same_as(prep) is None


def test_raw_features_save_no_statistics(tmp_path):
    save_preprocessing(tmp_path, Preprocessing(["x0", "x1"], ["0", "1"], None))
    assert json.loads((tmp_path / PREPROCESSING_FILE).read_text())["standardize"] is None
    assert load_preprocessing(tmp_path).scaler is None


def test_rebuilt_data_that_differ_are_named():
    prep, other = fitted(), fitted()
    other.scaler = Standardizer(other.scaler.mean + 1e-6, other.scaler.std)
    assert "mean" in prep.same_as(other)
    assert "classes" in prep.same_as(Preprocessing(["b", "a"], ["no", "yes"], prep.scaler))
    assert "feature columns" in prep.same_as(Preprocessing(["a", "b"], prep.classes, None))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "preprocessing.json: no such file; the run was made by a logreg_exp without it"),
        ("{", r"preprocessing.json: unreadable \(Expecting property name"),
        ("[]", "preprocessing.json: not a JSON object"),
        ('{"features": [], "classes": ["a", "b"]}', "'features' must be a non-empty list"),
        ('{"features": ["x"], "classes": ["a"]}', "'classes' must be a list of two class"),
        (
            '{"features": ["x"], "classes": ["a", "b"], "standardize": {"mean": [0]}}',
            "'standardize' must hold a 'mean' and a 'std' of 1 numbers each",
        ),
        (
            '{"features": ["x"], "classes": ["a", "b"], '
            '"standardize": {"mean": [0], "std": [NaN]}}',
            "'standardize' must hold finite means and positive stds",
        ),
    ],
)
def test_a_missing_or_malformed_file_is_one_line(tmp_path, content, message):
    if content is not None:
        (tmp_path / PREPROCESSING_FILE).write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_preprocessing(tmp_path)
    assert "\n" not in str(info.value)
