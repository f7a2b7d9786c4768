"""A group's per-job files written by more than one process: the second core of a machine
sits idle while one process writes, job after job, hundreds of small files and pictures.

Once a group has trained, each of its jobs still needs its TensorBoard file, best.pt,
metrics.json and picture: a few milliseconds of Python each, most of a large sweep's time.
``write_in_processes`` splits the jobs into contiguous shares and forks a child for every
share but the first, which this process writes itself. A fork copies the trained results,
the pipeline and the painter as they are, so a child starts at once (a fresh interpreter
would spend seconds importing torch). Each child reports each job it finished, in a file
this process reads once the child has exited.

Faults: a child ignores the stop signals (a Ctrl-C reaches the whole process group, a
cluster's SIGTERM every process of the job): the parent decides, as in a single process, and
its files are finished first. If the parent dies, the child is killed (Linux); if the parent
is stopped hard (a second Ctrl-C), it kills the children. A child that dies (killed, out of
memory) leaves its unreported jobs to the parent, which writes them here after dropping the
child's unfinished event file of the job it was writing; an error a child met (a full disk)
is raised here, as it would have been in one process. On a GPU, and where ``os.fork`` is
missing, there is one process: CUDA does not survive a fork. Off Linux there is one unless
asked for: macOS's system libraries (Accelerate, which torch may use) are not fork-safe.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from logreg_exp.run_files import EVENTS_PREFIX
from logreg_exp.training.interrupts import STOP_SIGNALS

log = logging.getLogger(__name__)

T = TypeVar("T")
MIN_JOBS_PER_PROCESS = 16  # below this a fork costs about what it saves
MAX_PROCESSES = 8

# write(share, report): write the jobs of ``share`` in order, calling report(k, result) for
# each one done
WriteShare = Callable[[Sequence[int], Callable[[int, T], None]], None]


def writer_processes(
    requested: int | None, n_jobs: int, cores: int, on_cpu: bool, platform: str = sys.platform
) -> int:
    """How many processes write a group of ``n_jobs`` jobs: ``requested`` (the launcher's
    ``writers``) or, where None, on Linux one per usable core, at most one per
    MIN_JOBS_PER_PROCESS jobs (elsewhere one: macOS's system libraries, which torch's BLAS
    may use there, are not safe in a forked child unless asked for); one on a GPU or
    without ``os.fork``."""
    if not on_cpu or not hasattr(os, "fork") or n_jobs < 2:
        return 1
    if requested is not None:
        return max(1, min(int(requested), n_jobs))
    if not platform.startswith("linux"):
        return 1
    return max(1, min(cores, MAX_PROCESSES, n_jobs // MIN_JOBS_PER_PROCESS))


def shares(n: int, parts: int) -> list[range]:
    """``range(n)`` in ``parts`` contiguous shares whose sizes differ by one at most."""
    size, extra = divmod(n, parts)
    bounds = [0]
    for part in range(parts):
        bounds.append(bounds[-1] + size + (part < extra))
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


@dataclass
class Child(Generic[T]):
    """A forked writer: its pid, its share, and the file it reports in."""

    pid: int
    share: range
    reports: IO[bytes]
    done: dict[int, T] = field(default_factory=dict)
    error: BaseException | None = None
    ended: str = ""  # how it ended, where not by exiting 0


def write_in_processes(
    n: int, processes: int, write: WriteShare[T], job_dir: Callable[[int], Path]
) -> list[T]:
    """``write`` over jobs ``0..n-1``: the first share here, each other share in a forked
    child; each job's result, in job order. ``job_dir(k)``: job k's dir, whose unfinished
    event file a dead child leaves is dropped before the job is written here again."""
    results: dict[int, T] = {}
    parts = shares(n, max(1, processes))
    children: list[Child[T]] = []
    here = parts[:1]
    try:
        for share in parts[1:]:
            child = fork_writer(share, write)
            if child is None:  # no fork (out of processes or memory): written here
                here.append(share)
            else:
                children.append(child)
        for share in here:
            write(share, results.__setitem__)
        for child in children:
            collect(child)
    except BaseException as err:
        # stopped hard: the children too; else they finish what they write
        end_children(children, kill=not isinstance(err, Exception))
        raise
    for child in children:
        results.update(child.done)
        if child.error is not None:
            raise child.error
        lost = [k for k in child.share if k not in child.done]
        if lost:
            log.warning(
                "the process writing the files of jobs %s to %s %s; the %d jobs it did not "
                "finish are written here",
                job_dir(child.share[0]).name, job_dir(child.share[-1]).name, child.ended,
                len(lost),
            )  # fmt: skip
            for k in lost:
                drop_events_of(job_dir(k), child.pid)
            write(lost, results.__setitem__)
    return [results[k] for k in range(n)]


def fork_writer(share: range, write: WriteShare[T]) -> Child[T] | None:
    """Fork a child that writes ``share`` and reports each job done, then exits; None where
    the system will not fork (said in the log). ``write`` reports a job once its files are
    on disk: a child killed after that has finished it."""
    try:
        reports = tempfile.TemporaryFile()  # noqa: SIM115 (closed by collect)
    except OSError as err:
        log.warning("jobs written by this process alone: no file to report in (%s)", err)
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns of a fork in a process with threads (torch's idle ones):
            # the child takes no lock they could hold and runs torch on one thread
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError as err:
        reports.close()
        log.warning("jobs written by this process alone: cannot fork (%s)", err)
        return None
    if pid == 0:  # the child: never returns
        code = 1
        try:
            run_child(share, write, reports, parent)
            code = 0
        finally:
            os._exit(code)
    return Child(pid, share, reports)


def run_child(share: range, write: WriteShare[T], reports: IO[bytes], parent: int) -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    die_with(parent)
    import torch

    torch.set_num_threads(1)  # no OpenMP pool in a forked child

    def report(k: int, result: T) -> None:
        pickle.dump((k, result), reports)
        reports.flush()

    try:
        write(share, report)
    except Exception as err:
        pickle.dump((None, portable(err)), reports)
        reports.flush()


def die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux's PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before that
        os._exit(1)


def portable(err: Exception) -> BaseException:
    """``err``, or where it does not pickle, a RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


def collect(child: Child[T]) -> None:
    """Wait for ``child`` to exit; read what it reported."""
    _, status = os.waitpid(child.pid, 0)
    if os.WIFSIGNALED(status):
        child.ended = f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    elif os.WEXITSTATUS(status) != 0:
        child.ended = f"exited with status {os.WEXITSTATUS(status)}"
    child.reports.seek(0)
    with child.reports:
        while True:
            try:
                k, result = pickle.load(child.reports)
            except Exception:  # the end, or a report cut short by the child's death
                break
            if k is None:
                child.error = result
            else:
                child.done[k] = result
    if not child.ended and len(child.done) < len(child.share) and child.error is None:
        child.ended = "stopped early"


def end_children(children: Sequence[Child[Any]], kill: bool) -> None:
    """Wait for the children (that have not been waited for), killed first if ``kill``."""
    for child in children:
        if kill:
            with suppress(OSError):
                os.kill(child.pid, signal.SIGKILL)
        with suppress(OSError):  # ChildProcessError: collected already
            os.waitpid(child.pid, 0)
        child.reports.close()


def drop_events_of(job_dir: Path, pid: int) -> None:
    """Delete the event files process ``pid`` started in ``job_dir``
    (``events.out.tfevents.<seconds>.<host>.<pid>.<n>``)."""
    for path in Path(job_dir).glob(f"{EVENTS_PREFIX}*"):
        parts = path.name[len(EVENTS_PREFIX) :].split(".")
        if len(parts) >= 4 and parts[-2] == str(pid):
            path.unlink(missing_ok=True)
