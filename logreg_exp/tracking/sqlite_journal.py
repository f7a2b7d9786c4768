"""A SQLite file written in bulk (a sweep's runs into MLflow's store) with one disk sync at
the end instead of three at each of its hundreds of commits.

For the length of the block the database runs in write-ahead-log mode, and every connection
this process opens to it syncs only at checkpoints (``synchronous=NORMAL``, SQLite's
recommended setting for WAL: a power cut may lose the last commits, never the file). A
connection of our own holds a read open, so that the connections MLflow opens and closes per
call do not each checkpoint and delete the log as they close. At the end the journal mode it
had is restored, which writes the log into the database once. Where any of it cannot be done
(another process holds the file, an old SQLite), the writes go as they would have: this only
ever changes how fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The benchmark's switch to measure the store without it (benchmarks/bench.py --only tracker).
OFF_VARIABLE = "LOGREG_EXP_SQLITE_PLAIN_JOURNAL"


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI (relative to the working dir, or ``sqlite:////abs``);
    None for any other URI, and for an in-memory database."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def database_file(connection: Any) -> str | None:
    """The file a DB-API SQLite connection has open as ``main``."""
    try:
        for _, name, file in connection.execute("PRAGMA database_list").fetchall():
            if name == "main":
                return str(file) or None
    except Exception:  # not SQLite, or closed
        return None
    return None


@contextlib.contextmanager
def bulk_writes(path: Path | None) -> Iterator[bool]:
    """The block's writes to the SQLite file ``path`` synced once, at its end (see the module
    docstring); yields whether that is in force. ``path`` None: a block as it is."""
    if path is None or os.environ.get(OFF_VARIABLE) or not path.is_file():
        yield False
        return
    holder, previous = open_in_wal(path)
    if holder is None:
        yield False
        return
    target = str(path.resolve())
    listener = SyncAtCheckpoints(target)
    listener.install()
    try:
        yield True
    finally:
        listener.remove()
        restore(holder, previous, path)


def open_in_wal(path: Path) -> tuple[sqlite3.Connection | None, str]:
    """A connection to ``path`` in WAL mode holding a read open, and the journal mode the file
    had; (None, "") where WAL cannot be entered now."""
    holder = None
    try:
        holder = sqlite3.connect(str(path), timeout=1.0, isolation_level=None)
        previous = str(holder.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        mode = str(holder.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
        if mode != "wal":
            raise sqlite3.OperationalError(f"journal mode stays {mode}")
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM sqlite_master").fetchall()
        return holder, previous
    except sqlite3.Error as err:
        log.debug("%s written with its own journal: %s", path, err)
        if holder is not None:
            holder.close()
        return None, ""


def restore(holder: sqlite3.Connection, previous: str, path: Path) -> None:
    """End the held read and put the file back in its journal mode (the log written into it);
    where another connection still has it open, it stays in WAL mode, as readable."""
    try:
        holder.execute("COMMIT")
        if previous != "wal":
            holder.execute(f"PRAGMA journal_mode={previous}").fetchone()
    except sqlite3.Error as err:
        log.debug("%s left in WAL mode: %s", path, err)
    finally:
        holder.close()


class SyncAtCheckpoints:
    """``PRAGMA synchronous=NORMAL`` on each connection to one file that SQLAlchemy hands out
    while it is installed (a listener on every engine: MLflow makes its own, and may pool its
    connections), the connection's own setting back as it is returned."""

    PRIOR = "logreg_exp.synchronous"

    def __init__(self, target: str) -> None:
        self.target = target
        # SQLAlchemy finds a listener again, to remove it, by the very object given
        self.listeners = (("checkout", self.checkout), ("checkin", self.checkin))

    def checkout(self, connection: Any, record: Any, proxy: Any) -> None:
        if database_file(connection) == self.target:
            record.info[self.PRIOR] = connection.execute("PRAGMA synchronous").fetchone()[0]
            connection.execute("PRAGMA synchronous=NORMAL")

    def checkin(self, connection: Any, record: Any) -> None:
        prior = record.info.pop(self.PRIOR, None) if record is not None else None
        if prior is not None and connection is not None:
            with contextlib.suppress(Exception):
                connection.execute(f"PRAGMA synchronous={int(prior)}")

    def install(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        for name, listener in self.listeners:
            event.listen(Engine, name, listener)

    def remove(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        for name, listener in self.listeners:
            with contextlib.suppress(Exception):
                event.remove(Engine, name, listener)
