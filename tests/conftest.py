"""Fixtures shared by the test modules (the helpers they import are in ``helpers.py``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO, compose_config

CLUSTER_SCRIPT = REPO / ".ci" / "slurm" / "cluster.sh"
SLURM_DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sbatch")

# The in-process tests train on tensors of a few thousand numbers, where torch's intra-op
# threads only add a hand-over at every operation; on a busy 2-core machine the threads wait
# for each other and the tests take several times as long. One thread, set before any job
# reads torch's default (devices.torch_default_threads); the CLI in a subprocess is untouched.
torch.set_num_threads(1)

# --- no process outlives the session -------------------------------------------------------
# Every process the tests start inherits this mark in its environment, so that one orphaned
# (its parent killed, itself re-parented to init) is still known as this session's.
SESSION_MARK = "LOGREG_EXP_TEST_SESSION"
os.environ[SESSION_MARK] = f"{os.getpid()}-{time.time_ns()}"
# processes that serve the pytest process itself and end with it
PYTEST_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver", "loky")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """A run of the suite or of a tier of it (no test paths named, no ``-n`` given) runs on
    one pytest-xdist worker per core: the quick tier's tests are in-process and CPU-bound,
    and most end-to-end tests wait on a subprocess of one thread, so one process leaves a core
    idle. Tests that share something outside the test (the SLURM cluster) carry an
    ``xdist_group`` mark and run one after another on one worker (``--dist loadgroup``).
    Naming test files or ``-p no:xdist`` runs them in this process."""
    whole = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    if (
        whole
        and config.pluginmanager.hasplugin("xdist")
        and not hasattr(config, "workerinput")  # an xdist worker itself
        and config.getoption("numprocesses", None) is None
        and config.getoption("dist", "no") == "no"
        and not config.getoption("collectonly")
        and not config.getoption("usepdb")
    ):
        config.option.numprocesses = "auto"
        config.option.dist = "loadgroup"


def processes_left(basetemp: Path) -> list[str]:
    """The processes this session started that still run: the pytest process's descendants,
    and any process with the session's mark in its environment or its tmp dir in its command
    line or working dir (an orphan); one line each."""
    import psutil

    me = psutil.Process()
    mine = {p.pid for p in me.children(recursive=True)}
    left = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.pid == me.pid or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        command = " ".join(proc.info["cmdline"] or [])
        if any(helper in command for helper in PYTEST_HELPERS):
            continue
        try:
            ours = (
                proc.pid in mine
                or str(basetemp) in command
                or proc.environ().get(SESSION_MARK) == os.environ[SESSION_MARK]
                or Path(proc.cwd()).is_relative_to(basetemp)
            )
        except (psutil.Error, OSError):  # another user's process, or one that just ended
            continue
        if ours:
            left.append(f"{proc.pid} {command}")
    return left


@pytest.fixture(scope="session", autouse=True)
def no_process_left(tmp_path_factory):
    """Fail the session (an error in the last test's teardown) if a process a test started
    outlives the tests: an orphaned trainer would hide the next orphan bug. Those left are
    killed after being named."""
    yield
    import psutil

    basetemp = tmp_path_factory.getbasetemp().resolve()
    deadline = time.monotonic() + 10  # a process being stopped gets a moment to end
    while (left := processes_left(basetemp)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for line in left:
        with contextlib.suppress(psutil.Error):
            psutil.Process(int(line.split()[0])).kill()
    if left:
        pytest.fail("processes outlived the tests (now killed):\n" + "\n".join(left))


@pytest.fixture
def config():
    """``config(*overrides)``: the composed config, as ``python -m logreg_exp`` would run it."""
    return compose_config


@pytest.fixture(scope="session")
def csv_run(tmp_path_factory):
    """A completed run of experiment=csv on 120 rows labelled 'neg' and 'pos' (so that the
    classes overlap a little), started in ``launch_dir`` with the relative dataset.path
    data.csv, and kept in ``launch_dir/run``: (run dir, CSV path)."""
    import os

    from tests.helpers import finished_run, write_csv

    launch_dir = tmp_path_factory.mktemp("launch")
    data = write_csv(launch_dir / "data.csv", n=120, separation=1.5)
    before = os.getcwd()
    os.chdir(launch_dir)
    try:
        run = finished_run(
            launch_dir / "run",
            "experiment=csv", "dataset.path=data.csv", "dataset.target=kind", "epochs=3",
            "tensorboard=false",
            launched_in=launch_dir,
        )  # fmt: skip
    finally:
        os.chdir(before)
    return run, data


@pytest.fixture(scope="session")
def cli_csv_run(tmp_path_factory):
    """A run of the real ``python -m logreg_exp experiment=csv`` on 200 rows of data.csv,
    started in ``launch_dir``, in ``launch_dir/run``: (run dir, CSV path). For the slow
    tier."""
    from tests.helpers import run_cli, write_csv

    launch_dir = tmp_path_factory.mktemp("cli_launch")
    data = write_csv(launch_dir / "data.csv", n=200, separation=1.5)
    proc = run_cli(
        "experiment=csv", "dataset.path=data.csv", "dataset.target=kind", "epochs=5",
        "hydra.run.dir=run", cwd=launch_dir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return launch_dir / "run", data


def cluster_unavailable() -> str | None:
    """Why a one-node SLURM cluster cannot start here, or None."""
    if not sys.platform.startswith("linux"):
        return "the test cluster runs on Linux"
    if os.geteuid() != 0:
        return "the test cluster starts its daemons as root (run the tests as root, as CI does)"
    missing = [name for name in SLURM_DAEMONS if shutil.which(name) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)}): run .ci/slurm/cluster.sh install"
    return None


def free_port_base(first: int = 6817) -> int:
    """The first of 4 consecutive free local ports from ``first`` on, in steps of 10: a
    cluster someone else started on this machine keeps its ports."""
    for base in range(first, first + 1000, 10):
        try:
            for port in range(base, base + 4):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no 4 free consecutive ports for the test cluster")


def cluster_problem(reason: str) -> None:
    """Skip the cluster's tests with ``reason``; fail them where CI requires the cluster
    (``SLURM_CI_REQUIRED=1``), so a broken cluster cannot pass for a missing one."""
    if os.environ.get("SLURM_CI_REQUIRED") == "1":
        pytest.fail(f"SLURM_CI_REQUIRED=1, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A one-node SLURM cluster (partition ``debug``): the one .ci/run started (its state dir
    in ``SLURM_CI_STATE``), else one started for this session by .ci/slurm/cluster.sh in a dir
    of its own under /tmp (its daemons' users must reach it) and stopped at the end; the
    environment that points commands at it (SLURM_CONF)."""
    running = os.environ.get("SLURM_CI_STATE")
    if running:
        yield {**os.environ, "SLURM_CONF": str(Path(running) / "etc" / "slurm.conf")}
        return
    reason = cluster_unavailable()
    if reason:
        cluster_problem(reason)
    state = Path(tempfile.mkdtemp(prefix="slurm-ci-", dir="/tmp"))
    env = {**os.environ, "SLURM_CI_PORT_BASE": str(free_port_base())}
    start = subprocess.run(
        [str(CLUSTER_SCRIPT), "start", str(state)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        if start.returncode != 0:
            cluster_problem(f"the test cluster did not start:\n{start.stderr[-3000:]}")
        yield {**os.environ, "SLURM_CONF": str(state / "etc" / "slurm.conf")}
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", str(state)], capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)
