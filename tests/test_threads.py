"""A single run's torch threads, chosen for the problem (``devices.threads_for_problem``) and
logged in its first line, through the real CLI."""

import re

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow


def threads_line(stdout: str) -> str:
    (line,) = [ln for ln in stdout.splitlines() if "torch thread" in ln]
    return line


def test_the_exercise_trains_on_one_thread_unless_threads_says_otherwise(tmp_path):
    proc = run_cli("epochs=1", "hydra.run.dir=default", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r", 1 torch thread, ", threads_line(proc.stdout))

    proc = run_cli("epochs=1", "threads=2", "hydra.run.dir=two", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r", 2 torch threads, ", threads_line(proc.stdout))
    assert ", 2 torch threads, " in (tmp_path / "two" / "logreg_exp.log").read_text()
