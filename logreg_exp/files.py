"""Writing a run's files atomically, its log file, and showing their paths as a user typed them.

A file is written to a temporary name beside its target, made durable (fsync) and renamed
over it, so a reader (or a crash mid-write) never sees a truncated file.

Each fsync waits for the disk's journal to commit, a few milliseconds, once a file. Where a
process writes the files of many jobs (a group of jobs trained as one), ``synced_together``
hands each file's fsync and rename to a pool of threads, whose fsyncs the journal commits
together; ``settle()`` waits for those begun so far (a job's metrics.json is written only
after the job's other files are settled).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from logreg_exp.errors import ConfigError, OutputError, os_reason


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then make it durable and rename it
    to ``path`` (in the background within ``synced_together``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give what open() would
        f = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise

    def finish() -> None:
        try:
            with f:
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    try:
        write(f)
    except BaseException:
        f.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    durably(path, finish)


def durable_close(path: Path, f: IO[bytes]) -> None:
    """Flush, fsync and close ``f``, the open file ``path`` (in the background within
    ``synced_together``)."""

    def finish() -> None:
        with f:
            f.flush()
            os.fsync(f.fileno())

    durably(path, finish)


class _Syncs:
    """The pool of ``synced_together`` and the files it has not settled yet."""

    def __init__(self) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.pending: list[tuple[Path, Future[None]]] = []


_syncs = _Syncs()


def durably(path: Path, finish: Callable[[], None]) -> None:
    if _syncs.pool is None:
        finish()
    else:
        _syncs.pending.append((path, _syncs.pool.submit(finish)))


def settle() -> None:
    """Wait for the files handed to the pool so far; an OSError of any (a full disk) is an
    OutputError naming the first such file, once they are all done."""
    pending, _syncs.pending = _syncs.pending, []
    failed: tuple[Path, BaseException] | None = None
    for path, future in pending:
        error = future.exception()
        if error is not None and failed is None:
            failed = (path, error)
    if failed is not None:
        path, error = failed
        if isinstance(error, OSError):
            raise OutputError(f"cannot write {display_path(path)}: {os_reason(error)}") from error
        raise error


@contextmanager
def synced_together(threads: int = 16) -> Iterator[None]:
    """Within the block, ``atomic_write`` and ``durable_close`` leave each file's fsync (and
    rename) to a pool of ``threads`` threads; the block ends once they are done."""
    if _syncs.pool is not None:  # already within one
        yield
        return
    pool = _syncs.pool = ThreadPoolExecutor(threads, thread_name_prefix="fsync")
    try:
        yield
    except BaseException:
        with suppress(Exception):  # the error of the block is the one to report
            settle()
        raise
    else:
        settle()
    finally:
        _syncs.pool = None
        pool.shutdown()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> Path:
    atomic_write(path, lambda f: f.write(data))
    return path


@contextmanager
def writing(what: str | Path) -> Iterator[None]:
    """Turn an OSError of the block into an OutputError naming ``what``: the file it writes
    (not the temporary file beside it that the error may name; a path is shown as the user
    would type it, worked out only then), or the files it writes."""
    try:
        yield
    except OSError as err:
        if isinstance(what, Path):
            what = display_path(what)
        raise OutputError(f"cannot write {what}: {os_reason(err)}") from err


def display_path(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it, as a user typed it."""
    try:
        return Path(path).resolve().relative_to(_resolved(os.getcwd()))
    except ValueError:
        return Path(path)


@functools.lru_cache(maxsize=8)
def _resolved(directory: str) -> Path:
    return Path(directory).resolve()


def writable(path: Path, option: str) -> Path:
    """``path``, if its directory exists; else ConfigError naming the command's ``option``."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"{option} {path}: no such directory {path.parent}")
    return path


class RunLogFile(logging.FileHandler):
    """The run's log file (``hydra.job_logging.handlers.file`` in conf/config.yaml). When a
    record cannot be written (a full disk) it says so once on stderr and writes no more,
    where logging's own handler prints a traceback for every record after."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):
            super().handleError(record)
            return
        self.failed = True
        reason = os.strerror(err.errno) if err.errno else str(err)
        path = display_path(Path(self.baseFilename))
        sys.stderr.write(f"warning: cannot write the log file {path} ({reason}); it ends here\n")
