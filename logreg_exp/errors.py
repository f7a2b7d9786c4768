"""The error types for a user's mistake or a problem of the machine: reported as one line,
without a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from logreg_exp.training.interrupts import interrupting_command


class ConfigError(ValueError):
    """A config value, file or device that cannot be used; the message says which and why."""


def one_line(err: BaseException, joined: bool = False) -> str:
    """An exception's message on one line (its type's name if it has none): its first line,
    for an error about a file that a library failed to read; ``joined``: all its lines, for
    Hydra's, which span several with the cause last."""
    text = str(err).strip()
    if joined:
        text = " ".join(text.split())
    return text.splitlines()[0] if text else type(err).__name__


def run_command(body: Callable[[], int]) -> int:
    """A command-line tool's exit status: ``body()``'s, 1 with one line on stderr for a
    user's mistake (a ConfigError) or a file that cannot be written, 130 for Ctrl-C; 1 and
    nothing more when a reader of stdout closes it early (``| head``), as the Python docs
    advise for SIGPIPE. A path whose name is not UTF-8 prints with backslash escapes, as on
    stderr, rather than failing with a UnicodeEncodeError. Run as a command, SIGTERM and
    SIGHUP stop it as Ctrl-C does, and a signal while it imported ends it before the body
    (``training.interrupts``)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")
    try:
        with interrupting_command():
            return body()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1
    except (ConfigError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class OutputError(ConfigError):
    """A file of the run that could not be written (a full disk, a read-only or vanished
    dir); the message names it and gives the system's reason."""


def os_reason(err: OSError) -> str:
    """``No space left on device``: the system's words for an OSError, without its number."""
    if err.errno is not None:
        return os.strerror(err.errno)
    return str(err) or type(err).__name__
