"""Output dirs: what a run or sweep dir holds, and which runs may write there; through the real
CLI, runs and sweeps that would mix are refused in one line and leave the dir as it was."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from logreg_exp.output_dirs import (
    LOCK_FILE,
    Holds,
    OutputDirInUse,
    Start,
    claim_job_dir,
    claim_run_dir,
    claim_sweep_dir,
    inspect_run_dir,
    lock_dir,
    task_identity,
)
from logreg_exp.results import write_metrics
from tests.helpers import can_mount_tmpfs, compose_config, make_job, run_cli, run_on_tmpfs


def a_run(path, config, status=None):
    """A dir as a run of ``config`` leaves it: .hydra/config.yaml, and results if ``status``."""
    (path / ".hydra").mkdir(parents=True)
    OmegaConf.save(config, path / ".hydra" / "config.yaml")
    (path / "logreg_exp.log").write_text("old log\n")
    if status is not None:
        write_metrics(path, {"status": status})
        (path / "events.out.tfevents.1.host.1.0").write_bytes(b"old")
    return path


@pytest.fixture(scope="module")
def config():
    return compose_config("epochs=1")


@pytest.mark.parametrize(
    ("status", "overrides", "holds", "words"),
    [
        (None, [], Holds.NOTHING, ""),
        ("completed", [], Holds.FINISHED, "a completed run"),
        ("diverged", [], Holds.FINISHED, "a diverged run"),
        ("interrupted", [], Holds.SAME_UNFINISHED, "an unfinished run (interrupted)"),
        ("failed", ["overwrite=true"], Holds.SAME_UNFINISHED, "an unfinished run (failed)"),
        (
            "interrupted",
            ["batch_size=32", "seed=3"],
            Holds.OTHER,
            "a run of another config (batch_size, seed differ)",
        ),
    ],
)
def test_what_a_run_dir_holds(tmp_path, config, status, overrides, holds, words):
    a_run(tmp_path / "run", config, status)
    state = inspect_run_dir(tmp_path / "run", task_identity(compose_config("epochs=1", *overrides)))
    assert (state.holds, state.words) == (holds, words)


def test_overwrite_clears_what_a_run_wrote_and_nothing_else(tmp_path, config):
    run = a_run(tmp_path / "run", compose_config("seed=5"), "completed")
    (run / "notes.txt").write_text("mine\n")
    with pytest.raises(OutputDirInUse, match=r"holds a run of another config \(epochs, seed dif"):
        claim_run_dir(run, config, overwrite=False, log_file="logreg_exp.log")
    assert (run / "metrics.json").exists()
    claim_run_dir(run, config, overwrite=True, log_file="logreg_exp.log").release()
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE, "notes.txt"]


def test_a_dir_another_process_holds_is_refused_even_with_overwrite(tmp_path, config):
    lock = lock_dir(tmp_path / "run", "run dir")
    try:
        with pytest.raises(OutputDirInUse, match=rf"in use by another process \(pid {os.getpid()}"):
            claim_run_dir(tmp_path / "run", config, overwrite=True, log_file=None)
    finally:
        lock.release()
    claim_run_dir(tmp_path / "run", config, overwrite=False, log_file=None).release()


def a_resumable_run(path, config, status="interrupted"):
    a_run(path, config, status)
    (path / "last.pt").write_bytes(b"what the run goes on from")
    return path


@pytest.mark.parametrize(("resume", "start"), [("auto", Start.RESUME), ("true", Start.RESUME),
                                                ("false", Start.FRESH)])  # fmt: skip
def test_an_unfinished_run_of_this_config_resumes_unless_resume_false(
    tmp_path, config, resume, start
):
    run = a_resumable_run(tmp_path / "run", config)
    claim_run_dir(run, config, False, "logreg_exp.log", resume).release()
    claim = claim_run_dir(run, config, False, "logreg_exp.log", resume)
    claim.release()
    assert claim.start is start
    kept = {LOCK_FILE, "metrics.json", "last.pt", "events.out.tfevents.1.host.1.0", ".hydra",
            "logreg_exp.log"}  # fmt: skip
    assert {p.name for p in run.iterdir()} == (kept if start is Start.RESUME else {LOCK_FILE})


OVERWRITE_INSTEAD = "choose another hydra.run.dir, or add overwrite=true instead of resume=true"


@pytest.mark.parametrize(
    ("make", "held", "way_out"),
    [
        (lambda run, cfg: run.mkdir(), "nothing", "resume=auto starts a new one"),
        (lambda run, cfg: a_run(run, cfg, "interrupted"),
         "an unfinished run (interrupted), but it left no last.pt", "resume=auto starts it over"),
        (lambda run, cfg: a_resumable_run(run, cfg, "completed"), "a completed run",
         f"{OVERWRITE_INSTEAD} to delete it first"),
        (lambda run, cfg: a_resumable_run(run, compose_config("seed=4")),
         "an unfinished run of another config (epochs, seed differ)",
         f"run it with its own config to resume it, {OVERWRITE_INSTEAD} to delete it first"),
    ],
)  # fmt: skip
def test_resume_true_refuses_a_dir_with_nothing_to_resume(tmp_path, config, make, held, way_out):
    make(tmp_path / "run", config)
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    with pytest.raises(OutputDirInUse) as refused:
        claim_run_dir(tmp_path / "run", config, True, None, resume="true")
    assert str(refused.value) == (
        f"resume=true, but the run dir {tmp_path / 'run'} holds no unfinished run of this config "
        f"to resume ({held}); {way_out}"
    )
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.name != LOCK_FILE) == [
        p for p in before if p != LOCK_FILE
    ]  # overwrite=true deleted nothing


def test_an_unfinished_run_of_another_config_says_how_to_resume_it(tmp_path, config):
    run = a_resumable_run(tmp_path / "run", compose_config("seed=4"))
    with pytest.raises(OutputDirInUse, match=(
        r"holds an unfinished run of another config \(epochs, seed differ\); run it with its "
        r"own config to resume it, choose another hydra.run.dir, or add overwrite=true"
    )):  # fmt: skip
        claim_run_dir(run, config, False, None)


def test_a_job_of_a_sweep_that_goes_on_keeps_its_ended_run_and_resumes_its_unfinished_one(
    tmp_path, config
):
    ended = a_resumable_run(tmp_path / "0", config, "completed")
    for resume in ("auto", "true"):
        claim = claim_job_dir(ended, config, False, resume)
        claim.release()
        assert claim.start is Start.ENDED and (ended / "metrics.json").exists()
    unfinished = a_resumable_run(tmp_path / "1", config)
    claim = claim_job_dir(unfinished, config, False, "true")
    claim.release()
    assert claim.start is Start.RESUME
    claim = claim_job_dir(tmp_path / "2", config, False, "true")  # not started before: starts
    claim.release()
    assert claim.start is Start.FRESH


@pytest.mark.parametrize(
    ("choice", "why_not"),
    [
        ("hydra/launcher=basic", None),
        ("hydra/launcher=vectorized", "hydra/launcher=vectorized trains its jobs from the first "
         "epoch"),
        ("hydra/sweeper=optuna", "its sweeper (hydra_plugins.hydra_optuna_sweeper.optuna_sweeper."
         "OptunaSweeper) chooses its jobs as it goes"),
    ],
)  # fmt: skip
def test_a_sweep_that_stopped_early_goes_on_where_its_launcher_and_sweeper_allow(
    tmp_path, choice, why_not
):
    sweep_cfg = compose_config("epochs=1", choice, with_hydra=True)
    sweep = tmp_path / "s"

    def stopped_early():
        sweep.mkdir(exist_ok=True)
        OmegaConf.save(sweep_cfg, sweep / "multirun.yaml")
        make_job(sweep, 0, [], {"status": "completed"})
        make_job(sweep, 1, [], {"status": "interrupted"})
        (sweep / "summary.csv").write_text("written when it stopped\n")  # run_cli's finally

    stopped_early()
    claim = claim_sweep_dir(sweep, sweep_cfg, False, "logreg_exp.log")
    claim.release()
    if why_not is None:
        assert claim.start is Start.RESUME and len(list(sweep.glob("000*"))) == 2
        return
    assert claim.start is Start.FRESH and not list(sweep.glob("000*"))
    stopped_early()
    with pytest.raises(OutputDirInUse) as refused:
        claim_sweep_dir(sweep, sweep_cfg, False, "logreg_exp.log", "true")
    assert str(refused.value) == (
        f"resume=true, but the sweep dir {sweep} holds no unfinished sweep of this config to "
        f"resume (an unfinished sweep, but {why_not}); resume=auto starts it over"
    )


# Through the CLI.


def assert_refused(proc, message):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [message]


def snapshot(path):
    """Every file below ``path`` and its bytes, but the lock (it names the last holder)."""
    files = (p for p in sorted(path.rglob("*")) if p.is_file() and p.name != LOCK_FILE)
    return {p.relative_to(path): p.read_bytes() for p in files}


@pytest.mark.slow
def test_a_run_dir_holding_another_run_is_refused_until_overwrite(tmp_path):
    assert run_cli("updater.lr=0.1", "epochs=1", "hydra.run.dir=x", cwd=tmp_path).returncode == 0
    first = snapshot(tmp_path / "x")
    assert_refused(
        run_cli("batch_size=0", "hydra.run.dir=x", cwd=tmp_path),
        "error: the run dir x holds a run of another config (batch_size, epochs, updater.lr "
        "differ); choose another hydra.run.dir, or add overwrite=true to delete it first",
    )
    assert_refused(
        run_cli("updater.lr=0.1", "epochs=1", "hydra.run.dir=x", cwd=tmp_path),
        "error: the run dir x holds a completed run; choose another hydra.run.dir, or add "
        "overwrite=true to delete it first",
    )
    assert snapshot(tmp_path / "x") == first  # .hydra/overrides.yaml included
    proc = run_cli("epochs=2", "dataset.n_features=3", "overwrite=true", "hydra.run.dir=x",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "x"
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert not (run / "decision_boundary.png").exists()  # 3 features: none; the old one gone
    assert list(OmegaConf.load(run / ".hydra" / "overrides.yaml")) == [
        "epochs=2", "dataset.n_features=3", "overwrite=true",
    ]  # fmt: skip
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2
    assert "updater.lr=0.1" not in (run / "logreg_exp.log").read_text()


def interrupt_after(tmp_path, line, *args):
    """Run the CLI until it prints a line matching ``line``, then send it Ctrl-C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    try:
        for out in proc.stdout:
            if re.search(line, out):
                os.killpg(proc.pid, signal.SIGINT)
                break
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    return proc


@pytest.mark.slow
def test_an_unfinished_run_of_the_same_config_starts_over_with_resume_false(tmp_path):
    args = ["epochs=100000", "dataset.n_samples=400", "hydra.run.dir=x"]
    assert interrupt_after(tmp_path, r"epoch +3/100000", *args).returncode == 130
    assert json.loads((tmp_path / "x" / "metrics.json").read_text())["epochs_run"] >= 3
    args.append("resume=false")  # the default, resume=auto, goes on with it (test_resume.py)
    assert interrupt_after(tmp_path, r"epoch +1/100000", *args).returncode == 130
    metrics = json.loads((tmp_path / "x" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] < 3
    assert len(list((tmp_path / "x").glob("events.out.tfevents.*"))) == 1


SWEEP = ["-m", "seed=0,1", "epochs=1", "dataset.n_samples=200", "hydra.sweep.dir=s"]


@pytest.mark.slow
def test_a_sweep_dir_holding_another_sweep_is_refused_until_overwrite(tmp_path):
    assert run_cli(*SWEEP, cwd=tmp_path).returncode == 0
    first = snapshot(tmp_path / "s")
    message = (
        "error: the sweep dir s holds a finished sweep (it has its summary); choose another "
        "hydra.sweep.dir, or add overwrite=true to delete it first"
    )
    assert_refused(run_cli(*SWEEP, cwd=tmp_path), message)
    assert_refused(run_cli(*SWEEP, "seed=2,3", cwd=tmp_path), message)
    assert_refused(
        run_cli("epochs=1", "hydra.run.dir=s", cwd=tmp_path),
        "error: the run dir s holds a sweep; choose another hydra.run.dir, or add "
        "overwrite=true to delete it first",
    )
    assert snapshot(tmp_path / "s") == first
    proc = run_cli(*SWEEP[:-1], "seed=5", "overwrite=true", "hydra.sweep.dir=s", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = (tmp_path / "s" / "summary.csv").read_text()
    assert summary.count("\n") == 2 and "seed=5" in summary and "seed=0" not in summary
    assert sorted(p.name for p in (tmp_path / "s").iterdir() if p.is_dir()) == [
        "0000_dataset.n_samples=200,epochs=1,seed=5"
    ]


@pytest.mark.slow
def test_a_sweep_dir_in_use_by_a_running_sweep_is_refused(tmp_path):
    sweep = tmp_path / "s"
    sweep.mkdir()
    with (sweep / LOCK_FILE).open("a+") as held:  # as a running sweep holds it
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        assert_refused(
            run_cli(*SWEEP, "overwrite=true", cwd=tmp_path),
            f"error: the sweep dir s is in use by another process (pid {os.getpid()}); wait "
            "for it to end, or choose another dir",
        )
    assert sorted(p.name for p in sweep.iterdir()) == [LOCK_FILE]  # no plan, no multirun.yaml


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("touch f", ["hydra.run.dir=f"], "error: cannot use f as the run dir: it is a file, not a "
         "directory"),
        ("touch f", ["hydra.run.dir=f/run"], "error: cannot write the run dir f/run: Not a "
         "directory"),
        ("touch f", ["-m", "seed=1,2", "hydra.sweep.dir=f/s"], "error: cannot write the sweep "
         "dir f/s: Not a directory"),
        ("", [f"hydra.run.dir={'a' * 300}"], f"error: cannot write the run dir {'a' * 300}: File "
         "name too long"),
    ],
)  # fmt: skip
def test_a_run_dir_that_cannot_be_made_is_one_line(tmp_path, setup, args, message):
    if setup:
        subprocess.run(setup, shell=True, cwd=tmp_path, check=True)
    assert_refused(run_cli(*args, "epochs=1", cwd=tmp_path), message)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["", "-m"])
def test_a_read_only_output_dir_is_one_line(tmp_path, mode):
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("needs unshare and a tmpfs mount in a user namespace")
    args = ["-m", "seed=1,2", "hydra.sweep.dir=disk/out"] if mode else ["hydra.run.dir=disk/out"]
    what = "sweep dir" if mode else "run dir"
    assert_refused(
        run_on_tmpfs(tmp_path, "ro", *args, "epochs=1"),
        f"error: cannot write the {what} disk/out: Read-only file system",
    )


@pytest.mark.slow
def test_a_sweep_dir_with_wrong_typed_files_is_refused_in_one_line_and_overwritten(tmp_path):
    sweep = tmp_path / "s"
    for num in (0, 1):
        make_job(sweep, num, [f"seed={num}"], {"status": "completed", "monitor": "val_loss"})
    job0 = sweep / "0000_seed=0" / ".hydra" / "hydra.yaml"
    job0.write_text(job0.read_text().replace("num: 0", "num: [0]"))  # a list for a number
    (sweep / "0001_seed=1" / ".hydra" / "overrides.yaml").write_text("5\n")  # an int for a list
    (sweep / "multirun.yaml").write_text("hydra:\n  overrides:\n    task: 5\n  sweeper: [1]\n")
    assert_refused(
        run_cli(*SWEEP, cwd=tmp_path),
        "error: the sweep dir s holds a sweep whose config cannot be read; choose another "
        "hydra.sweep.dir, or add overwrite=true to delete it first",
    )
    (sweep / "summary.md").write_text("old\n")  # a finished sweep's
    proc = run_cli(*SWEEP, "overwrite=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (sweep / "summary.csv").read_text().count(",completed,") == 2


def test_a_claim_deletes_the_temporary_files_of_a_killed_write_and_keeps_the_run(tmp_path, config):
    run = a_resumable_run(tmp_path / "run", config)
    for name in (".last.pt.x1.tmp", ".best.pt.x2.tmp", ".metrics.json.x3.tmp"):
        (run / name).write_bytes(b"half")
    claim = claim_run_dir(run, config, False, "logreg_exp.log")
    claim.release()
    assert claim.start is Start.RESUME
    assert sorted(p.name for p in run.glob(".*.tmp")) == []
    assert (run / "last.pt").read_bytes() == b"what the run goes on from"


def test_a_run_that_failed_before_a_result_takes_back_only_what_it_made(tmp_path, config):
    from logreg_exp.output_dirs import undo_failed_start

    run = tmp_path / "a" / "b" / "run"
    claim = claim_run_dir(run, config, False, "logreg_exp.log")
    (run / ".hydra").mkdir()
    (run / "logreg_exp.log").write_text("")
    undo_failed_start(claim, run, "logreg_exp.log")
    assert list(tmp_path.iterdir()) == []  # the dirs it created, empty, are gone
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep\n")
    claim = claim_run_dir(mine, config, False, "logreg_exp.log")
    undo_failed_start(claim, mine, "logreg_exp.log")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    started = a_resumable_run(tmp_path / "started", config)
    claim = claim_run_dir(started, config, False, "logreg_exp.log")
    undo_failed_start(claim, started, "logreg_exp.log")  # it has results: they stay
    assert (started / "last.pt").exists() and (started / ".hydra").exists()
