"""Stop signals from a command's first instant to its last, through the real CLI: Ctrl-C while
a command imports, SIGHUP, a signal once a sweep's summary is out, and the temporary files a
killed write leaves."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import read_metrics_json, run_cli, wait_until

pytestmark = pytest.mark.slow

FAST = ("dataset.n_samples=400", "tensorboard=false")


def start(tmp_path: Path, module: str, *args: str) -> subprocess.Popen:
    """``python -m MODULE ARGS`` in a session of its own (a signal to its group reaches it
    alone, as a terminal's Ctrl-C reaches its foreground job), its output unbuffered."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip


def catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process ``pid`` has a handler of its own for ``sig`` (/proc's SigCgt)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) >> (sig - 1) & 1)


def ended(proc: subprocess.Popen, limit_s: float = 120) -> tuple[int, str]:
    """The exit status and everything it printed, stdout then stderr."""
    try:
        out, err = proc.communicate(timeout=limit_s)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, out + err


def interrupt_while_it_imports(tmp_path: Path, module: str, *args: str, delay: float) -> tuple:
    """SIGINT ``delay`` s after the interpreter is up (Python catches SIGINT itself from
    then): the command is importing Hydra or torch."""
    proc = start(tmp_path, module, *args)
    wait_until(lambda: catches(proc.pid, signal.SIGINT) or proc.poll() is not None, "python")
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)
    return ended(proc)


@pytest.mark.hydra_lines
@pytest.mark.parametrize("delay", [0.25, 0.6])
def test_ctrl_c_while_the_entrypoint_imports_is_one_line_and_130(tmp_path, delay):
    code, out = interrupt_while_it_imports(
        tmp_path, "logreg_exp", "epochs=100000", *FAST, "hydra.run.dir=run", delay=delay
    )
    assert code == 130 and "Traceback" not in out, out
    if (tmp_path / "run").exists():  # it reached the run: the run says so in its files
        assert read_metrics_json(tmp_path / "run")["status"] == "interrupted"


# (``summary`` imports no torch: it reads a missing dir's error in a fifth of a second)
@pytest.mark.parametrize("module", ["logreg_exp.evaluate", "logreg_exp.predict"])
def test_ctrl_c_while_a_command_imports_torch_is_one_line_and_130(tmp_path, module):
    args = {"logreg_exp.predict": ["run", "new.csv"]}
    code, out = interrupt_while_it_imports(tmp_path, module, *args.get(module, ["run"]), delay=0.25)
    assert (code, out) == (130, "interrupted\n")


def wait_for_line(proc: subprocess.Popen, pattern: str, limit_s: float = 120) -> str:
    """Read ``proc``'s stdout up to the first line that ``pattern`` (a regex) matches."""
    deadline = time.monotonic() + limit_s
    for line in proc.stdout:
        if re.search(pattern, line):
            return line
        assert time.monotonic() < deadline, f"no {pattern!r} in {limit_s} s"
    raise AssertionError(f"it ended before {pattern!r}")


@pytest.mark.hydra_lines
@pytest.mark.parametrize("launcher", ["basic", "vectorized"])
def test_ctrl_c_once_the_summary_is_out_leaves_a_complete_sweep_complete(tmp_path, launcher):
    """Ctrl-C again and again from the summary's first line to the exit: the sweep's files say
    it completed, and so does its exit status; no traceback from an exit handler."""
    chosen = ["hydra/launcher=vectorized"] if launcher == "vectorized" else []
    proc = start(
        tmp_path, "logreg_exp", "-m", *chosen, "updater.lr=0.1,0.2", "epochs=2", *FAST,
        "hydra.sweep.dir=sweep",
    )  # fmt: skip
    wait_for_line(proc, r"^Sweep ")
    while proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.005)
    code, out = ended(proc)
    assert code == 0 and "Traceback" not in out and "interrupted" not in out, out
    assert (tmp_path / "sweep" / "summary.md").is_file()


def test_sighup_stops_a_sweep_as_sigterm_does(tmp_path):
    """A closed terminal: the job stops with its files, the sweep writes its summary."""
    proc = start(
        tmp_path, "logreg_exp", "-m", "seed=0,1", "epochs=100000", *FAST, "hydra.sweep.dir=sweep"
    )
    wait_for_line(proc, r"epoch +3/100000")
    os.killpg(proc.pid, signal.SIGHUP)
    code, out = ended(proc)
    assert code == 130 and "Traceback" not in out, out
    job = next((tmp_path / "sweep").glob("0000_*"))
    metrics = read_metrics_json(job)
    assert (metrics["status"], metrics["interrupted_by"]) == ("interrupted", "SIGHUP")
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert "interrupted" in summary and "not started" in summary


def test_a_resumed_run_leaves_no_temporary_file_of_a_killed_write(tmp_path):
    """A run killed as it wrote its last files: metrics.json never came, and the writes cut
    short left their temporary files. The next run resumes there and removes them."""
    args = ("epochs=2", *FAST, "hydra.run.dir=run")
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    run = tmp_path / "run"
    (run / "metrics.json").unlink()
    leftovers = [".last.pt.k1x2.tmp", ".best.pt.a9b8.tmp", ".metrics.json.zz01.tmp"]
    for name in leftovers:
        (run / name).write_bytes(b"half a file")
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "going on with the unfinished run" in proc.stdout + proc.stderr
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert sorted(p.name for p in run.glob(".*.tmp")) == []
