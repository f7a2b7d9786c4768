"""A group's files written by forked processes: the shares, the results in job order, and the
faults: a child that dies, a child's error, a stop signal, the parent stopped hard."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

from logreg_exp.errors import OutputError
from logreg_exp.tracking.events import EVENTS_PREFIX
from logreg_exp.writer_processes import shares, write_in_processes, writer_processes

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_shares_are_contiguous_and_even():
    assert shares(10, 3) == [range(0, 4), range(4, 7), range(7, 10)]
    assert shares(2, 4) == [range(0, 1), range(1, 2)]
    assert shares(0, 2) == []
    assert [len(s) for s in shares(100, 8)] == [13] * 4 + [12] * 4


@pytest.mark.parametrize(
    ("requested", "jobs", "cores", "on_cpu", "expected"),
    [
        (None, 100, 2, True, 2),
        (None, 100, 16, True, 6),  # at least 16 jobs a process
        (None, 20, 2, True, 1),
        (None, 1000, 16, True, 8),  # at most 8
        (None, 100, 1, True, 1),
        (None, 100, 2, False, 1),  # a GPU's results do not survive a fork
        (1, 100, 16, True, 1),
        (4, 100, 2, True, 4),  # asked for: as asked
        (4, 3, 2, True, 3),  # not more than jobs
        (4, 100, 2, False, 1),
    ],
)  # fmt: skip
def test_how_many_processes_write(requested, jobs, cores, on_cpu, expected):
    assert writer_processes(requested, jobs, cores, on_cpu, "linux") == expected


def test_elsewhere_than_linux_one_process_writes_unless_asked():
    assert writer_processes(None, 100, 8, True, "darwin") == 1
    assert writer_processes(2, 100, 8, True, "darwin") == 2


def writing_into(tmp_path: Path, fault=None):
    """A write function that leaves a file per job, naming the process, and reports k * 10;
    ``fault(k)`` runs first in a child."""
    parent = os.getpid()

    def write(share, report):
        for k in share:
            if os.getpid() != parent and fault is not None:
                fault(k)
            (tmp_path / f"{k}").write_text(str(os.getpid()))
            report(k, k * 10)

    return write


def job_dir_of(tmp_path: Path):
    def job_dir(k: int) -> Path:
        return tmp_path / f"job{k}"

    return job_dir


def test_each_share_is_written_by_its_own_process_and_the_results_come_in_job_order(tmp_path):
    results = write_in_processes(10, 3, writing_into(tmp_path), job_dir_of(tmp_path))
    assert results == [k * 10 for k in range(10)]
    writers = [int((tmp_path / f"{k}").read_text()) for k in range(10)]
    assert writers[:4] == [os.getpid()] * 4  # the first share here
    assert len({writers[4], writers[7]}) == 2 and os.getpid() not in writers[4:]
    assert writers[4:7] == [writers[4]] * 3 and writers[7:] == [writers[7]] * 3


def test_one_process_forks_nothing(tmp_path):
    results = write_in_processes(5, 1, writing_into(tmp_path), job_dir_of(tmp_path))
    assert results == [0, 10, 20, 30, 40]
    assert {(tmp_path / f"{k}").read_text() for k in range(5)} == {str(os.getpid())}


def test_the_jobs_a_dead_child_did_not_finish_are_written_here(tmp_path, caplog):
    """Killed in its third job (after starting that job's event file): its first two jobs
    stand as it wrote them, the rest are written here, and its event file of the unfinished
    job is gone."""
    job_dir = job_dir_of(tmp_path)

    def die_in_the_third(k):
        if k == 7:
            job_dir(k).mkdir()
            (job_dir(k) / f"{EVENTS_PREFIX}0000000001.host.{os.getpid()}.1").write_bytes(b"x")
            (job_dir(k) / f"{EVENTS_PREFIX}0000000001.host.{os.getpid() + 1}.1").write_bytes(b"")
            os.kill(os.getpid(), signal.SIGKILL)

    with caplog.at_level(logging.WARNING):
        results = write_in_processes(10, 2, writing_into(tmp_path, die_in_the_third), job_dir)
    assert results == [k * 10 for k in range(10)]
    writers = [int((tmp_path / f"{k}").read_text()) for k in range(10)]
    assert writers[5] == writers[6] != os.getpid()
    assert writers[7:] == [os.getpid()] * 3
    assert [p.name.split(".")[-2] for p in job_dir(7).iterdir()] == [str(writers[5] + 1)]
    assert "job5 to job9 was killed by SIGKILL; the 3 jobs it did not finish are written here" in (
        caplog.text
    )


def test_an_error_a_child_meets_is_raised_here_once_the_others_are_written(tmp_path):
    def full_disk(k):
        if k == 8:
            raise OutputError("cannot write job8/metrics.json: No space left on device")

    with pytest.raises(OutputError, match="No space left on device"):
        write_in_processes(10, 2, writing_into(tmp_path, full_disk), job_dir_of(tmp_path))
    assert all((tmp_path / f"{k}").is_file() for k in (*range(8),))
    assert not (tmp_path / "8").exists()


def test_a_child_writes_on_through_a_stop_signal(tmp_path):
    """Ctrl-C reaches every process of the group, a cluster's SIGTERM every process of the
    job: the child finishes its files; the parent decides what the signal means."""

    def signalled(k):
        if k == 6:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)

    results = write_in_processes(10, 2, writing_into(tmp_path, signalled), job_dir_of(tmp_path))
    assert results == [k * 10 for k in range(10)]
    assert (tmp_path / "9").read_text() != str(os.getpid())


def test_the_children_die_with_a_parent_stopped_hard(tmp_path):
    """A second Ctrl-C raises KeyboardInterrupt here: the children are killed, not left
    writing."""
    parent = os.getpid()

    def write(share, report):
        for _ in share:
            if os.getpid() == parent:
                raise KeyboardInterrupt
            (tmp_path / "child").write_text(str(os.getpid()))
            time.sleep(60)

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        write_in_processes(4, 2, write, job_dir_of(tmp_path))
    assert time.monotonic() - start < 30
    if (tmp_path / "child").exists():  # it had started: it is gone now (reaped)
        with pytest.raises(ProcessLookupError):
            os.kill(int((tmp_path / "child").read_text()), 0)


def test_a_share_that_cannot_be_forked_is_written_here(tmp_path, monkeypatch, caplog):
    """The system refuses the fork (out of processes or memory): the jobs are written in this
    process, said in one line."""

    def refuse() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    with caplog.at_level(logging.WARNING):
        results = write_in_processes(6, 3, writing_into(tmp_path), job_dir_of(tmp_path))
    assert results == [k * 10 for k in range(6)]
    assert {(tmp_path / f"{k}").read_text() for k in range(6)} == {str(os.getpid())}
    assert caplog.text.count("cannot fork (") == 2
