"""Bad input and runs that end early, through the real CLI: a clear line, a non-zero exit,
and nothing already written lost."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import (
    can_mount_tmpfs,
    children_of,
    run_cli,
    run_on_tmpfs,
    scalars,
    without_timings,
    write_csv,
)

pytestmark = pytest.mark.slow


def assert_user_error(proc, message):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["batch_size=0"], "error: batch_size must be a positive integer, got 0"),
        (["updater.lr=-1"], "error: updater.lr must be a number > 0"),
        (["dataset.label_flip=0.7"], "error: dataset.label_flip must be in [0, 0.5), got 0.7"),
        (["updater=foo"], "Could not find 'updater/foo'"),
        (["epochs=abc"], "Value 'abc' of type 'str' could not be converted to Integer"),
        (["epoch=3"], "Key 'epoch' not in 'JobConfig'"),
        (["dataset=csv", "dataset.path=nope.csv", "dataset.target=y"], "nope.csv': no such file"),
        (["dataset=csv"], "error: dataset.path is required for dataset=csv"),
        (["dataset.n_samples=6"], "error: dataset.n_samples=6: too few samples to split; the"),
        (["seed=-1"], "error: seed must be an integer from 0 to 2**63 - 1, got -1"),
        (
            ["dataset.n_samples=100000000000", "dataset.n_features=100"],
            "error: dataset.n_samples=100000000000: this run needs about 73.5 TiB of memory",
        ),
        (["batch_size=9223372036854775808"], "error: batch_size must fit in 64 bits"),
        (
            ["updater.optimizer._target_=torch.optim.Adamm"],
            "error: updater.optimizer._target_=torch.optim.Adamm is not allowed; allowed: "
            "torch.optim.ASGD, torch.optim.Adadelta,",
        ),
        (
            ["loss._target_=torch.nn.BCELoss"],
            "error: loss._target_=torch.nn.BCELoss is not allowed (it expects probabilities",
        ),
        (
            ["allow_targets=[torch.optim.LBFGS]", "updater.optimizer._target_=torch.optim.LBFGS"],
            "error: updater.optimizer._target_=torch.optim.LBFGS: its step() needs a closure",
        ),
    ],
)
def test_bad_input_is_one_clear_line_without_traceback(tmp_path, args, message):
    proc = run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)
    assert_user_error(proc, message)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_config_cannot_call_what_the_project_does_not_allow(tmp_path):
    victim = tmp_path / "notes.txt"
    victim.write_text("keep me\n")
    proc = run_cli(
        "+updater.optimizer.foo._target_=builtins.open", f"+updater.optimizer.foo.file={victim}",
        "+updater.optimizer.foo.mode=w", "hydra.run.dir=run", cwd=tmp_path,
    )  # fmt: skip
    assert_user_error(
        proc,
        "error: updater.optimizer.foo._target_: a _target_ is not allowed here; this project "
        "instantiates loss._target_ and updater.optimizer._target_ only",
    )
    assert victim.read_text() == "keep me\n"
    proc = run_cli("loss._target_=sys.exit", "hydra.run.dir=run2", cwd=tmp_path)
    assert_user_error(proc, "error: loss._target_=sys.exit is not allowed; allowed: torch.nn.")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_without_cuda_suggests_cpu_or_auto(tmp_path):
    assert_user_error(
        run_cli("device=cuda", cwd=tmp_path),
        "error: device=cuda: CUDA is not available on this machine; use device=cpu or device=auto",
    )
    proc = run_cli("device=auto", "epochs=1", cwd=tmp_path)
    assert proc.returncode == 0 and "device=auto chose cpu" in proc.stdout


def test_full_error_env_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "logreg_exp", "batch_size=0"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_a_bad_value_does_not_touch_an_earlier_run_in_the_same_dir(tmp_path):
    assert run_cli("epochs=1", "hydra.run.dir=run", cwd=tmp_path).returncode == 0
    before = {p: (tmp_path / "run" / p).read_bytes() for p in FILES_OF_A_RUN}
    assert_user_error(run_cli("epochs=0", "hydra.run.dir=run", cwd=tmp_path), "holds a run of")
    assert_user_error(
        run_cli("epochs=0", "hydra.run.dir=run", "overwrite=true", cwd=tmp_path),
        "error: epochs must be an integer >= 1, got 0",
    )  # checked before the dir is cleared
    assert {p: (tmp_path / "run" / p).read_bytes() for p in FILES_OF_A_RUN} == before


FILES_OF_A_RUN = ("metrics.json", "best.pt", ".hydra/overrides.yaml", ".hydra/config.yaml")


def test_divergence_stops_the_run_and_keeps_what_was_logged(tmp_path):
    # weight decay 20.5 at lr 0.1 multiplies the weights by -1.05 a step: overflow in epoch 6
    proc = run_cli(
        "updater.lr=0.1", "updater.weight_decay=20.5", "epochs=12", "hydra.run.dir=run",
        cwd=tmp_path,
    )  # fmt: skip
    assert_user_error(proc, "error: training diverged: non-finite loss at epoch")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    epoch, step = metrics["diverged_epoch"], metrics["diverged_step"]
    assert metrics["status"] == "diverged" and epoch >= 2
    assert (epoch - 1) * 313 < step <= epoch * 313  # 2500 points in batches of 8: 313 a epoch
    assert f"epoch {epoch}, step {step}" in proc.stderr
    assert metrics["epochs_run"] == epoch - 1
    found = scalars(tmp_path / "run")
    assert [s for s, _ in found["val/loss"]] == list(range(1, epoch))
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def strict_json(text):
    """JSON as strict readers (JavaScript's JSON.parse) take it: no NaN, no Infinity."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_model_that_overflows_in_an_epochs_last_step_diverges(tmp_path):
    # one minibatch an epoch: epoch 1 ends with huge finite weights, epoch 2's one step sends
    # them to inf after its loss was taken, so only its validation loss is not finite
    proc = run_cli(
        "dataset.n_samples=40", "batch_size=64", "updater.lr=1", "updater.weight_decay=1e30",
        "epochs=2", "hydra.run.dir=run", cwd=tmp_path,
    )  # fmt: skip
    message = "error: training diverged: non-finite val_loss at epoch 2, after step 2"
    assert_user_error(proc, message)
    assert "Warning" not in proc.stderr
    metrics = strict_json((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["diverged_on"] == "val_loss"
    assert metrics["epochs_run"] == 1 and metrics["best_epoch"] == 1
    assert all(v is not None for k, v in metrics.items() if k.startswith(("best_", "final_")))
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert [step for step, _ in scalars(tmp_path / "run")["val/loss"]] == [1]


def test_ctrl_c_stops_soon_and_leaves_a_consistent_run(tmp_path):
    # as a terminal sends it: SIGINT to the whole process group
    proc = subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "epochs=100000", "hydra.run.dir=run"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:  # a line an epoch; wait for the third
            if re.search(r"epoch +3/100000", line) or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        proc.wait(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    print(f"stopped {stopped_after:.2f} s after SIGINT")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] >= 3
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert ckpt["epoch"] == metrics["best_epoch"]
    found = scalars(tmp_path / "run")
    assert len(found["val/acc"]) == metrics["epochs_run"]


def test_a_single_run_starts_no_process_so_kill_leaves_none_behind(tmp_path):
    # A process of the run's own (the picture was once drawn in one) outlives a kill, and
    # its executor's pipe, closed twice at exit, printed "Exception ignored ... Bad file
    # descriptor" about one run in twelve; a run with no child has neither.
    proc = subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "epochs=100000", "dataset.n_samples=400",
         "hydra.run.dir=run"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        for line in proc.stdout:
            if re.search(r"epoch +2/100000", line):  # imports done, training, TensorBoard open
                break
        assert children_of(proc.pid) == set()
        proc.terminate()
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode in (-signal.SIGTERM, 130)  # killed, or stopped as by Ctrl-C


def test_ctrl_c_as_the_last_epoch_ends_leaves_files_and_exit_status_that_agree(tmp_path):
    # the SIGINT lands in the final writes (best.pt, the picture, TensorBoard, metrics.json)
    # or after them: training is over, so the run completes, and says so in both
    proc = subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "epochs=2", "hydra.run.dir=run"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    try:
        for line in proc.stdout:
            if re.search(r"epoch 2/2", line):
                time.sleep(0.1)  # into the writes, where the picture takes longest
                os.killpg(proc.pid, signal.SIGINT)
                break
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr
    status = json.loads((tmp_path / "run" / "metrics.json").read_text())["status"]
    assert (proc.returncode, status) == (0, "completed"), stderr


def run_on_a_small_disk(tmp_path, size, *args):
    """``python -m logreg_exp ARGS`` with hydra.run.dir on a tmpfs of ``size``; the run dir
    is copied out to ``tmp_path/copy``."""
    return run_on_tmpfs(tmp_path, f"size={size}", *args, "hydra.run.dir=disk/run", keep="run")


# full in training (the log file and the event file) / at the end (the picture)
@pytest.mark.parametrize(("size", "epochs"), [("24k", 30), ("64k", 2)])
def test_a_full_disk_is_one_line_naming_the_file_and_never_a_completed_run(tmp_path, size, epochs):
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("needs unshare and a tmpfs mount in a user namespace")
    proc = run_on_a_small_disk(tmp_path, size, f"epochs={epochs}", "dataset.n_samples=400")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert re.fullmatch(r"error: cannot write disk/run/\S+: No space left on device", errors[0])
    metrics_file = tmp_path / "copy" / "metrics.json"
    if metrics_file.exists():  # if there was room for it: the failure, with the same line
        metrics = json.loads(metrics_file.read_text())
        assert metrics["status"] == "failed" and f"error: {metrics['error']}" == errors[0]


def test_csv_with_too_few_rows_names_the_file(tmp_path):
    (tmp_path / "tiny.csv").write_text("f1,kind\n1,pos\n2,neg\n3,pos\n")
    proc = run_cli("dataset=csv", "dataset.path=tiny.csv", "dataset.target=kind", cwd=tmp_path)
    assert_user_error(proc, "error: tiny.csv: too few samples to split; the")


HUGE = "a,b,label\n" + "".join(f"{(-1) ** i * 1e200},{i},{i % 2}\n" for i in range(20))


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"f1,kind\n1,pos\n\xff2,neg\n", [], "error: d.csv line 3, byte 1: b'\\xff' is not UTF-8"),
        (None, [], "error: dataset.path='d.csv' is a directory, not a CSV file"),
        ("f1,kind\n", ["dataset.delimiter=ab"], "error: dataset.delimiter must be one character"),
        (
            "f1,kind\n1,pos\n1e39,neg\n", [],
            "error: d.csv line 3, column 'f1': '1e39' does not fit in float32",
        ),
        (
            HUGE.replace("label", "kind"), ["dtype=float64"],
            "error: d.csv: column 'a' cannot be standardized: its values (up to 1e+200 in "
            "magnitude) overflow float64",
        ),
        (
            "f1,f1,kind\n1,2,pos\n", [],
            "error: d.csv line 1: the column name 'f1' appears twice (columns 1 and 2)",
        ),
    ],
)  # fmt: skip
def test_csv_that_cannot_be_read_or_used_is_one_line(tmp_path, content, args, message):
    path = tmp_path / "d.csv"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    proc = run_cli(
        "experiment=csv", "dataset.path=d.csv", "dataset.target=kind", *args, cwd=tmp_path
    )
    assert_user_error(proc, message)


def test_csv_dataset_trains_and_is_deterministic(tmp_path):
    write_csv(tmp_path / "data.csv")
    args = ["experiment=csv", "dataset.path=data.csv", "dataset.target=kind", "epochs=4"]
    first = run_cli(*args, "hydra.run.dir=a", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "labels 'neg' -> 0, 'pos' -> 1" in first.stdout
    assert run_cli(*args, "hydra.run.dir=b", cwd=tmp_path).returncode == 0
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert a["best_val_acc"] > 0.95
    assert without_timings(a) == without_timings(b)


def test_experiment_breast_cancer_reaches_095(tmp_path):
    proc = run_cli("experiment=breast_cancer", "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best_val_acc"] >= 0.95
    assert "'malignant' -> 0, 'benign' -> 1" in proc.stdout


def test_a_failing_job_does_not_stop_the_sweep_but_fails_the_command(tmp_path):
    write_csv(tmp_path / "good.csv")
    missing = tmp_path / "data" / "missing.csv"
    proc = run_cli(
        "-m", "dataset=csv", "dataset.target=kind", "epochs=2",
        f"dataset.path={tmp_path / 'good.csv'},{missing},{tmp_path / 'good.csv'}",
        "hydra.sweep.dir=sweep", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    jobs = sorted((tmp_path / "sweep").iterdir(), key=lambda p: p.name)
    job_dirs = [p for p in jobs if p.is_dir()]
    assert [p.name.split("_")[0] for p in job_dirs] == ["0000", "0001", "0002"]  # "/" flattened
    statuses = [json.loads((p / "metrics.json").read_text()) for p in job_dirs]
    assert [s["status"] for s in statuses] == ["completed", "failed", "completed"]
    assert statuses[1]["error"] == f"dataset.path='{missing}': no such file"
    assert "1 of 3 jobs failed" in proc.stdout + proc.stderr
    with (tmp_path / "sweep" / "summary.csv").open() as f:
        rows = {row["job"]: row for row in csv.DictReader(f)}
    assert {job: row["status"] for job, row in rows.items()} == {
        "0": "completed", "1": "failed", "2": "completed",
    }  # fmt: skip


def test_runs_started_in_the_same_second_get_their_own_dirs(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "logreg_exp", "epochs=1"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(list((tmp_path / "outputs").glob("*/*/metrics.json"))) == 2
