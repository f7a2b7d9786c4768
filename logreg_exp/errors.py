"""The error types for a user's mistake or a problem of the machine: reported as one line,
without a traceback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ConfigError(ValueError):
    """A config value, file or device that cannot be used; the message says which and why."""


class OutputError(ConfigError):
    """A file of the run that could not be written (a full disk, a read-only or vanished
    dir); the message names it and gives the system's reason."""


@contextmanager
def writing(what: str | Path) -> Iterator[None]:
    """Turn an OSError of the block into an OutputError naming ``what``: the file it writes
    (not the temporary file beside it that the error may name), or the files it writes."""
    try:
        yield
    except OSError as err:
        raise OutputError(f"cannot write {what}: {os_reason(err)}") from err


def os_reason(err: OSError) -> str:
    """``No space left on device``: the system's words for an OSError, without its number."""
    if err.errno is not None:
        return os.strerror(err.errno)
    return str(err) or type(err).__name__
