"""Sweeps on a real one-node SLURM cluster (the ``slurm_cluster`` fixture starts it), through
the ``slurm`` preset as a cluster user runs it: a grid completes and sacct agrees; a job
requeued by ``scontrol requeue`` or by the signal SLURM sends ahead of a time limit resumes
and ends exactly as a job never stopped; a cancelled job and a killed one are waited for and
listed, even without accounting (sacct).

A requeued job waits about two minutes before SLURM starts it again (BeginTime); the tests
start it sooner, as an administrator may, with ``scontrol update JobId=.. StartTime=now``.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import (
    event_records,
    job_id,
    reached_epoch,
    read_metrics_json,
    wait_until,
    without_timings,
)

# one cluster for all: its tests run one after another on one xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.slurm, pytest.mark.xdist_group("slurm")]

# What a user sets for a small cluster on the command line: its partition, CPUs and memory.
ON_THE_CLUSTER = (
    "hydra/launcher=slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
)
SMALL = ("dataset.max_samples=400",)


def start_sweep(tmp_path: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "logreg_exp", "-m", *ON_THE_CLUSTER, *args,
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def ended(proc: subprocess.Popen, sweep: Path, returncode: int) -> tuple[str, dict[int, dict]]:
    """The sweep's output and its summary's rows by job number, once it has ended with
    ``returncode`` and without a traceback."""
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == returncode, out
    assert "Traceback" not in out
    return out, summary_rows(sweep)


def summary_rows(sweep: Path) -> dict[int, dict]:
    with (sweep / "summary.csv").open() as f:
        return {int(row["job"]): row for row in csv.DictReader(f)}


def sacct_states(env: dict, array_id: str) -> list[tuple[str, str]]:
    """(job id, state) of each record sacct keeps of an array's tasks, a requeued one's
    earlier runs included (``--duplicates``)."""
    out = subprocess.run(
        ["sacct", "--noheader", "--parsable2", "--duplicates", "--format=JobID,State",
         f"--jobs={array_id}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = [line.split("|") for line in out.splitlines() if line]
    # not the job steps; "CANCELLED by 0" is CANCELLED
    return [(job, state.split()[0]) for job, state in rows if "." not in job]


def sacct_until(env: dict, array_id: str, wanted, limit_s: float = 60) -> list[tuple[str, str]]:
    """``sacct_states``, asked again until ``wanted(states)`` or ``limit_s`` have passed: the
    accounting daemon records a task's end a moment after the task has ended."""
    deadline = time.monotonic() + limit_s
    while True:
        states = sacct_states(env, array_id)
        if wanted(states) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def job_process(env: dict, slurm_id: str) -> int:
    """The process id of the python that runs a SLURM job (on this one node)."""
    number = subprocess.run(  # an array task ("12_1") is a job of its own number
        ["squeue", "--noheader", "--format=%A", f"--jobs={slurm_id}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    out = subprocess.run(
        ["scontrol", "listpids", number], env=env, capture_output=True, text=True, check=True
    ).stdout
    for pid in (line.split()[0] for line in out.splitlines()[1:]):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"submitit.core._submit" in cmdline and not cmdline[0].endswith(b"srun"):
            return int(pid)
    raise AssertionError(f"no python process in job {slurm_id}: {out}")


def job_dir(sweep: Path, num: int) -> Path:
    return wait_until(lambda: next(iter(sweep.glob(f"{num:04d}_*")), None), f"job {num}'s dir")


class BeginTimeKicker:
    """Starts each requeued job of the cluster as soon as SLURM allows (two seconds after
    it saw it pending for its BeginTime), instead of the two minutes SLURM waits."""

    def __init__(self, env: dict) -> None:
        self.env, self.kicked = env, []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self) -> BeginTimeKicker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def run(self) -> None:
        seen: dict[str, float] = {}
        while not self.done.wait(0.5):
            out = subprocess.run(
                ["squeue", "--noheader", "--array", "--format=%i %T %r"],
                env=self.env, capture_output=True, text=True,
            ).stdout  # fmt: skip
            for line in out.splitlines():
                job, state, reason = [*line.split(None, 2), "", ""][:3]
                if state != "PENDING" or "BeginTime" not in reason:
                    continue
                if time.monotonic() - seen.setdefault(job, time.monotonic()) >= 2:
                    subprocess.run(
                        ["scontrol", "update", f"JobId={job}", "StartTime=now"],
                        env=self.env, capture_output=True,
                    )  # fmt: skip
                    self.kicked.append(job)
                    del seen[job]


def test_a_grid_sweep_completes_on_the_cluster_and_sacct_agrees(tmp_path, slurm_cluster):
    proc = start_sweep(
        tmp_path, slurm_cluster, "updater.lr=0.01,0.1", "batch_size=8,16", "epochs=2", *SMALL
    )
    sweep = tmp_path / "sweep"
    out, rows = ended(proc, sweep, 0)
    assert "Submitit 'slurm' sweep output dir" in out
    assert sorted(rows) == [0, 1, 2, 3]
    ids = set()
    for num, row in rows.items():
        job = sweep / row["dir"]
        metrics = read_metrics_json(job)
        assert row["status"] == metrics["status"] == "completed" and metrics["epochs_run"] == 2
        assert float(row["best_val_loss"]) == metrics["best_val_loss"]
        for name in ("best.pt", "last.pt", "logreg_exp.log", ".hydra/config.yaml"):
            assert (job / name).is_file(), (num, name)
        assert len(list(job.glob("events.out.tfevents.*"))) == 1
        ids.add(job_id(job))
    (array,) = {i.split("_")[0] for i in ids}
    expected = sorted((i, "COMPLETED") for i in ids)
    assert sorted(sacct_until(slurm_cluster, array, lambda s: sorted(s) == expected)) == expected


def test_jobs_requeued_by_scontrol_and_by_the_time_limit_signal_resume_exactly(
    tmp_path, slurm_cluster
):
    """Three identical jobs: job 0 runs through; job 1 is requeued by ``scontrol requeue``
    (SIGTERM, then SLURM runs it again), job 2 gets SIGUSR2, as SLURM sends it ahead of the
    time limit (``--signal=USR2@signal_delay_s``): it stops, and submitit requeues it. Both
    resume from their last.pt and end bit for bit as job 0."""
    sweep = tmp_path / "sweep"
    with BeginTimeKicker(slurm_cluster) as kicker:
        proc = start_sweep(
            tmp_path, slurm_cluster, "seed=0,0,0", "epochs=100", "updater.momentum=0.9",
            "hydra.launcher.timeout_min=5", *SMALL,
        )  # fmt: skip
        try:
            for num, command in ((1, ["scontrol", "requeue"]), (2, ["scancel", "--signal=USR2"])):
                job = job_dir(sweep, num)
                wait_until(lambda job=job: reached_epoch(job, 2), f"epoch 2 of job {num}")
                slurm_id = job_id(job)
                subprocess.run([*command, slurm_id], env=slurm_cluster, check=True)
            _, rows = ended(proc, sweep, 0)
        finally:
            proc.kill()
    assert [rows[n]["status"] for n in range(3)] == ["completed"] * 3
    whole = sweep / rows[0]["dir"]
    for num, signal_name in ((1, "SIGTERM"), (2, "SIGUSR2")):
        job = sweep / rows[num]["dir"]
        log = (job / "logreg_exp.log").read_text()
        assert f"interrupted by {signal_name}" in log and "resume=auto: going on with" in log
        assert without_timings(read_metrics_json(job)) == without_timings(read_metrics_json(whole))
        assert (job / "best.pt").read_bytes() == (whole / "best.pt").read_bytes()
        assert len(list(job.glob("events.out.tfevents.*"))) == 1
        assert event_records(job) == event_records(whole)
    assert sorted(kicker.kicked) == sorted(job_id(sweep / rows[n]["dir"]) for n in (1, 2))
    submitit_log = next((sweep / ".submitit").glob(f"{job_id(sweep / rows[2]['dir'])}/*_log.err"))
    assert "Caught signal SIGUSR2" in submitit_log.read_text()  # submitit's requeue
    array = job_id(whole).split("_")[0]
    requeued = [job_id(sweep / rows[num]["dir"]) for num in (1, 2)]

    def both_requeued_and_completed(states: list[tuple[str, str]]) -> bool:
        return all([s for i, s in states if i == j] == ["REQUEUED", "COMPLETED"] for j in requeued)

    states = sacct_until(slurm_cluster, array, both_requeued_and_completed)
    for slurm_id in requeued:
        assert [s for i, s in states if i == slurm_id] == ["REQUEUED", "COMPLETED"]


def test_cancelled_and_killed_jobs_are_waited_for_and_listed_without_accounting(
    tmp_path, slurm_cluster
):
    """Job 0 is cancelled (scancel: SIGTERM), job 1 killed (SIGKILL, as the out-of-memory
    killer does), job 2 completes. The sweep's sacct fails, as on a cluster without
    accounting: the queue tells the sweep that the two jobs ended."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text(
        "#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n"
    )
    (bin_dir / "sacct").chmod(0o755)
    env = {**slurm_cluster, "PATH": f"{bin_dir}:{slurm_cluster['PATH']}"}
    sweep = tmp_path / "sweep"
    proc = start_sweep(tmp_path, env, "epochs=3000,3001,3", *SMALL)
    try:
        job = job_dir(sweep, 0)
        wait_until(lambda: reached_epoch(job, 2), "epoch 2 of job 0")
        subprocess.run(["scancel", job_id(job)], env=slurm_cluster, check=True)
        job = job_dir(sweep, 1)
        wait_until(lambda: reached_epoch(job, 2), "epoch 2 of job 1")
        os.kill(job_process(slurm_cluster, job_id(job)), signal.SIGKILL)
        out, rows = ended(proc, sweep, 1)
    finally:
        proc.kill()
    assert [rows[n]["status"] for n in range(3)] == ["interrupted", "no metrics.json", "completed"]
    cancelled = read_metrics_json(sweep / rows[0]["dir"])
    assert cancelled["interrupted_by"] == "SIGTERM" and cancelled["epochs_run"] >= 2
    assert "job #1 (" in out and "ended without a result" in out
    assert "1 of 3 jobs failed" in out
    array = job_id(sweep / rows[0]["dir"]).split("_")[0]
    cancelled = (f"{array}_0", "CANCELLED")
    assert cancelled in sacct_until(slurm_cluster, array, lambda s: cancelled in s)
