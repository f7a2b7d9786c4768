"""Ctrl-C that stops training between minibatches, so everything written stays consistent."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class GracefulInterrupt:
    """While active, the first SIGINT only sets ``requested``; the loop checks it between
    minibatches and stops cleanly. A second SIGINT raises KeyboardInterrupt at once.

    Outside the main thread (where Python delivers no signals) it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True  # nothing else here: a handler may run inside any call

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def ignore_interrupts() -> None:
    """From now on Ctrl-C does nothing: a single run whose files say how it ended is only
    exiting, and an interrupt must not make its exit status disagree with them."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
