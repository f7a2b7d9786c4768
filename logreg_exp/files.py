"""Writing a run's files atomically, its log file, and showing their paths as a user typed them.

A file is written to a temporary name beside its target and renamed over it, so a reader
(or a crash mid-write) never sees a truncated file.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from logreg_exp.errors import ConfigError


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> Path:
    atomic_write(path, lambda f: f.write(data))
    return path


def display_path(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it, as a user typed it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)


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
