"""hydra/launcher=vectorized: the grouping, the configs it derives, and whole sweeps through the
real CLI compared job by job with the same sweep run by the basic launcher."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from logreg_exp.config import without_hydra
from logreg_exp.hydra_compat import VERSION_BASE
from logreg_exp.registry import register_configs
from logreg_exp.sweeps.vectorized import ConfigDeriver, group_jobs, task_container
from tests.helpers import (
    can_mount_tmpfs,
    compose_config,
    read_metrics_json,
    run_cli,
    run_on_tmpfs,
    scalars,
)

TIMINGS = {"train_s", "val_s", "wall_s", "train_samples_per_s"}


def task(*overrides: str) -> dict:
    return task_container(compose_config(*overrides))


def test_jobs_that_differ_in_elementwise_values_form_one_group():
    tasks = [
        task("updater.lr=0.01"),
        task("updater.lr=0.1", "updater.momentum=0.9"),
        task("updater.lr=0.1", "batch_size=16"),  # another batch size: its own minibatches
        task("updater.lr=0.2", "batch_size=16"),
        task("updater.lr=0.3", "seed=1"),  # another seed: a column on data of its own
        task("updater.optimizer._target_=torch.optim.Rprop"),
        task("updater.optimizer._target_=torch.optim.Rprop", "updater.lr=0.1"),
        task("updater.lr=0.1", "val_batch_size=64"),  # not a column's: another group
        task("updater.lr=0.2", "val_batch_size=64"),
    ]
    groups, alone = group_jobs(tasks)
    assert [(g.jobs, g.differ) for g in groups] == [
        ([0, 1, 2, 3, 4], ["batch_size", "seed", "updater.lr", "updater.momentum"]),
        ([7, 8], ["updater.lr"]),
    ]
    assert 4 not in alone
    assert (
        alone[5]
        == alone[6]
        == ("updater.optimizer._target_=torch.optim.Rprop is not known to update elementwise")
    )


@pytest.mark.parametrize(
    "overrides",
    [(), ("updater=manual", "batch_size=16"), ("dtype=float64", "+extra=${batch_size}"),
     ("dataset=breast_cancer",)],
)  # fmt: skip
def test_a_task_container_is_the_config_less_hydra_resolved(overrides):
    """Grouping reads each job's config, less hydra, resolved as plain data (interpolations
    and enums included): node by node, as a resolved copy of the config less hydra is."""
    cfg = compose_config(*overrides)
    copied = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    expected = OmegaConf.to_container(copied, resolve=True, enum_to_str=True)
    assert task_container(cfg) == expected
    assert json.dumps(task_container(cfg), sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_adam_arguments_and_the_manual_updater_group_too():
    adam = "updater.optimizer._target_=torch.optim.Adam"
    groups, alone = group_jobs(
        [
            task(adam, "updater.lr=0.01", "+updater.optimizer.eps=1e-6"),
            task(adam, "updater.lr=0.1", "+updater.optimizer.eps=1e-7"),
            task("updater=manual", "updater.lr=0.1"),
            task("updater=manual", "updater.lr=0.2", "updater.weight_decay=0.1"),
        ]
    )
    assert [(g.jobs, g.differ) for g in groups] == [
        ([0, 1], ["updater.lr", "updater.optimizer.eps"]),
        ([2, 3], ["updater.lr", "updater.weight_decay"]),
    ]
    assert alone == {}


JOBS = [
    ["updater.lr=0.1", "batch_size=8"],
    ["updater.lr=1", "batch_size=8"],  # an int for a float key
    ["updater.lr=0.001", "batch_size=32"],
    ["updater.lr=1e-5", "batch_size=8", "tensorboard=false"],  # another key set
    ["updater.lr=0.5", "batch_size=8", "tensorboard=true"],
    ["updater.lr=0.5", "+updater.optimizer.nesterov=true", "updater.momentum=0.5"],  # an add
    ["updater=manual", "updater.lr=0.2"],  # a group choice
    ["updater=manual", "updater.lr=0.3"],
    ["updater=optim", "updater.lr=0.3"],  # another choice: another template
    ["updater=optim", "updater.lr=0.4"],
    ["device=cpu", "updater.lr=0.4", "updater.momentum=0.9"],
    ["device=cpu", "updater.lr=0.5", "updater.momentum=0"],
]


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_a_derived_config_is_what_hydra_composes():
    register_configs()
    with initialize_config_module(config_module="logreg_exp.conf", **VERSION_BASE):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            "config", ["hydra.sweep.dir=sweep", "hydra/launcher=vectorized"], RunMode.MULTIRUN
        )
        deriver = ConfigDeriver(loader.load_sweep_config)
        for overrides in JOBS:
            derived = deriver.for_launch(master, overrides)
            composed = loader.load_sweep_config(master, overrides)
            assert OmegaConf.to_yaml(derived) == OmegaConf.to_yaml(composed), overrides
            task = deriver.task_config(derived)
            assert OmegaConf.to_yaml(task) == OmegaConf.to_yaml(without_hydra(composed))
            assert OmegaConf.get_type(task) is OmegaConf.get_type(composed)
        assert sorted(deriver.templates) == [  # derived where it can be
            (("device", "cpu"), ("updater.lr", None), ("updater.momentum", None)),
            (("updater", "manual"), ("updater.lr", None)),
            (("updater", "optim"), ("updater.lr", None)),
            (("updater.lr", None), ("batch_size", None)),
            (("updater.lr", None), ("batch_size", None), ("tensorboard", None)),
        ]


def sweep(tmp_path: Path, name: str, *args: str, launcher: str | None = None):
    extra = [f"hydra/launcher={launcher}"] if launcher else []
    proc = run_cli("-m", *extra, *args, f"hydra.sweep.dir={tmp_path / name}", cwd=tmp_path)
    return proc, tmp_path / name


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name[0].isdigit()), key=str)


def assert_close(a, b, rel: float, where: str) -> None:
    """``a`` and ``b`` equal, their floats within ``rel``, in lists and dicts too (the test
    split's per-class metrics and reliability bins)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=rel, abs_tol=rel * 1e-3), (where, a, b)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), (where, a, b)
        for key in a:
            assert_close(a[key], b[key], rel, f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, rel, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def assert_same_jobs(basic: Path, vectorized: Path, rel: float, picture: bool = True) -> None:
    """Every job of the two sweeps: the same dir name, .hydra files, metrics within ``rel``,
    best.pt within ``rel``, the same TensorBoard tags and steps, a picture (where
    ``picture``)."""
    names = [p.name for p in job_dirs(basic)]
    assert names == [p.name for p in job_dirs(vectorized)] and names
    for name in names:
        a, b = basic / name, vectorized / name
        for file in ("config.yaml", "overrides.yaml"):
            assert (a / ".hydra" / file).read_text() == (b / ".hydra" / file).read_text()
        hydra_a = (a / ".hydra" / "hydra.yaml").read_text().replace(str(basic), "SWEEP")
        hydra_b = (b / ".hydra" / "hydra.yaml").read_text().replace(str(vectorized), "SWEEP")
        switches = "|".join(SWITCHES)
        launcher = re.compile(rf"(?m)^.*(launcher|vectorized|basic_launcher|{switches}).*\n")
        assert launcher.sub("", hydra_a) == launcher.sub("", hydra_b)
        ma, mb = read_metrics_json(a), read_metrics_json(b)
        assert ma.keys() == mb.keys()
        for key in ma.keys() - TIMINGS:
            assert_close(ma[key], mb[key], rel, f"{name} {key}")
        if ma["status"] == "completed":
            ca = torch.load(a / "best.pt", weights_only=True)
            cb = torch.load(b / "best.pt", weights_only=True)
            assert ca["epoch"] == cb["epoch"] and ca["monitor"] == cb["monitor"]
            for key, value in ca["state_dict"].items():
                torch.testing.assert_close(cb["state_dict"][key], value, rtol=rel, atol=rel)
            assert (b / "decision_boundary.png").is_file() == picture
        assert not_scalars(a) == not_scalars(b), name
        sa, sb = scalars(a), scalars(b)
        assert sa.keys() == sb.keys()
        for tag in sa:
            assert [s for s, _ in sa[tag]] == [s for s, _ in sb[tag]], (name, tag)
            for (_, va), (_, vb) in zip(sa[tag], sb[tag], strict=True):
                assert_close(va, vb, max(rel, 1e-6), f"{name} {tag}")
        log_a = re.sub(
            r"\[[^]]*\]|run dir \S+|--logdir \S+", "", (a / "logreg_exp.log").read_text()
        )
        log_b = re.sub(
            r"\[[^]]*\]|run dir \S+|--logdir \S+", "", (b / "logreg_exp.log").read_text()
        )
        assert log_a.count("\n") == log_b.count("\n") and "epoch" in log_b


def not_scalars(run_dir: Path) -> dict:
    """What a run's event files hold besides its curves: the config text, the HParams
    session's hparams and its end status, the pictures' tags and steps."""
    found: dict = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "text":
                    found[value.tag] = value.tensor.string_val[0].decode()
                elif plugin == "hparams":
                    data = hparams_metadata.parse_session_start_info_plugin_data
                    if value.tag == hparams_metadata.SESSION_START_INFO_TAG:
                        hparams = data(value.metadata.plugin_data.content).hparams
                        found["hparams"] = {k: str(v) for k, v in hparams.items()}
                    else:
                        end = hparams_metadata.parse_session_end_info_plugin_data
                        found["status"] = end(value.metadata.plugin_data.content).status
                elif value.HasField("image"):
                    found[value.tag] = (event.step, value.image.width, value.image.height)
    return found


SMALL = ["epochs=3", "dataset.n_samples=400"]
# the launcher's benchmarking switches (python -m benchmarks.bench --ablate)
SWITCHES = ("derive_configs", "lean_setup")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "rel"),
    [
        pytest.param(
            ["dtype=float64", "updater.lr=0.05,0.5", "updater.momentum=0,0.9"], 1e-9,
            marks=pytest.mark.hydra_lines,
        ),
        (["updater.lr=0.01,0.3", "updater.weight_decay=0,0.01"], 1e-4),
        pytest.param(
            ["dtype=float64", "updater=manual", "updater.lr=0.02,0.2", "updater.momentum=0.5"],
            1e-9, marks=pytest.mark.hydra_lines,
        ),
        (
            ["updater.optimizer._target_=torch.optim.Adam,torch.optim.AdamW",
             "updater.lr=0.01,0.1"],
            1e-4,
        ),
        (
            ["dtype=float64", "updater.optimizer._target_=torch.optim.RMSprop,torch.optim.Adagrad",
             "updater.lr=0.01,0.05"],
            1e-9,
        ),
    ],
    ids=["sgd-momentum-f64", "sgd-wd-f32", "manual-f64", "adam-adamw-f32", "rmsprop-adagrad-f64"],
)  # fmt: skip
def test_each_job_is_what_the_basic_launcher_makes_of_it(tmp_path, args, rel):
    basic, basic_dir = sweep(tmp_path, "basic", *SMALL, *args)
    assert basic.returncode == 0, basic.stderr
    vectorized, vectorized_dir = sweep(tmp_path, "vectorized", *SMALL, *args, launcher="vectorized")
    assert vectorized.returncode == 0, vectorized.stderr
    out = vectorized.stdout + vectorized.stderr
    assert "Traceback" not in out
    assert re.search(r"group 1: \d+ jobs .* differing in ", out)
    assert_same_jobs(basic_dir, vectorized_dir, rel)
    rows = {r["job"]: r for r in csv.DictReader((vectorized_dir / "summary.csv").open())}
    basic_rows = {r["job"]: r for r in csv.DictReader((basic_dir / "summary.csv").open())}
    assert rows.keys() == basic_rows.keys()
    assert {j: r["status"] for j, r in rows.items()} == {
        j: r["status"] for j, r in basic_rows.items()
    }
    job_lines = re.findall(r"\] (job \d+/\d+ \(#\d+\): .*)\n", out)
    basic_lines = re.findall(r"\] (job \d+/\d+ \(#\d+\): .*)\n", basic.stdout + basic.stderr)
    assert job_lines == basic_lines


@pytest.mark.slow
def test_each_piece_of_speed_machinery_turned_off_leaves_the_same_files(tmp_path):
    """Each benchmarking switch (derived configs, the lean set-up) changes
    how a job is composed, set up or dumped, not a file it leaves: the same .hydra files,
    metrics, best.pt, events, and pictures byte for byte."""
    args = [*SMALL, "dtype=float64", "updater.lr=0.05,0.5", "updater.momentum=0,0.9"]
    proc, on = sweep(tmp_path, "on", *args, launcher="vectorized")
    assert proc.returncode == 0, proc.stderr
    for switch in SWITCHES:
        proc, off = sweep(
            tmp_path, switch, *args, f"+hydra.launcher.{switch}=false", launcher="vectorized"
        )
        assert proc.returncode == 0, proc.stderr
        assert_same_jobs(on, off, 0.0)
        for a, b in zip(job_dirs(on), job_dirs(off), strict=True):
            png = "decision_boundary.png"
            assert (a / png).read_bytes() == (b / png).read_bytes(), (switch, a.name)


@pytest.mark.slow
def test_faults_stay_in_their_column(tmp_path):
    """A diverging lr ends its job diverged, as alone; a bad lr fails its job alone; the
    others give what they give without them, and the sweep exits 1 for the failed job."""
    args = [*SMALL, "dtype=float64", "updater.weight_decay=1"]
    proc, with_faults = sweep(
        tmp_path, "faults", *args, "updater.lr=0.01,1e20,-1,0.1", launcher="vectorized"
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    _, clean = sweep(tmp_path, "clean", *args, "updater.lr=0.01,0.1", launcher="vectorized")
    _, alone_dir = sweep(tmp_path, "alone", *args, "updater.lr=1e20")
    statuses = [read_metrics_json(j)["status"] for j in job_dirs(with_faults)]
    assert statuses == ["completed", "diverged", "failed", "completed"]
    diverged = read_metrics_json(job_dirs(with_faults)[1])
    by_itself = read_metrics_json(job_dirs(alone_dir)[0])
    assert (diverged["diverged_epoch"], diverged["diverged_step"]) == (
        by_itself["diverged_epoch"], by_itself["diverged_step"],
    )  # fmt: skip
    failed = read_metrics_json(job_dirs(with_faults)[2])
    assert failed["error"].startswith("updater.lr must be a number > 0")
    for faulty, fine in zip([0, 3], job_dirs(clean), strict=True):
        a, b = read_metrics_json(job_dirs(with_faults)[faulty]), read_metrics_json(fine)
        for key in a.keys() - TIMINGS:
            assert_close(a[key], b[key], 1e-9, key)


@pytest.mark.slow
def test_an_optimizer_not_known_to_be_elementwise_runs_one_job_at_a_time(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path, "rprop", *SMALL, "updater.optimizer._target_=torch.optim.Rprop",
        "updater.lr=0.01,0.1", launcher="vectorized",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (
        "alone, one at a time (#0,1): updater.optimizer._target_=torch.optim.Rprop is not "
        "known to update elementwise" in proc.stdout + proc.stderr
    )
    assert [read_metrics_json(j)["status"] for j in job_dirs(sweep_dir)] == ["completed"] * 2


def start_vectorized_sweep(tmp_path: Path, *args: str) -> subprocess.Popen:
    """``python -m logreg_exp -m hydra/launcher=vectorized ARGS`` into ``tmp_path/sweep``, in a
    session of its own (a signal to its group reaches it alone), its output unbuffered."""
    return subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "-m", "hydra/launcher=vectorized", *args,
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip


def signal_after_epoch_3(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to ``proc``'s session once it logs epoch 3 (of ``epochs=100000``), and
    wait for it to end."""
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if re.search(r"epoch +3/100000", line) or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_ctrl_c_stops_the_group_with_every_job_interrupted(tmp_path):
    proc = start_vectorized_sweep(
        tmp_path, "updater.lr=0.01,0.1,1", "epochs=100000", "dataset.n_samples=400"
    )
    signal_after_epoch_3(proc, signal.SIGINT)
    assert proc.returncode == 130
    for job in job_dirs(tmp_path / "sweep"):
        metrics = read_metrics_json(job)
        assert metrics["status"] == "interrupted" and metrics["epochs_run"] >= 3
        assert torch.load(job / "best.pt", weights_only=True)["epoch"] == metrics["best_epoch"]
        assert len(scalars(job)["val/acc"]) == metrics["epochs_run"]


@pytest.mark.slow
def test_an_optuna_search_launches_its_trials_in_groups(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path, "search", "hparams_search=optuna", "hydra.sweeper.n_trials=8",
        "hydra.sweeper.n_jobs=4", "~hydra.sweeper.params.batch_size", *SMALL,
        launcher="vectorized",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert out.count("group 1: 4 jobs") == 2  # two batches of 4 trials, each one group
    assert (sweep_dir / "optimization_results.yaml").is_file()
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"completed"}
    values = [json.loads((sweep_dir / r["dir"] / "metrics.json").read_text()) for r in rows]
    assert all(v["monitor"] == "val_acc" for v in values)


def lr_values(k: int) -> str:
    return ",".join(f"{0.01 + 0.99 * i / (k - 1):.6g}" for i in range(k))


@pytest.mark.slow
def test_a_full_disk_while_a_groups_files_are_written_fails_those_jobs_alone(tmp_path):
    """The disk fills while the group's files are written: each job that could not be
    written fails alone, in one line, as with the basic launcher; a job whose metrics.json
    says completed has all its files; no traceback, exit 1."""
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("cannot mount a private tmpfs here")
    proc = run_on_tmpfs(
        tmp_path, "size=3m", "-m", "hydra/launcher=vectorized",
        *SMALL, f"updater.lr={lr_values(40)}", "hydra.sweep.dir=disk/sweep", keep="sweep",
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out[-3000:]
    errors = re.findall(r"\] error: cannot write (.*): No space left on device\n", out)
    statuses = {}
    for job in job_dirs(tmp_path / "copy"):
        metrics = job / "metrics.json"
        statuses[job.name] = read_metrics_json(job)["status"] if metrics.exists() else None
        if statuses[job.name] == "completed":
            assert (job / "best.pt").is_file() and (job / "decision_boundary.png").is_file()
            assert not_scalars(job)["status"] == api_pb2.STATUS_SUCCESS, job.name
    completed = [name for name, status in statuses.items() if status == "completed"]
    assert len(statuses) == 40 and 0 < len(completed) < 40
    failed = sorted(set(statuses) - set(completed))
    # a line for each job that failed, naming it
    assert sorted(next(n for n in failed if n in line) for line in errors) == failed, errors


def test_a_big_group_may_hold_a_lock_on_each_of_its_job_dirs():
    import resource

    from logreg_exp.sweeps.vectorized import files_for_locks

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1300:
        pytest.skip("the hard open-file limit is too low to raise the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))
    try:
        files_for_locks(1000)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 1000
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
