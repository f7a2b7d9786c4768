"""A SQLite file written in bulk: WAL and syncs at checkpoints inside the block, for the
connections SQLAlchemy opens to that file only; the file's journal mode and every commit
there after it; nothing changed where the mode cannot be switched."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from logreg_exp.tracking import sqlite_journal
from logreg_exp.tracking.sqlite_journal import bulk_writes, sqlite_path

sqlalchemy = pytest.importorskip("sqlalchemy")
from sqlalchemy.pool import NullPool, QueuePool  # noqa: E402

FULL, NORMAL = 2, 1


def make_db(path: Path) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE t (n INTEGER)")
    return path


def journal_mode(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:  # a connection left open would
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])  # keep the file in WAL


def test_the_file_of_a_sqlite_uri():
    assert sqlite_path("sqlite:///outputs/mlflow.db") == Path("outputs/mlflow.db")
    assert sqlite_path("sqlite:////abs/m.db?timeout=5") == Path("/abs/m.db")
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("http://host:5000") is None
    assert sqlite_path("file:///tmp/mlruns") is None


@pytest.mark.parametrize("pool", [NullPool, QueuePool])
def test_inside_the_block_commits_go_to_a_log_synced_at_checkpoints(tmp_path, pool):
    path = make_db(tmp_path / "m.db")
    other = make_db(tmp_path / "other.db")
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", poolclass=pool)
    other_engine = sqlalchemy.create_engine(f"sqlite:///{other}", poolclass=pool)
    seen = []
    with bulk_writes(path) as on:
        assert on
        for n in range(5):
            with engine.begin() as conn:
                seen.append(conn.exec_driver_sql("PRAGMA synchronous").scalar())
                conn.exec_driver_sql("INSERT INTO t VALUES (?)", (n,))
        with other_engine.connect() as conn:  # another file keeps its setting
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == FULL
        assert journal_mode(path) == "wal"
        assert (tmp_path / "m.db-wal").exists()
    assert seen == [NORMAL] * 5
    with engine.connect() as conn:  # the connection's own setting, back after the block
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == FULL
    engine.dispose()
    other_engine.dispose()
    # a connection pooled past the block kept the file in WAL mode (tracking.mlflow_store
    # has MLflow's engine pool none); the last to close wrote the log into the file
    assert journal_mode(path) == ("delete" if pool is NullPool else "wal")
    assert not (tmp_path / "m.db-wal").exists()
    with sqlite3.connect(path) as db:
        assert [n for (n,) in db.execute("SELECT n FROM t")] == [0, 1, 2, 3, 4]


def test_a_file_already_in_wal_mode_stays_in_it(tmp_path):
    path = make_db(tmp_path / "m.db")
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
    with bulk_writes(path) as on:
        assert on
    assert journal_mode(path) == "wal"


def test_a_file_another_writer_holds_is_written_as_it_is(tmp_path):
    path = make_db(tmp_path / "m.db")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    try:
        with bulk_writes(path) as on:
            assert not on
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert journal_mode(path) == "delete"


def test_no_file_or_the_switch_off_changes_nothing(tmp_path, monkeypatch):
    with bulk_writes(None) as on:
        assert not on
    with bulk_writes(tmp_path / "missing.db") as on:
        assert not on
    assert not (tmp_path / "missing.db").exists()
    path = make_db(tmp_path / "m.db")
    monkeypatch.setenv(sqlite_journal.OFF_VARIABLE, "1")
    with bulk_writes(path) as on:
        assert not on
    assert journal_mode(path) == "delete"


def test_an_error_in_the_block_still_restores_the_file(tmp_path):
    path = make_db(tmp_path / "m.db")
    with pytest.raises(RuntimeError), bulk_writes(path):
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("INSERT INTO t VALUES (7)")
        raise RuntimeError("boom")
    assert journal_mode(path) == "delete"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT n FROM t").fetchall() == [(7,)]
