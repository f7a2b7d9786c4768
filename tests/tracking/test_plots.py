"""The decision-boundary picture: drawn for two features, skipped otherwise or without
matplotlib, and saved by a real run as decision_boundary.png and a TensorBoard image."""

from __future__ import annotations

import io
import logging
import struct
import sys

import numpy as np
import pytest

from logreg_exp.results import Monitor
from logreg_exp.tracking import plots
from logreg_exp.tracking.plots import GRID_POINTS, BoundaryPainter, grid_over
from logreg_exp.training.loop import EpochMetrics, FitResult
from tests.helpers import build, run_cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def logistic(w0: float, w1: float, bias: float):
    """p(y = 1 | x) of the linear rule (w0, w1), bias, at points (n, 2)."""
    return lambda points: 1 / (1 + np.exp(-(points @ np.array([w0, w1]) + bias)))


@pytest.fixture(scope="module")
def painter() -> BoundaryPainter:
    points = np.random.default_rng(0).normal(size=(200, 2))
    return BoundaryPainter(points, (points[:, 0] > 0) * 1.0)


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_the_grid_spans_the_data_with_a_margin():
    g0, g1 = grid_over(np.array([[-2.0, 0.0], [2.0, 10.0], [0.0, 5.0]]))
    assert g0.shape == g1.shape == (GRID_POINTS, GRID_POINTS)
    assert g0.min() < -2.0 and g0.max() > 2.0 and g1.min() < 0.0 and g1.max() > 10.0


def test_a_picture_is_an_rgb_png_of_the_stated_size(painter):
    picture = painter.paint(logistic(1.0, 0.5, 0.1), "a title")
    assert picture.png.startswith(PNG_SIGNATURE)
    assert struct.unpack(">II", picture.png[16:24]) == (picture.width, picture.height)
    assert picture.png[25] == 2  # colour type 2: RGB
    assert (picture.width, picture.height) == (640, 480)


def test_each_pixel_of_the_axes_shows_the_band_of_the_models_probability(painter):
    """Far from the points and the line, a pixel has the colour of its probability's band:
    0.7 and up on one side of x0 = 0, under 0.3 on the other."""
    image = pixels(painter.paint(logistic(1.0, 0.0, 0.0), "t").png)
    rows, columns = painter.rows, painter.columns
    corner_low = image[rows.start + 5, columns.start + 5]  # top left: x0 very negative
    corner_high = image[rows.stop - 5, columns.stop - 5]  # bottom right: x0 very positive
    np.testing.assert_allclose(corner_low, painter.band_rgb[0], atol=1)
    np.testing.assert_allclose(corner_high, painter.band_rgb[-1], atol=1)


def test_a_painter_paints_each_model_as_a_fresh_one_would(painter):
    first, second = logistic(1.0, 0.5, 0.1), logistic(-0.3, 2.0, -1.0)
    a = painter.paint(first, "one").png
    b = painter.paint(second, "two").png
    assert a != b
    assert painter.paint(first, "one").png == a  # nothing of the second is left
    points = np.random.default_rng(0).normal(size=(200, 2))
    assert BoundaryPainter(points, (points[:, 0] > 0) * 1.0).paint(first, "one").png == a


def finished(cfg, exp) -> FitResult:
    """A FitResult as after one epoch, holding the model's current state as the best."""
    result = FitResult(Monitor.val_loss, best_epoch=1, best_state=exp.model.state_dict())
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
