"""``tracker=mlflow``: runs and sweeps in an MLflow store, written by one writer from the files
the runs left in their dirs (``metrics.json``, ``.hydra/config.yaml``, ``provenance.json``,
the event files' scalars, ``best.pt`` and the pictures).

A single run logs itself as it ends. A sweep is logged once, by the sweep's process at its end
(``sweeps.callback``): a parent run keyed by the sweep dir, a child run per job keyed by the
job dir. So no job imports mlflow, jobs on a cluster need no access to the store, jobs never
race for a SQLite file, and logging the same dirs again (``python -m logreg_exp.summary DIR
--mlflow``, a sweep that goes on) updates their runs rather than adding new ones: a job whose
files have not changed is skipped; one whose files changed (it resumed and finished) has its
run replaced.

Nothing here fails a run or a sweep: what cannot be written is said in one line, with the
command that logs it later. A store that another writer holds locked is retried first.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse
from urllib.request import url2pathname

from logreg_exp.config import flatten
from logreg_exp.files import display_path
from logreg_exp.provenance import flat_provenance, read_provenance
from logreg_exp.results import Status, read_metrics
from logreg_exp.run_files import (
    CHECKPOINT_FILE,
    CONFIG_YAML,
    DECISION_BOUNDARY_FILE,
    HYDRA_DIR,
    METRICS_FILE,
    MULTIRUN_YAML,
    PLAN_FILE,
    PROVENANCE_FILE,
    SUMMARY_CSV,
    SUMMARY_MD,
    SWEEP_PNG,
)
from logreg_exp.sweeps.summary import Job, load_yaml
from logreg_exp.tracking.events import read_scalars
from logreg_exp.tracking.sqlite_journal import bulk_writes, sqlite_path

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_URI = "sqlite:///outputs/mlflow.db"
URI_VARIABLE = "MLFLOW_TRACKING_URI"
EXTRA = "pip install 'logreg-exp[mlflow]'"
# Tags that find a run again: a hash of its dir's absolute path (a filter string takes it
# as it is, whatever characters the path holds), and of the files it was logged from.
RUN_KEY = "logreg_exp.run_key"
SWEEP_KEY = "logreg_exp.sweep_key"
FINGERPRINT = "logreg_exp.fingerprint"
FINGERPRINTED = (METRICS_FILE, PROVENANCE_FILE)
RUN_ARTIFACTS = (CHECKPOINT_FILE, METRICS_FILE, PROVENANCE_FILE, DECISION_BOUNDARY_FILE)
SWEEP_ARTIFACTS = (SUMMARY_MD, SUMMARY_CSV, SWEEP_PNG, MULTIRUN_YAML, PLAN_FILE)
# metrics.json's status -> MLflow's run status
RUN_STATUS = {Status.COMPLETED.value: "FINISHED", Status.INTERRUPTED.value: "KILLED"}
# Keys of a config that say how hydra.utils.instantiate calls a class, or where the run is
# tracked: no param.
NOT_PARAMS = frozenset({"_partial_", "_recursive_", "_convert_", "tracker"})
# MLflow's limits: a param's value, a tag's value, and entities in one log_batch call.
PARAM_CHARS, TAG_CHARS = 6000, 8000
BATCH_PARAMS, BATCH_TAGS, BATCH_METRICS = 100, 100, 1000
LOCK_RETRIES = 6  # waits of 0.25, 0.5, ... 8 s: about 16 s for another writer to finish
# An unreachable server fails in seconds, not after MLflow's default minutes of retries; a
# SQLite store's connections are closed after each call, so that the file's journal mode is
# put back after a sweep's writes (tracking.sqlite_journal), under either SQLAlchemy line.
ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool",
}


@dataclass(frozen=True)
class TrackerSettings:
    """Where runs are tracked: the URI of the store, the experiment, whether with artifacts."""

    uri: str
    experiment: str = "logreg_exp"
    artifacts: bool = True


def tracker_settings(node: Any, uri: str | None = None) -> TrackerSettings | None:
    """The settings of a config's ``tracker`` node (a DictConfig or plain data), its URI
    replaced by ``uri`` where given; None for ``tracker=none`` or a config without one (a run
    of an older version)."""
    if node is None or node.get("name") != "mlflow":
        return None
    uri = uri or node.get("tracking_uri") or os.environ.get(URI_VARIABLE) or DEFAULT_URI
    return TrackerSettings(str(uri), str(node.get("experiment", "logreg_exp")),
                           bool(node.get("artifacts", True)))  # fmt: skip


class TrackerError(Exception):
    """The store could not be written; the message says why, in one line."""


# Loggers that would fill the run's console: alembic's lines as it makes a store's tables,
# urllib3's at each retry, MLflow's own; what fails is said in one line here instead.
QUIETED = ("alembic", "mlflow", "urllib3")


def import_mlflow() -> Any:
    """``mlflow.tracking.MlflowClient``; TrackerError naming the extra where it is missing."""
    for name, value in ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        client_class = importlib.import_module("mlflow.tracking").MlflowClient
    except ImportError as err:
        raise TrackerError(f"tracker=mlflow needs mlflow ({err}): {EXTRA}") from err
    for name in QUIETED:  # after the import: mlflow sets its logger's level as it loads
        logging.getLogger(name).setLevel(logging.ERROR)
    return client_class


def local_directory(uri: str | None) -> Path | None:
    """The directory a ``file:`` (or scheme-less) artifact URI names; None for another."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file") or parsed.netloc not in ("", "localhost"):
        return None
    return Path(url2pathname(parsed.path))


def key_of(path: Path) -> str:
    return hashlib.sha256(str(Path(path).resolve()).encode(errors="surrogateescape")).hexdigest()


def fingerprint(run_dir: Path) -> str:
    """A hash of the files a run is logged from that change when its results do."""
    digest = hashlib.sha256()
    for name in FINGERPRINTED:
        try:
            digest.update((run_dir / name).read_bytes())
        except OSError:
            digest.update(b"-")
    return digest.hexdigest()


def epoch_ms(iso: Any, default: int) -> int:
    """An ISO 8601 time as milliseconds since the epoch (``default`` where there is none)."""
    try:
        return int(datetime.fromisoformat(str(iso)).timestamp() * 1000)
    except (TypeError, ValueError):
        return default


def is_locked(err: BaseException) -> bool:
    return "locked" in str(err).lower()


def retried(call: Callable[[], T]) -> T:
    """``call()``, again after a wait while the store is locked by another writer."""
    for attempt in range(LOCK_RETRIES):
        try:
            return call()
        except Exception as err:
            if not is_locked(err) or attempt == LOCK_RETRIES - 1:
                raise
            time.sleep(0.25 * 2**attempt)
    raise AssertionError("unreachable")


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def param_text(value: Any) -> str:
    """A config value as an override spells it (``true``, ``null``), cut to MLflow's limit."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    else:
        text = str(value)
    return text[:PARAM_CHARS]


def run_params(run_dir: Path) -> dict[str, str]:
    """The run's config (``.hydra/config.yaml``), flattened to dotted keys."""
    config = load_yaml(run_dir / HYDRA_DIR / CONFIG_YAML)
    if not isinstance(config, dict):
        return {}
    return {key: param_text(v) for key, v in flatten(config, omit=NOT_PARAMS).items()}


def final_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """metrics.json's numbers (best, final, test values, times)."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


class MlflowStore:
    """An MLflow experiment, opened for writing; each call may raise (``TrackerError`` for
    what the user can act on, MLflow's own errors otherwise)."""

    def __init__(self, settings: TrackerSettings) -> None:
        client_class = import_mlflow()
        entities = importlib.import_module("mlflow.entities")
        self.Metric, self.Param, self.RunTag = entities.Metric, entities.Param, entities.RunTag
        self.settings = settings
        self.local_sqlite = settings.uri.startswith("sqlite:///")
        if self.local_sqlite:
            database = Path(settings.uri.removeprefix("sqlite:///"))
            database.parent.mkdir(parents=True, exist_ok=True)
        self.client = client_class(tracking_uri=settings.uri)
        self.experiment_id = retried(self.experiment)

    def experiment(self) -> str:
        """The experiment's id; it is created where missing (its artifacts beside a SQLite
        store, in ``mlartifacts/``; a server's where the server keeps them)."""
        name = self.settings.experiment
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise TrackerError(
                    f"MLflow experiment {name!r} is deleted in {self.settings.uri}: restore it "
                    "(mlflow experiments restore) or choose another (tracker.experiment=...)"
                )
            return str(found.experiment_id)
        location = None
        if self.local_sqlite:
            database = Path(self.settings.uri.removeprefix("sqlite:///")).resolve()
            location = (database.parent / "mlartifacts").as_uri()
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except Exception:  # another writer created it meanwhile
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def runs_tagged(self, tag: str, value: str) -> list[Any]:
        """The experiment's active runs whose ``tag`` is ``value``."""
        runs: list[Any] = []
        token = None
        query = f"tags.`{tag}` = '{value}'"
        while True:
            page = retried(
                lambda token=token: self.client.search_runs(
                    [self.experiment_id], query, max_results=1000, page_token=token
                )
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def write_run(
        self,
        name: str,
        tags: dict[str, str],
        params: Mapping[str, str],
        metrics: Sequence[tuple[str, float, int, int]],
        start_ms: int,
        end: tuple[str, int] | None,
        artifacts: Sequence[tuple[Path, str]],
    ) -> str:
        """A new run: its ``tags``, ``params``, ``metrics`` ((key, value, ms, step) each),
        ``artifacts`` ((file or dir, artifact dir) each), and how and when it ``end``ed
        (MLflow's status and ms; None: still running). Its id."""
        tags = {key: str(value)[:TAG_CHARS] for key, value in tags.items()}
        run = retried(
            lambda: self.client.create_run(
                self.experiment_id, start_time=start_ms, tags=tags, run_name=name
            )
        )
        run_id = run.info.run_id
        param_list = [self.Param(k, v) for k, v in params.items()]
        metric_list = [
            self.Metric(key, value, ms, step)
            for key, value, ms, step in metrics
            if not math.isinf(value)  # MLflow stores NaN, not infinity
        ]
        # as few calls as MLflow's limits allow: one, for a run of this size
        param_parts = list(chunks(param_list, BATCH_PARAMS))
        metric_parts = list(chunks(metric_list, BATCH_METRICS - BATCH_PARAMS))
        for n in range(max(len(param_parts), len(metric_parts))):
            some_params = param_parts[n] if n < len(param_parts) else []
            some_metrics = metric_parts[n] if n < len(metric_parts) else []
            retried(
                lambda p=some_params, m=some_metrics: self.client.log_batch(
                    run_id, params=p, metrics=m
                )
            )
        if artifacts and self.settings.artifacts:
            self.log_artifacts(run_id, artifacts, run.info.artifact_uri)
        if end is not None:
            status, end_ms = end
            retried(lambda: self.client.set_terminated(run_id, status, end_time=end_ms))
        return str(run_id)

    def log_artifacts(
        self, run_id: str, artifacts: Sequence[tuple[Path, str]], location: str | None = None
    ) -> None:
        """The files, as the run's artifacts (``(file, artifact dir)`` each). Where the run's
        artifact ``location`` is a local directory (a SQLite store's), they are copied there,
        as MLflow's local artifact store copies them; else linked into a temporary dir as
        they lay out, which MLflow sends (to a server) in one call."""
        local = local_directory(location)
        if local is not None:
            for source, where in artifacts:
                target = local / where / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            return
        with tempfile.TemporaryDirectory(prefix="logreg_exp-artifacts-") as staging:
            for source, where in artifacts:
                target = Path(staging, where, source.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(source.resolve(), target)
            retried(lambda: self.client.log_artifacts(run_id, staging))

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], ms: int) -> None:
        entries = [self.Metric(k, v, ms, 0) for k, v in metrics.items() if math.isfinite(v)]
        if entries:
            retried(lambda: self.client.log_batch(run_id, metrics=entries))

    def delete(self, run_id: str) -> None:
        retried(lambda: self.client.delete_run(run_id))

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        entries = [self.RunTag(k, str(v)[:TAG_CHARS]) for k, v in tags.items()]
        for part in chunks(entries, BATCH_TAGS):
            retried(lambda part=part: self.client.log_batch(run_id, tags=part))

    def terminate(self, run_id: str, status: str, end_ms: int) -> None:
        retried(lambda: self.client.set_terminated(run_id, status, end_time=end_ms))


def run_record(
    run_dir: Path, extra_tags: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str], list[tuple[str, float, int, int]], int, tuple[str, int]]:
    """What a run's files say, as MLflow takes it: tags, params, metrics, start, end."""
    result = read_metrics(run_dir)
    provenance = read_provenance(run_dir) or {}
    try:
        end_default = int((run_dir / METRICS_FILE).stat().st_mtime * 1000)
    except OSError:
        end_default = int(time.time() * 1000)
    start_ms = epoch_ms(provenance.get("started"), end_default)
    end_ms = epoch_ms(provenance.get("ended"), end_default)
    tags = {
        "status": result.status,
        "run_dir": str(Path(run_dir).resolve()),
        RUN_KEY: key_of(run_dir),
        FINGERPRINT: fingerprint(run_dir),
        **{f"provenance.{k}": v for k, v in flat_provenance(provenance).items()},
        **extra_tags,
    }
    if provenance.get("command"):
        tags["mlflow.source.name"] = str(provenance["command"])
    git = provenance.get("git")
    if isinstance(git, dict) and git.get("commit"):
        tags["mlflow.source.git.commit"] = str(git["commit"])
    metrics = [
        (tag, value, int(wall * 1000), step)
        for tag, points in read_scalars(run_dir).items()
        for step, value, wall in points
    ]
    steps = int(result.number("epochs_run") or 0)
    metrics += [(k, v, end_ms, steps) for k, v in final_metrics(result.metrics).items()]
    status = RUN_STATUS.get(result.status, "FAILED")
    return tags, run_params(run_dir), metrics, start_ms, (status, end_ms)


def run_artifacts(run_dir: Path) -> list[tuple[Path, str]]:
    found = [(run_dir / name, "") for name in RUN_ARTIFACTS if (run_dir / name).is_file()]
    hydra_dir = run_dir / HYDRA_DIR
    if hydra_dir.is_dir():
        found += [(path, "hydra") for path in sorted(hydra_dir.glob("*.yaml"))]
    return found


def log_run_dir(
    store: MlflowStore,
    run_dir: Path,
    name: str,
    extra_tags: Mapping[str, str],
    existing: Mapping[str, Any],
) -> tuple[str, bool]:
    """The run of ``run_dir`` in the store, and whether it was written now: a run already
    logged from the same files (in ``existing``, by RUN_KEY) stays; one logged from files
    that have changed since is replaced."""
    key = key_of(run_dir)
    earlier = existing.get(key)
    if earlier is not None and earlier.data.tags.get(FINGERPRINT) == fingerprint(run_dir):
        if earlier.data.tags.get("mlflow.parentRunId") != extra_tags.get("mlflow.parentRunId"):
            store.set_tags(earlier.info.run_id, extra_tags)
        return str(earlier.info.run_id), False
    if earlier is not None:
        store.delete(earlier.info.run_id)
    tags, params, metrics, start_ms, end = run_record(run_dir, extra_tags)
    run_id = store.write_run(name, tags, params, metrics, start_ms, end, run_artifacts(run_dir))
    return run_id, True


def later_command(path: Path) -> str:
    return f"python -m logreg_exp.summary {display_path(path)} --mlflow"


def track_run(run_dir: Path, node: Any) -> str | None:
    """Log the single run in ``run_dir`` as the config's ``tracker`` node says; its run id,
    or None where tracking is off or failed (said in one line)."""
    settings = tracker_settings(node)
    if settings is None:
        return None
    run_dir = Path(run_dir)
    try:
        store = MlflowStore(settings)
        existing = {key_of(run_dir): r for r in store.runs_tagged(RUN_KEY, key_of(run_dir))}
        run_id, _ = log_run_dir(store, run_dir, str(display_path(run_dir)), {}, existing)
    except Exception as err:
        warn_not_tracked(settings, err, run_dir)
        return None
    log.info("MLflow: run %s in %s (experiment %s)", run_id, settings.uri, settings.experiment)
    return run_id


def warn_not_tracked(settings: TrackerSettings, err: BaseException, path: Path) -> None:
    reason = " ".join(str(err).split())[:300] or type(err).__name__
    if isinstance(err, TrackerError):
        log.warning("warning: not logged to MLflow: %s", reason)
        return
    kind = getattr(err, "kind", type(err).__name__)  # the writer process's error's type
    log.warning(
        "warning: MLflow tracking at %s could not be written (%s: %s); the files are all in "
        "%s; log them later with: %s",
        settings.uri, kind, reason, display_path(path), later_command(path),
    )  # fmt: skip


def sweep_status(jobs: Sequence[Job]) -> str:
    """The parent run's status: FINISHED when every job ended, FAILED when one failed,
    KILLED when one was interrupted or never started."""
    statuses = {job.status for job in jobs}
    if any(job.result.counts_as_failure and job.dir is not None for job in jobs):
        return "FAILED"
    if statuses - {Status.COMPLETED.value, Status.DIVERGED.value}:
        return "KILLED"
    return "FINISHED"


def track_sweep(sweep_dir: Path, jobs: Sequence[Job], node: Any, writer: Any = None) -> str | None:
    """Log the sweep in ``sweep_dir`` (its ``jobs`` as the summary read them): a parent run,
    and a child run per job that started, by ``writer`` (the sweep's writer process,
    ``mlflow_writer.SweepWriter``) where given, else here: mlflow is imported now, not in a
    thread while the jobs run (its import configures logging, and deadlocked with a job's log
    handler). The parent's id, or None where tracking is off or failed (said in one line)."""
    settings = tracker_settings(node)
    if settings is None:
        return None
    sweep_dir = Path(sweep_dir)
    start = time.perf_counter()
    try:
        done = writer.written(sweep_dir, jobs) if writer is not None else None
        if done is None:  # no writer process, or one that died: written here
            store = MlflowStore(settings)
            with bulk_writes(sqlite_path(settings.uri)):
                done = log_sweep(store, sweep_dir, jobs)
        parent_id, written = done
    except Exception as err:
        warn_not_tracked(settings, err, sweep_dir)
        return None
    log.info(
        "MLflow: sweep run %s with %d job runs (%d written now) in %s, experiment %s (%.1f s)",
        parent_id, sum(job.dir is not None for job in jobs), written, settings.uri,
        settings.experiment, time.perf_counter() - start,
    )  # fmt: skip
    return parent_id


def sweep_metrics(jobs: Sequence[Job]) -> dict[str, float]:
    """The sweep's best values over its completed jobs, and how many completed."""
    done = [job for job in jobs if job.result.completed]
    found: dict[str, float] = {"completed_jobs": float(len(done))}
    for key, best in (("best_val_loss", min), ("best_val_acc", max)):
        values = [v for v in (job.value(key) for job in done) if v is not None]
        if values:
            found[key] = float(best(values))
    return found


def log_sweep(
    store: MlflowStore,
    sweep_dir: Path,
    jobs: Sequence[Job],
    summarized: Callable[[], None] | None = None,
) -> tuple[str, int]:
    """The parent run and its children; the parent's id and how many children were written.
    ``summarized``: waits, before the parent's artifacts, until the summary is written."""
    sweep_key = key_of(sweep_dir)
    runs = store.runs_tagged(SWEEP_KEY, sweep_key)
    parent = next((r for r in runs if RUN_KEY not in r.data.tags), None)
    children = {r.data.tags[RUN_KEY]: r for r in runs if RUN_KEY in r.data.tags}
    started = [job for job in jobs if job.dir is not None]
    now_ms = int(time.time() * 1000)
    sweep_tags = {
        SWEEP_KEY: sweep_key,
        "sweep_dir": str(sweep_dir.resolve()),
        "jobs": str(len(jobs)),
        **{f"jobs.{s}": str(sum(j.status == s for j in jobs)) for s in {j.status for j in jobs}},
    }
    overrides = load_yaml(sweep_dir / MULTIRUN_YAML)
    task = overrides.get("hydra", {}).get("overrides", {}) if isinstance(overrides, dict) else {}
    if isinstance(task, dict) and isinstance(task.get("task"), list):
        sweep_tags["overrides"] = " ".join(map(str, task["task"]))
    if parent is None:
        starts = []
        for job in started:
            assert job.dir is not None
            starts.append(epoch_ms((read_provenance(job.dir) or {}).get("started"), now_ms))
        parent_id = store.write_run(
            str(display_path(sweep_dir)), sweep_tags, {}, [], min(starts, default=now_ms), None, []
        )
    else:
        parent_id = str(parent.info.run_id)
        store.set_tags(parent_id, sweep_tags)
    store.log_metrics(parent_id, sweep_metrics(jobs), now_ms)
    written = 0
    for job in started:
        assert job.dir is not None
        job_tags = {
            "mlflow.parentRunId": parent_id,
            SWEEP_KEY: sweep_key,
            "sweep": str(sweep_dir.resolve()),
            "overrides": " ".join(job.overrides),
        }
        if job.num is not None:
            job_tags["job"] = str(job.num)
        _, new = log_run_dir(store, job.dir, job.dir.name, job_tags, children)
        written += new
    if summarized is not None:
        summarized()
    artifacts = [(sweep_dir / n, "") for n in SWEEP_ARTIFACTS if (sweep_dir / n).is_file()]
    if artifacts and store.settings.artifacts:
        store.log_artifacts(parent_id, artifacts)
    store.terminate(parent_id, sweep_status(jobs), now_ms)
    return parent_id, written
