"""The sweep picture from job dirs alone: what it shows for one and two swept numbers and for
choices, when there is none, and the PNG and its TensorBoard image read back."""

from __future__ import annotations

import json
import logging
import struct
import sys
from pathlib import Path

from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from logreg_exp.results import Monitor
from logreg_exp.sweeps.callback import SweepCallback
from logreg_exp.sweeps.plots import SWEEP_IMAGE_TAG, SWEEP_PNG, draw_sweep, layout
from logreg_exp.sweeps.summary import collect_jobs
from logreg_exp.sweeps.swept import PLAN_FILE
from tests.helpers import completed_metrics, make_job

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DIVERGED = {"status": "diverged", "monitor": "val_loss", "best_val_loss": 0.9}


def sweep_of(sweep: Path, jobs: list[tuple[list[str], dict | str | None]], events=False) -> Path:
    """Job dirs numbered in order; ``events``: each with an (empty) TensorBoard event file, as
    a job that logged to TensorBoard has."""
    for num, (overrides, metrics) in enumerate(jobs):
        job = make_job(sweep, num, overrides, metrics)
        if events:
            (job / "events.out.tfevents.0.host").write_bytes(b"")
    return sweep


def lr_sweep(sweep: Path, losses: list[float], events: bool = False) -> Path:
    """An lr sweep over 1e-4 .. 1 (one job per loss, ``epochs=2`` the same in each)."""
    lrs = ["0.0001", "0.001", "0.01", "0.1", "1"]
    jobs = [([f"updater.lr={lr}", "epochs=2"], completed_metrics(loss, 0.7)) for lr, loss in
            zip(lrs, losses, strict=False)]  # fmt: skip
    return sweep_of(sweep, jobs, events)


def plan_of(sweep: Path, monitor: Monitor = Monitor.val_loss):
    return layout(collect_jobs(sweep), monitor)


def test_one_swept_number_is_a_curve_on_a_log_axis_with_the_other_jobs_marked(tmp_path):
    sweep = sweep_of(tmp_path, [
        (["updater.lr=0.001", "epochs=2"], completed_metrics(0.60, 0.70)),
        (["updater.lr=0.01", "epochs=2"], completed_metrics(0.50, 0.78)),
        (["updater.lr=0.1", "epochs=2"], completed_metrics(0.55, 0.80)),
        (["updater.lr=1", "epochs=2"], DIVERGED),
        (["updater.lr=3", "epochs=2"], None),  # killed before it wrote its result
        (["updater.lr=5", "epochs=2"], {"status": "interrupted", "best_val_loss": 0.4}),
    ])  # fmt: skip
    plan_text = json.dumps({"jobs": [*([f"updater.lr={v}", "epochs=2"] for v in
                            ("0.001", "0.01", "0.1", "1", "3", "5", "10"))]})  # fmt: skip
    (sweep / PLAN_FILE).write_text(plan_text)
    plan = plan_of(sweep)
    assert [(a.key, a.log) for a in plan.axes] == [("updater.lr", True)]
    assert plan.panel_keys == [] and len(plan.panels) == 1  # epochs is the same in every job
    assert [(p.x, p.best, p.final, p.mark) for p in plan.points] == [
        (0.001, 0.60, 0.61, None),
        (0.01, 0.50, 0.51, None),
        (0.1, 0.55, 0.56, None),
        (1, None, None, "diverged"),  # its value is not comparable: marked at the edge
        (3, None, None, "failed"),
        (5, None, None, "interrupted"),
        (10, None, None, "not started"),
    ]
    assert plan.best is plan.points[1]
    assert plan.describe() == "best val_loss against updater.lr (log axis), 7 jobs"
    by_acc = plan_of(sweep, Monitor.val_acc).best  # higher is better
    assert (by_acc.job.num, by_acc.best) == (2, 0.80)


def test_values_within_a_decade_are_on_a_linear_axis(tmp_path):
    sweep = sweep_of(tmp_path, [
        (["updater.lr=0.02"], completed_metrics(0.6, 0.7)),
        (["updater.lr=0.2"], completed_metrics(0.5, 0.7)),
    ])  # fmt: skip
    assert not plan_of(sweep).axes[0].log


def grid(sweep: Path, lrs, batches, extra=()) -> Path:
    jobs = []
    for i, lr in enumerate(lrs):
        for j, batch in enumerate(batches):
            overrides = [f"updater.lr={lr}", f"batch_size={batch}", *extra]
            jobs.append((overrides, completed_metrics(0.5 + 0.01 * i + 0.02 * j, 0.7)))
    return sweep_of(sweep, jobs)


def test_two_swept_numbers_are_a_heat_map_and_a_searchs_trials_dots(tmp_path):
    plan = plan_of(grid(tmp_path / "grid", ["0.01", "0.1", "1"], ["8", "32"]))
    assert [a.key for a in plan.axes] == ["updater.lr", "batch_size"] and plan.grid
    assert plan.describe() == "heat map of best val_loss over updater.lr x batch_size, 6 jobs"
    assert (plan.best.x, plan.best.y) == (0.01, 8)

    trials = [("0.0003", "8"), ("0.002", "64"), ("0.05", "16"), ("0.4", "128"), ("0.9", "32")]
    search = sweep_of(tmp_path / "search", [
        ([f"updater.lr={lr}", f"batch_size={b}"], completed_metrics(0.5, 0.7)) for lr, b in trials
    ])  # fmt: skip
    plan = plan_of(search)
    assert not plan.grid  # 5 of 25 cells: one dot per job
    assert plan.describe() == "best val_loss over updater.lr x batch_size, 5 jobs"


def test_choices_and_numbers_beyond_two_make_one_panel_per_value(tmp_path):
    jobs = [
        ([f"updater={u}", f"updater.lr={lr}"], completed_metrics(0.5, 0.7))
        for u in ("manual", "optim") for lr in ("0.01", "0.1", "1")
    ]  # fmt: skip
    plan = plan_of(sweep_of(tmp_path / "choices", jobs))
    assert [a.key for a in plan.axes] == ["updater.lr"] and plan.panel_keys == ["updater"]
    assert [(p.title, len(p.points)) for p in plan.panels] == [
        ("updater=manual", 3),
        ("updater=optim", 3),
    ]
    assert plan.describe() == (
        "best val_loss against updater.lr (log axis), 2 panels by updater, 6 jobs"
    )

    # three numbers: the two with the most values are the axes, the third makes panels
    sweep = tmp_path / "three"
    for i, momentum in enumerate((0, 0.9)):
        extra = [f"updater.momentum={momentum}"]
        grid(sweep / f"momentum{i}", ["0.01", "0.1", "1"], ["8", "32"], extra)
    jobs = [(job.overrides, job.metrics) for job in collect_jobs(sweep)]
    plan = plan_of(sweep_of(tmp_path / "renumbered", jobs))
    assert [a.key for a in plan.axes] == ["updater.lr", "batch_size"]
    assert [p.title for p in plan.panels] == ["updater.momentum=0", "updater.momentum=0.9"]


def test_no_picture_for_one_job_no_number_or_too_many_panels(tmp_path):
    def reason(name, jobs):
        return plan_of(sweep_of(tmp_path / name, jobs))

    done = completed_metrics(0.5, 0.7)
    assert reason("one", [(["updater.lr=0.1"], done)]) == "one job"
    choices = [(["updater=manual"], done), (["updater=optim"], done)]
    assert reason("choices", choices) == "no number was swept (swept: updater)"
    assert reason("same", [(["seed=1"], done), (["seed=1"], done)]) == "nothing was swept"
    assert reason("none", [(["seed=1"], DIVERGED), (["seed=2"], None)]) == (
        "no job has a best val_loss"
    )
    many = [
        ([f"dataset.path=d{i}.csv", f"updater.lr={lr}"], done) for i in range(17) for lr in (1, 2)
    ]
    assert reason("many", many) == (
        "17 panels (one per value of dataset.path) are too many to read; at most 16"
    )


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE) and png[25] == 6  # colour type 6: RGBA
    return struct.unpack(">II", png[16:24])


def test_the_png_and_the_tensorboard_image_are_the_same_and_follow_the_data(tmp_path):
    sweep = lr_sweep(tmp_path, [0.7, 0.6, 0.5, 0.55, 0.65], events=True)
    line = draw_sweep(sweep, collect_jobs(sweep), Monitor.val_loss)
    assert line == (
        "sweep picture: best val_loss against updater.lr (log axis), 5 jobs; "
        "in sweep.png and TensorBoard (image 'sweep')"
    )
    png = (sweep / SWEEP_PNG).read_bytes()
    assert png_size(png) == (640, 510)
    acc = EventAccumulator(str(sweep))  # the sweep dir's own run, not its jobs'
    acc.Reload()
    (image,) = acc.Images(SWEEP_IMAGE_TAG)
    assert image.encoded_image_string == png and (image.width, image.height) == (640, 510)

    # drawn again from the same files: the same picture, and one event file for it
    draw_sweep(sweep, collect_jobs(sweep), Monitor.val_loss)
    assert (sweep / SWEEP_PNG).read_bytes() == png
    assert len(list(sweep.glob("events.out.tfevents.*"))) == 1

    # another result: another picture
    job = next(sweep.glob("0004_*"))
    (job / "metrics.json").write_text(json.dumps(completed_metrics(0.45, 0.8)))
    draw_sweep(sweep, collect_jobs(sweep), Monitor.val_loss)
    changed = (sweep / SWEEP_PNG).read_bytes()
    assert changed != png and png_size(changed) == (640, 510)


def test_a_heat_map_in_panels_is_wider_than_one_panel(tmp_path):
    sweep = tmp_path / "sweep"
    for updater in ("manual", "optim"):
        grid(sweep / updater, ["0.01", "0.1"], ["8", "32"], [f"updater={updater}"])
    jobs = [(job.overrides, job.metrics) for job in collect_jobs(sweep)]
    renumbered = sweep_of(tmp_path / "renumbered", jobs)
    line = draw_sweep(renumbered, collect_jobs(renumbered), Monitor.val_loss)
    assert line == (
        "sweep picture: heat map of best val_loss over updater.lr x batch_size, "
        "2 panels by updater, 8 jobs; in sweep.png"
    )
    width, height = png_size((renumbered / SWEEP_PNG).read_bytes())
    assert width > 640 * 1.2 and height >= 400
    assert not list(renumbered.glob("events.out.tfevents.*"))  # the jobs wrote none


def test_without_a_picture_an_earlier_one_is_removed(tmp_path):
    sweep = sweep_of(tmp_path, [(["updater=manual"], None), (["updater=optim"], None)])
    (sweep / SWEEP_PNG).write_bytes(b"an earlier picture")
    (sweep / "events.out.tfevents.1.host.picture").write_bytes(b"")
    assert draw_sweep(sweep, collect_jobs(sweep), Monitor.val_loss) == (
        "no sweep picture: no number was swept (swept: updater)"
    )
    assert sorted(p.name for p in sweep.iterdir() if p.is_file()) == []


def test_without_matplotlib_there_is_no_picture_and_one_log_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed, as find_spec sees it
    sweep = lr_sweep(tmp_path, [0.7, 0.6])
    with caplog.at_level(logging.INFO):
        SweepCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": sweep}}}))
    assert [r.getMessage() for r in caplog.records] == [
        "sweep picture skipped: matplotlib is not installed (pip install 'logreg-exp[plots]')"
    ]
    assert not (sweep / SWEEP_PNG).exists()


def test_one_job_has_no_picture_and_says_so_in_one_log_line(tmp_path, caplog, capsys):
    sweep = lr_sweep(tmp_path, [0.7])
    with caplog.at_level(logging.INFO):
        SweepCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": sweep}}}))
    assert [r.getMessage() for r in caplog.records] == ["no sweep picture: one job"]
    assert capsys.readouterr().out.endswith("(in summary.md and summary.csv of the sweep dir)\n")


def test_a_job_whose_overrides_cannot_be_read_is_left_off_the_picture(tmp_path):
    sweep = lr_sweep(tmp_path, [0.7, 0.6, 0.5])
    job = next(sweep.glob("0002_*"))
    (job / ".hydra" / "overrides.yaml").write_text("[")
    (job / ".hydra" / "hydra.yaml").write_text("hydra: [")
    plan = plan_of(sweep)
    assert [p.job.num for p in plan.points] == [0, 1]


def test_a_picture_that_cannot_be_written_is_one_error_line_and_the_summary_stays(
    tmp_path, monkeypatch, caplog, capsys
):
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("logreg_exp.sweeps.callback.draw_sweep", full_disk)
    sweep = lr_sweep(tmp_path, [0.7, 0.6])
    SweepCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": sweep}}}))
    assert [r.getMessage() for r in caplog.records] == [
        "error: sweep picture not drawn: [Errno 28] No space left on device"
    ]
    assert "Best: job 1, best val_loss 0.6000" in capsys.readouterr().out
    assert (sweep / "summary.md").is_file() and not (sweep / SWEEP_PNG).exists()
