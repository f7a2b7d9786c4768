"""The decision-boundary picture: drawn for two features, skipped otherwise or without
matplotlib, and saved by a real run as decision_boundary.png and a TensorBoard image."""

from __future__ import annotations

import logging
import struct
import sys

import numpy as np
import pytest
import torch

from logreg_exp.tracking import plots
from logreg_exp.tracking.plots import (
    GRID_POINTS,
    DecisionBoundary,
    draw_decision_boundary,
    grid_over,
)
from logreg_exp.training.loop import EpochMetrics, FitResult
from logreg_exp.training.model import LogisticRegression
from tests.helpers import build, run_cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fixed_model(w0: float, w1: float, bias: float) -> LogisticRegression:
    model = LogisticRegression(2)
    with torch.no_grad():
        model.w.copy_(torch.tensor([[w0], [w1]]))
        model.bias.fill_(bias)
    return model


def boundary(seed: int = 0, n: int = 200) -> DecisionBoundary:
    points = np.random.default_rng(seed).normal(size=(n, 2))
    g0, g1 = grid_over(points)
    proba = 1 / (1 + np.exp(-(g0 + 0.5 * g1 + 0.1)))
    return DecisionBoundary(g0, g1, proba, points, (points[:, 0] > 0) * 1.0, f"seed {seed}")


def test_grid_spans_the_data_and_holds_the_models_probability():
    x = torch.tensor([[-2.0, 0.0], [2.0, 10.0], [0.0, 5.0]])
    g0, g1 = grid_over(x.numpy().astype(np.float64))
    proba = plots.probability_on_grid(fixed_model(1.0, 0.0, 0.0), g0, g1, like=x)
    assert g0.shape == g1.shape == proba.shape == (GRID_POINTS, GRID_POINTS)
    assert g0.min() < -2.0 and g0.max() > 2.0 and g1.min() < 0.0 and g1.max() > 10.0
    # p = sigmoid(x0): 0.5 on the line x0 = 0, rising with x0, independent of x1
    assert proba == pytest.approx(torch.sigmoid(torch.as_tensor(g0)).numpy(), abs=1e-6)


def test_two_features_give_an_rgba_png_of_the_stated_size():
    picture = draw_decision_boundary(boundary())
    assert picture.png.startswith(PNG_SIGNATURE)
    assert struct.unpack(">II", picture.png[16:24]) == (picture.width, picture.height)
    assert picture.png[25] == 6  # colour type 6: RGBA
    assert picture.width >= 400 and picture.height >= 300


def finished(cfg, exp) -> FitResult:
    """A FitResult as after one epoch, holding the model's current state as the best."""
    result = FitResult("val_loss", best_epoch=1, best_state=exp.model.state_dict())
    result.history.append(EpochMetrics(1, 0.5, 0.7, 0.5, 0.7, 0.0, 0.0))
    return result


def test_more_than_two_features_are_skipped_quietly(tmp_path, caplog):
    cfg, exp = build("dataset.n_features=3", "dataset.n_samples=100")
    with caplog.at_level(logging.INFO):
        plots.log_decision_boundary(exp, finished(cfg, exp), tmp_path, None)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_the_picture_is_skipped_with_one_log_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed, as find_spec sees it
    cfg, exp = build("dataset.n_samples=100")
    with caplog.at_level(logging.INFO):
        plots.log_decision_boundary(exp, finished(cfg, exp), tmp_path, None)
    (record,) = caplog.records
    assert "matplotlib is not installed" in record.getMessage()
    assert "logreg-exp[plots]" in record.getMessage()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_run_saves_the_picture_and_logs_the_same_png_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = run_cli(
        "epochs=2", "dataset.n_samples=400", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    png = (tmp_path / "run" / "decision_boundary.png").read_bytes()
    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    (image,) = acc.Images("decision_boundary")
    assert image.encoded_image_string == png
    assert (image.width, image.height) == struct.unpack(">II", png[16:24])


@pytest.mark.slow
def test_a_run_on_three_features_has_no_picture(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = run_cli(
        "epochs=1", "dataset.n_samples=400", "dataset.n_features=3",
        f"hydra.run.dir={tmp_path}/run", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "run" / "decision_boundary.png").exists()
    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    assert acc.Tags()["images"] == []
    assert "picture" not in proc.stdout + proc.stderr
