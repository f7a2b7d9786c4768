"""Atomic writes, and their fsyncs left to a pool within ``synced_together``."""

from __future__ import annotations

import errno
import os

import pytest

from logreg_exp import files
from logreg_exp.errors import OutputError
from logreg_exp.files import atomic_write, settle, synced_together


def test_within_synced_together_the_files_are_there_once_settled(tmp_path):
    with synced_together():
        for n in range(20):
            atomic_write(tmp_path / f"{n}.txt", lambda f, n=n: f.write(str(n).encode()))
        settle()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.txt" for n in range(20))
        atomic_write(tmp_path / "last.txt", lambda f: f.write(b"last"))
    assert (tmp_path / "last.txt").read_text() == "last"
    written = [p.read_text() for p in sorted(tmp_path.glob("1?.txt"))]
    assert written == [str(n) for n in range(10, 20)]


def test_a_file_the_pool_cannot_sync_is_an_output_error_naming_it(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full_disk)
    no_space = r"cannot write .*a\.json: No space left on device"
    with pytest.raises(OutputError, match=no_space), synced_together():
        atomic_write(tmp_path / "a.json", lambda f: f.write(b"{}"))
        settle()
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file
