"""Sweeps end to end: a real 2x2 multirun, its progress lines, summary and picture, and a
real TensorBoard server queried over HTTP as its dashboard does."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from logreg_exp.sweeps.callback import BASIC_SWEEPER, job_line, planned_jobs
from logreg_exp.sweeps.plots import SWEEP_PNG
from logreg_exp.sweeps.summary import SUMMARY_CSV, SUMMARY_MD
from logreg_exp.sweeps.swept import PLAN_FILE
from tests.helpers import run_cli

JOBS = [
    "0000_dataset.n_samples=1000,epochs=2,updater.lr=0.01,updater=manual",
    "0001_dataset.n_samples=1000,epochs=2,updater.lr=0.1,updater=manual",
    "0002_dataset.n_samples=1000,epochs=2,updater.lr=0.01,updater=optim",
    "0003_dataset.n_samples=1000,epochs=2,updater.lr=0.1,updater=optim",
]
SCALAR_TAGS = ["train/loss", "train/acc", "val/loss", "val/acc", "val/population_acc"]
RESULT_TAGS = {
    "hparams/best_val_loss": "best_val_loss",
    "hparams/best_val_acc": "best_val_acc",
    "hparams/final_val_loss": "final_val_loss",
    "hparams/final_val_acc": "final_val_acc",
    "hparams/best_epoch": "best_epoch",
    "hparams/test_population_acc": "test_population_acc",  # gaussian2d's honest number
}


def sweep_config(task: list[str], params: dict | None = None, target: str = BASIC_SWEEPER):
    return OmegaConf.create(
        {"hydra": {"sweeper": {"_target_": target, "params": params}, "overrides": {"task": task}}}
    )


def test_plan_is_the_basic_sweepers_product_in_job_order():
    config = sweep_config(["updater.lr=0.01,0.1", "batch_size=32,8", "epochs=2"])
    assert planned_jobs(config) == [
        ["updater.lr=0.01", "batch_size=32", "epochs=2"],
        ["updater.lr=0.01", "batch_size=8", "epochs=2"],
        ["updater.lr=0.1", "batch_size=32", "epochs=2"],
        ["updater.lr=0.1", "batch_size=8", "epochs=2"],
    ]


def test_plan_takes_sweeper_params_first_and_expands_range():
    config = sweep_config(["updater=manual,optim"], params={"seed": "range(3)"})
    jobs = planned_jobs(config)
    assert len(jobs) == 6
    assert jobs[0] == ["seed=0", "updater=manual"] and jobs[-1] == ["seed=2", "updater=optim"]


def test_no_plan_for_another_sweeper_or_overrides_the_sweeper_will_reject():
    assert planned_jobs(sweep_config(["seed=0,1"], target="hydra_plugins.optuna.Sweeper")) is None
    assert planned_jobs(sweep_config(["seed=interval(0,1)"])) is None


def test_job_line():
    assert job_line(2, 9, ["updater.lr=0.01", "batch_size=8"]) == (
        "job 3/9 (#2): updater.lr=0.01 batch_size=8"
    )
    assert job_line(4, None, []) == "job (#4): (no overrides)"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``python -m logreg_exp -m updater=manual,optim updater.lr=0.01,0.1``, small and short;
    the two updaters have different config keys."""
    cwd = tmp_path_factory.mktemp("sweep")
    proc = run_cli(
        "-m", "updater=manual,optim", "updater.lr=0.01,0.1", "epochs=2", "dataset.n_samples=1000",
        f"hydra.sweep.dir={cwd}/sweep", cwd=cwd,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc, cwd / "sweep"


def job_overrides(job_dir: Path) -> list[str]:
    return list(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))


def job_metrics(job_dir: Path) -> dict:
    return json.loads((job_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_each_job_logs_its_place_in_the_sweep_and_its_overrides(sweep):
    proc, sweep_dir = sweep
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == JOBS
    lines = re.findall(r"\] (job \d+/\d+ \(#\d+\): .*)\n", proc.stdout + proc.stderr)
    expected = [job_line(i, 4, job_overrides(sweep_dir / job)) for i, job in enumerate(JOBS)]
    assert lines == expected
    assert (
        lines[0] == "job 1/4 (#0): updater=manual updater.lr=0.01 epochs=2 dataset.n_samples=1000"
    )
    plan = json.loads((sweep_dir / PLAN_FILE).read_text())["jobs"]
    assert plan == [job_overrides(sweep_dir / job) for job in JOBS]
    job_log = (sweep_dir / JOBS[2] / "logreg_exp.log").read_text()
    assert "job 3/4 (#2): updater=optim updater.lr=0.01" in job_log


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_summary_has_a_row_per_job_with_the_values_of_its_metrics_json(sweep):
    proc, sweep_dir = sweep
    rows = list(csv.DictReader((sweep_dir / SUMMARY_CSV).open()))
    assert sorted(r["dir"] for r in rows) == JOBS
    for row in rows:
        metrics = job_metrics(sweep_dir / row["dir"])
        assert row["status"] == metrics["status"] == "completed"
        assert int(row["job"]) == JOBS.index(row["dir"])
        assert row["overrides"] == " ".join(job_overrides(sweep_dir / row["dir"]))
        for key in ("best_epoch", "epochs_run"):
            assert int(row[key]) == metrics[key]
        for key in ("best_val_loss", "best_val_acc", "final_val_loss", "final_val_acc", "wall_s"):
            assert float(row[key]) == metrics[key]
    losses = [float(r["best_val_loss"]) for r in rows]
    assert losses == sorted(losses)

    out = proc.stdout
    assert (sweep_dir / SUMMARY_MD).read_text() in out  # the table is printed as written
    best = rows[0]
    assert f"Best: job {best['job']}, best val_loss {float(best['best_val_loss']):.4f}" in out
    assert f"\n- overrides: {best['overrides']}\n" in out
    assert f"\n- run dir: sweep/{best['dir']}\n" in out


@pytest.mark.slow
def test_the_sweep_ends_with_its_picture_in_the_sweep_dir_and_in_tensorboard(sweep):
    proc, sweep_dir = sweep
    assert (
        "] sweep picture: best val_loss against updater.lr, 2 panels by updater, 4 jobs; "
        "in sweep.png and TensorBoard (image 'sweep')\n"
    ) in proc.stdout + proc.stderr
    assert "(in summary.md, summary.csv and sweep.png of the sweep dir)" in proc.stdout
    assert (sweep_dir / SWEEP_PNG).read_bytes().startswith(b"\x89PNG")
    (events,) = sweep_dir.glob("events.out.tfevents.*")  # the sweep's own run: the picture
    assert events.name.endswith(".picture")


@pytest.mark.slow
def test_summary_cli_rebuilds_the_same_files_from_the_sweep_dir(sweep):
    _, sweep_dir = sweep
    names = (SUMMARY_CSV, SUMMARY_MD, SWEEP_PNG)
    before = {name: (sweep_dir / name).read_bytes() for name in names}
    for name in names:
        (sweep_dir / name).unlink()
    for events in sweep_dir.glob("events.out.tfevents.*"):
        events.unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "logreg_exp.summary", "sweep"],
        cwd=sweep_dir.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert {name: (sweep_dir / name).read_bytes() for name in names} == before
    assert len(list(sweep_dir.glob("events.out.tfevents.*.picture"))) == 1


class TensorBoardServer:
    """``tensorboard --logdir LOGDIR --host 127.0.0.1 --port 0``; its port read from its log."""

    def __init__(self, logdir: Path, log_file: Path) -> None:
        self.log_file = log_file
        with log_file.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
                 "--host", "127.0.0.1", "--port", "0"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.url = self.wait_for_url(timeout=120)

    def wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"at (http://127\.0\.0\.1:\d+)/", self.log_file.read_text())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"tensorboard did not start:\n{self.log_file.read_text()}")

    def get(self, path: str):
        return json.loads(self.get_bytes(path))

    def get_bytes(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.read()

    def post(self, path: str, body: dict):
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def wait_for(self, fetch, ready, timeout: float = 120):
        """Poll until TensorBoard's background reload has read everything."""
        deadline = time.monotonic() + timeout
        while True:
            value = fetch()
            if ready(value) or time.monotonic() > deadline:
                return value
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def tensorboard(sweep, tmp_path):
    server = TensorBoardServer(sweep[1], tmp_path / "tensorboard.log")
    try:
        yield server
    finally:
        server.stop()


# What the HParams dashboard posts to list the table's rows.
SESSION_GROUPS_REQUEST = {
    "experimentName": "",
    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [],
    "startIndex": 0,
    "sliceSize": 100,
}


@pytest.mark.slow
def test_tensorboard_shows_one_hparams_row_per_job_with_its_curves_and_picture(sweep, tensorboard):
    _, sweep_dir = sweep

    def groups_with_metrics():
        found = tensorboard.post("/data/plugin/hparams/session_groups", SESSION_GROUPS_REQUEST)
        groups = found.get("sessionGroups", [])
        return groups if all(len(g.get("metricValues", [])) == 11 for g in groups) else []

    groups = tensorboard.wait_for(groups_with_metrics, lambda g: len(g) == 4)
    assert sorted(tensorboard.get("/data/runs")) == [".", *JOBS]  # "." is the sweep's own
    assert [g["name"] for g in groups] == JOBS  # one row per job, named by its run, in order

    for group in groups:
        job_dir = sweep_dir / group["name"]
        config = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
        # what the sweep varies, and nothing that is the same in every job
        assert group["hparams"] == {
            "updater.lr": config.updater.lr,
            "updater.name": config.updater.name,
        }
        (session,) = group["sessions"]
        assert session["status"] == "STATUS_SUCCESS"
        metrics = job_metrics(job_dir)
        values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        expected = {tag: metrics[key] for tag, key in RESULT_TAGS.items()}
        expected |= {
            "val/loss": metrics["final_val_loss"],
            "val/acc": metrics["final_val_acc"],
            "val/population_acc": metrics["final_val_population_acc"],
        }
        assert set(values) == {*expected, "train/loss", "train/acc"}
        assert {tag: values[tag] for tag in expected} == pytest.approx(expected)

    # the columns (the table shows the first five): the two swept keys, which differ
    experiment = tensorboard.post("/data/plugin/hparams/experiment", {"experimentName": ""})
    infos = [(info["name"], info["differs"]) for info in experiment["hparamInfos"]]
    assert infos == [("updater.lr", True), ("updater.name", True)]

    tags = tensorboard.get("/data/plugin/scalars/tags")
    for job in JOBS:
        assert set(tags[job]) == {*SCALAR_TAGS, *RESULT_TAGS}
    assert "." not in tags
    images = tensorboard.get("/data/plugin/images/tags")
    assert {run: list(tags) for run, tags in images.items()} == {
        ".": ["sweep"],  # the sweep's picture, at the top of the sweep dir
        **{job: ["decision_boundary"] for job in JOBS},
    }
    (image,) = tensorboard.get("/data/plugin/images/images?run=.&tag=sweep&sample=0")
    png = tensorboard.get_bytes(f"/data/plugin/images/individualImage?{image['query']}")
    assert png == (sweep_dir / SWEEP_PNG).read_bytes()
    text = tensorboard.get("/data/plugin/text/tags")
    expected_text = {"config/text_summary", "provenance/text_summary"}
    assert all(set(text[job]) == expected_text for job in JOBS), text


def test_the_plan_tells_jobs_that_would_share_a_dir():
    from logreg_exp.sweeps.callback import shared_job_dir
    from tests.helpers import compose_config

    jobs = [["updater.lr=0.1", "seed=1"], ["updater.lr=0.1", "seed=2"]]
    default = compose_config("hydra.sweep.dir=s", with_hydra=True)
    assert shared_job_dir(default, jobs) is None  # the job's number names its dir
    by_overrides = compose_config(
        "hydra.sweep.dir=s", "hydra.sweep.subdir=${hydra.job.override_dirname}",
        "hydra.job.config.override_dirname.exclude_keys=[seed]", with_hydra=True,
    )  # fmt: skip
    assert shared_job_dir(by_overrides, jobs) == (
        "hydra.sweep.subdir=${hydra.job.override_dirname} gives jobs #0 and #1 the same dir "
        "s/updater.lr=0.1; make it name each job (with ${hydra.job.num}, as the default does)"
    )
    assert shared_job_dir(by_overrides, [jobs[0], ["updater.lr=0.2", "seed=1"]]) is None
