"""The process that writes a sweep into MLflow: started by the sweep's process as the sweep
starts, it imports mlflow and opens the store (seconds of CPU: a fresh SQLite store makes its
tables) on the core the training leaves free; at the sweep's end it is handed the jobs, as the
summary read them, and writes the sweep's runs (``mlflow_store.log_sweep``). So the end of a
sweep only writes. It is the sweep's one writer: no job imports mlflow.

Parent side: ``SweepWriter``. Writer side: ``python -m logreg_exp.tracking.mlflow_writer
SETTINGS_JSON``, which reads the pickled ``(sweep_dir, jobs)`` from its stdin (handed as soon
as the summary has read the jobs: their runs are written while the summary and the picture are
made), waits for its stdin to close (the summary's files are written) before the sweep's own
artifacts, and answers one JSON line on its stdout. It runs in a session of its own (a Ctrl-C
of the sweep does not stop it before the sweep's end is logged) and ends when its stdin
closes: with the sweep's process, however that ends. Where it cannot start or gives no
answer, the sweep's process writes the sweep itself, as it would without it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The benchmark's switch to measure the tracker without it (benchmarks/bench.py --only tracker):
# the sweep's process then imports mlflow at the sweep's end and writes the sweep itself.
OFF_VARIABLE = "LOGREG_EXP_MLFLOW_IN_PROCESS"


class WriterFailed(Exception):
    """The writer could not write the store: ``kind`` is the error's type there."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class SweepWriter:
    """The writer process of one sweep, started now."""

    def __init__(self, settings: Any) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, json.dumps(dataclasses.asdict(settings))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.handed = False

    @classmethod
    def start(cls, settings: Any) -> SweepWriter | None:
        """A writer for a sweep logged to ``settings``; None where it is switched off or
        cannot start (the sweep's process then writes the sweep itself)."""
        if settings is None or os.environ.get(OFF_VARIABLE):
            return None
        try:
            return cls(settings)
        except OSError as err:
            log.debug("no MLflow writer process: %s", err)
            return None

    def hand(self, sweep_dir: Path, jobs: Sequence[Any]) -> None:
        """Hand the writer the sweep's jobs, to write their runs now; ``written`` then waits
        for it (after the summary's files, which the sweep's run holds)."""
        if self.handed:
            return
        self.handed = True
        data = pickle.dumps((Path(sweep_dir), list(jobs)))
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(len(data).to_bytes(8, "big") + data)
            self.process.stdin.flush()
        except OSError as err:  # it died: ``written`` finds no answer
            log.debug("the MLflow writer process took no jobs: %s", err)

    def written(self, sweep_dir: Path, jobs: Sequence[Any]) -> tuple[str, int] | None:
        """Have the writer log the sweep (handed now, unless it was): the parent run's id and
        how many job runs it wrote now; WriterFailed (or TrackerError) where the store could
        not be written; None where the writer gave no answer (it died): the caller writes
        the sweep itself."""
        from logreg_exp.tracking.mlflow_store import TrackerError

        self.hand(sweep_dir, jobs)
        try:
            out, _ = self.process.communicate()
            answer = json.loads(out.decode().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError, pickle.PicklingError) as err:
            log.debug("the MLflow writer process gave no answer: %s", err)
            self.close()
            return None
        if "error" in answer:
            if answer.get("tracker"):
                raise TrackerError(answer["error"])
            raise WriterFailed(str(answer.get("kind", "Exception")), str(answer["error"]))
        return str(answer["run_id"]), int(answer["written"])

    def close(self) -> None:
        """End the writer without logging anything (the sweep ended before its end)."""
        if self.process.poll() is None:
            try:
                self.process.communicate(b"", timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def serve(settings_json: str) -> None:
    """The writer: open the store now, then log the sweep its stdin hands it; what went
    wrong is its answer, so it ends with status 0 (the sweep's process reads the answer)."""
    from logreg_exp.tracking.mlflow_store import (
        MlflowStore,
        TrackerError,
        TrackerSettings,
        log_sweep,
    )
    from logreg_exp.tracking.sqlite_journal import bulk_writes, sqlite_path

    settings = TrackerSettings(**json.loads(settings_json))
    store: MlflowStore | None = None
    opening: Exception | None = None
    try:
        store = MlflowStore(settings)
    except Exception as err:  # said at the sweep's end, where it is asked for
        opening = err
    stdin = sys.stdin.buffer
    size = stdin.read(8)
    if len(size) < 8:  # the sweep ended before its end, or its process is gone
        return
    handed = stdin.read(int.from_bytes(size, "big"))
    try:
        sweep_dir, jobs = pickle.loads(handed)
        if store is None:
            assert opening is not None
            raise opening
        with bulk_writes(sqlite_path(settings.uri)):
            run_id, written = log_sweep(store, sweep_dir, jobs, stdin.read)
        answer: dict[str, Any] = {"run_id": run_id, "written": written}
    except Exception as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        answer = {"error": reason, "kind": type(err).__name__}
        answer["tracker"] = isinstance(err, TrackerError)
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    serve(sys.argv[1])
