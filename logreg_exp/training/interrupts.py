"""Signals that stop a run between minibatches, so everything written stays consistent: Ctrl-C
(SIGINT), SIGHUP (the terminal or ssh session closed), and what a cluster sends before it stops
a job: SIGTERM (``scancel``, a time limit, preemption, a requeue) and SIGUSR1/SIGUSR2 (the
warning a scheduler sends ahead of a time limit, e.g. ``sbatch --signal=USR2@90``, which
submitit asks for).

A command catches them from its first line (``catch_stop_signals_early``), before its heavy
imports: a signal then is a request its own handlers take over, never a KeyboardInterrupt
inside an import; and once the command's files say how it ended, they are ignored
(``ignore_interrupts``): the process only exits.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)  # Windows has SIGINT and SIGTERM only
)


class GracefulInterrupt:
    """While active, the first of ``signals`` only records the request (``requested``, and
    which signal in ``received``); the loop checks it between minibatches and stops cleanly.
    A second one raises KeyboardInterrupt at once.

    Nested, an inner one takes over a request its outer one received before it (a signal
    while the process started up stops the job as soon as it trains) and hands its own
    request back on exit. Otherwise, on a clean exit, a received signal goes on to the Python
    handler this one displaced: once the job's files are written, a library that had its own
    use for the signal gets it (submitit checkpoints and requeues the job on SIGUSR2).

    Outside the main thread (where Python delivers no signals) it does nothing.
    ``repeat_raises=False``: a second signal is not raised either (while a command imports).
    """

    def __init__(
        self, signals: Sequence[signal.Signals] = STOP_SIGNALS, repeat_raises: bool = True
    ) -> None:
        self.signals = tuple(signals)
        self.repeat_raises = repeat_raises
        self.received: signal.Signals | None = None
        self.displaced: dict[signal.Signals, Any] = {}
        self.outer: GracefulInterrupt | None = None

    @property
    def requested(self) -> bool:
        return self.received is not None

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and self.repeat_raises:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum)  # nothing else: a handler may run inside any call

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in self.signals:
            self.displaced[signum] = signal.signal(signum, self.handle)
        outer = getattr(self.displaced.get(self.signals[0]), "__self__", None)
        if isinstance(outer, GracefulInterrupt):
            self.outer = outer
            self.received = self.received or outer.received
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        displaced, self.displaced = self.displaced, {}
        for signum, handler in displaced.items():
            if signal.getsignal(signum) == self.handle:  # not taken over since (ignore_interrupts)
                signal.signal(signum, handler)
        if self.received is None or not displaced:
            return
        if self.outer is not None:
            self.outer.received = self.outer.received or self.received
            return
        handler = displaced.get(self.received)
        if exc_type is None and callable(handler) and handler is not signal.default_int_handler:
            handler(self.received, None)


def ignore_interrupts() -> None:
    """From now on the stop signals do nothing: a single run whose files say how it ended is
    only exiting, and a signal must not make its exit status disagree with them."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


# The handler a command installed on its first line (catch_stop_signals_early), if it did.
EARLY: list[GracefulInterrupt] = []


def catch_stop_signals_early() -> None:
    """A command's first line, before the imports that take a second or two (Hydra, torch):
    a stop signal from now on is only recorded (``stopped_early``), and the command's own
    handlers, nested inside, take the request over."""
    if threading.current_thread() is threading.main_thread() and not EARLY:
        early = GracefulInterrupt(repeat_raises=False)
        EARLY.append(early.__enter__())


def stopped_early() -> signal.Signals | None:
    """The stop signal a command received before its own handlers were set, if any."""
    return EARLY[0].received if EARLY else None


def in_command() -> bool:
    """Whether this process is a command that caught the stop signals on its first line (not
    a test, or a library, calling into the package): only then may the package decide what a
    signal does for the rest of the process."""
    return bool(EARLY)


@contextmanager
def interrupting_command() -> Iterator[None]:
    """A short command's body (evaluate, predict, summary): a stop signal raises
    KeyboardInterrupt at once (the command says so in one line and removes what it was
    writing), one received while it imported too; after the body they are ignored. Outside a
    command process (a test calling ``main``) the handlers are left as they are."""
    if not in_command():
        yield
        return
    for signum in STOP_SIGNALS:
        signal.signal(signum, raise_interrupt)
    try:
        if stopped_early() is not None:
            raise KeyboardInterrupt
        yield
    finally:
        ignore_interrupts()


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
