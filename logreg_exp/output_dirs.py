"""What an output dir holds, and whether and how a run or a sweep may write there: one
decision for single runs, sweep jobs and sweep dirs alike, so that runs are never mixed in one
dir, and an unfinished run goes on where it stopped.

A dir holds a run's results when it has any of RESULT_FILES; the run's config is in its
``.hydra/config.yaml`` (a sweep's in ``multirun.yaml``), and how it ended in ``metrics.json``
(a sweep ended when it has its summary and each of its jobs ended). ``claim`` decides, by what
the dir holds and by ``resume`` (``auto``, ``true`` or ``false``):

- nothing of a run's results: the run starts there (``resume=true`` refuses: nothing to
  resume); files a run left without results (the ``.hydra/`` of a run stopped by a bad
  value) are cleared first;
- an unfinished run of the same config (interrupted, killed, failed): it resumes from its
  ``last.pt`` (``Start.RESUME``) unless ``resume=false``, or it left none; else it starts over
  in the dir. An unfinished sweep of the same config goes on likewise, each job resuming or
  starting in its own dir, where its launcher and sweeper allow it
  (``launchers.why_a_sweep_cannot_resume``);
- a finished run, or one of another config: refused with one line naming the dir, unless
  ``overwrite=true``, which clears it first (only the files a run writes; anything else in
  the dir stays). A job of a sweep that goes on keeps a run that ended (``Start.ENDED``).

A dir that another process is writing (it holds the dir's lock, a ``flock`` that ends with
the process) is refused whatever ``overwrite`` says. The keys in DIR_KEYS say how to treat
the dir, not what the run is, so they are left out when configs are compared.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from logreg_exp.errors import ConfigError, OutputError, os_reason
from logreg_exp.files import display_path
from logreg_exp.results import read_metrics
from logreg_exp.run_files import (
    CHECKPOINT_FILE,
    CONFIG_YAML,
    DECISION_BOUNDARY_FILE,
    EVALUATION_FILE,
    EVENTS_PREFIX,
    HYDRA_DIR,
    HYDRA_YAML,
    LOCK_FILE,
    METRICS_FILE,
    MULTIRUN_YAML,
    PICTURE_EVENTS_SUFFIX,
    PLAN_FILE,
    PREPROCESSING_FILE,
    PROGRESS_FILE,
    PROVENANCE_FILE,
    SEARCH_FILE,
    SETTINGS_CSV,
    SETTINGS_DIR,
    SUBMITIT_DIR,
    SUMMARY_CSV,
    SUMMARY_MD,
    SWEEP_PNG,
)
from logreg_exp.sweeps.launchers import why_a_sweep_cannot_resume
from logreg_exp.sweeps.summary import collect_jobs

try:
    import fcntl
except ImportError:  # not on POSIX: no lock
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DIR_KEYS = ("overwrite", "resume")  # how to treat the output dir: not part of a run's identity
RESUME_MODES = ("auto", "true", "false")

# What a run writes: its results, then the files Hydra writes around them.
RUN_RESULTS = (METRICS_FILE, CHECKPOINT_FILE, PROGRESS_FILE)  # what makes a dir a run's
RESULT_FILES = (
    *RUN_RESULTS,
    PREPROCESSING_FILE,
    EVALUATION_FILE,
    DECISION_BOUNDARY_FILE,
    PROVENANCE_FILE,
    f"{EVENTS_PREFIX}*",
)
TEMPORARY_FILES = tuple(f".{name}.*.tmp" for name in RESULT_FILES[:-1])  # files.atomic_write
# What a sweep writes in its dir, besides its job dirs.
SWEEP_FILES = (
    MULTIRUN_YAML,
    PLAN_FILE,
    SUMMARY_CSV,
    SUMMARY_MD,
    SETTINGS_CSV,
    SETTINGS_DIR,
    SWEEP_PNG,
    f"{EVENTS_PREFIX}*{PICTURE_EVENTS_SUFFIX}",  # sweep.png for TensorBoard
    SEARCH_FILE,
    SUBMITIT_DIR,
)
FINISHED_SWEEP = (SUMMARY_CSV, SUMMARY_MD)


class OutputDirInUse(ConfigError):
    """A dir this run may not write into; the message names it and the way out. Nothing
    is written into such a dir, not even a failed job's metrics.json."""


class Holds(Enum):
    """What an output dir holds, as ``claim`` decides on it."""

    NOTHING = "nothing"  # no results: write (after clearing a run's leftovers)
    SAME_UNFINISHED = "same unfinished"  # this config, not finished: resume it, or start over
    FINISHED = "finished"  # a finished run or sweep: refuse, unless overwrite
    OTHER = "other"  # another config's run or sweep: refuse, unless overwrite


class Start(Enum):
    """How a run (or sweep) starts in the dir it claimed."""

    FRESH = "fresh"  # from its first epoch: nothing of an earlier run is left in the dir
    RESUME = "resume"  # goes on with the unfinished run (its last.pt) or sweep in the dir
    ENDED = "ended"  # a job of a sweep that goes on, whose run ended: its results stand


@dataclass
class DirState:
    """What ``path`` holds, and in words (``a completed run``) for a message; ``resumable``:
    an unfinished run with its ``last.pt`` (whatever its config), or an unfinished sweep whose
    launcher resumes, else ``why_not`` says why it is not (for ``resume=true``)."""

    path: Path
    holds: Holds
    words: str = ""
    resumable: bool = False
    why_not: str = ""


@dataclass
class Claim:
    """A claimed dir: its lock, held until ``release``, and how the run starts there."""

    lock: DirLock
    start: Start = Start.FRESH

    def release(self) -> None:
        self.lock.release()


def resume_mode(value: Any) -> str:
    """``resume`` as one of RESUME_MODES (a YAML or command-line true/false arrives as a bool,
    and as ``True`` in a str field); the config's rule rejects any other value."""
    return str(value).lower()


def identity(node: Any) -> dict[str, Any]:
    """A config as compared between runs: unresolved (as Hydra saves it), without the
    DIR_KEYS."""
    container = OmegaConf.to_container(node, resolve=False, enum_to_str=True)
    assert isinstance(container, dict)
    return {key: value for key, value in container.items() if key not in DIR_KEYS}


def task_identity(config: DictConfig) -> dict[str, Any]:
    """The run's config, without Hydra's node: what Hydra saves as ``.hydra/config.yaml``."""
    return {key: value for key, value in identity(config).items() if key != "hydra"}


def sweep_identity(config: DictConfig) -> dict[str, Any]:
    """What makes two sweeps the same: the config, the command line's overrides (the jobs)
    and the sweeper's settings, as ``multirun.yaml`` holds them."""
    overrides = [
        override
        for override in OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        if str(override).lstrip("+~").split("=")[0] not in DIR_KEYS
    ]
    sweeper = OmegaConf.to_container(config.hydra.sweeper, resolve=False, enum_to_str=True)
    return {"config": task_identity(config), "overrides": overrides, "sweeper": sweeper}


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new), key=str)
        return [d for k in keys for d in differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".") or "(all)"]


def other_config(old: dict[str, Any] | None, new: dict[str, Any]) -> str | None:
    """Why ``old`` is not the config ``new`` (``batch_size, seed differ``); None if it is."""
    if old is None:
        return "whose config cannot be read"
    changed = differences(old, new)
    if not changed:
        return None
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return f"of another config ({shown} differ{'s' if len(changed) == 1 else ''})"


def load_yaml(path: Path) -> DictConfig | None:
    with contextlib.suppress(Exception):
        loaded = OmegaConf.load(path)
        if isinstance(loaded, DictConfig):
            return loaded
    return None


def has_any(path: Path, patterns: tuple[str, ...]) -> bool:
    return any(next(path.glob(pattern), None) is not None for pattern in patterns)


def inspect_run_dir(path: Path, config: dict[str, Any]) -> DirState:
    """What the run dir ``path`` holds, for a run of ``config`` (``task_identity``)."""
    path = Path(path)
    if (path / MULTIRUN_YAML).exists():
        return DirState(path, Holds.OTHER, "a sweep")
    if not has_any(path, RESULT_FILES):
        return DirState(path, Holds.NOTHING)
    result = read_metrics(path)
    # interrupted, failed, or killed before it wrote metrics.json
    unfinished = not result.ended
    resumable = unfinished and (path / PROGRESS_FILE).is_file()
    saved = load_yaml(path / HYDRA_DIR / CONFIG_YAML)
    why = other_config(None if saved is None else task_identity(saved), config)
    if why is not None:
        run = "an unfinished run" if resumable else "a run"
        return DirState(path, Holds.OTHER, f"{run} {why}", resumable)
    if not unfinished:
        return DirState(path, Holds.FINISHED, f"a {result.status} run")
    words = f"an unfinished run ({result.status})"
    return DirState(path, Holds.SAME_UNFINISHED, words, resumable, f"it left no {PROGRESS_FILE}")


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The dirs below ``sweep_dir`` that a sweep's jobs wrote (each has .hydra/hydra.yaml)."""
    return sorted(p.parent.parent for p in Path(sweep_dir).glob(f"**/{HYDRA_DIR}/{HYDRA_YAML}"))


def inspect_sweep_dir(path: Path, sweep: dict[str, Any], why_not: str = "") -> DirState:
    """What the sweep dir ``path`` holds, for a sweep of ``sweep`` (``sweep_identity``);
    ``why_not``: why such a sweep cannot go on where it stopped ("" where it can). A sweep
    that stopped early has its summary too, but not every one of its jobs ended: it is
    unfinished."""
    path = Path(path)
    if has_any(path, RUN_RESULTS):
        return DirState(path, Holds.OTHER, "a single run")
    if not (has_any(path, SWEEP_FILES) or job_dirs(path)):
        return DirState(path, Holds.NOTHING)
    if has_any(path, FINISHED_SWEEP) and all(job.result.ended for job in collect_jobs(path)):
        return DirState(path, Holds.FINISHED, "a finished sweep (it has its summary)")
    why = other_config(saved_sweep_identity(path / MULTIRUN_YAML), sweep)
    if why is not None:
        return DirState(path, Holds.OTHER, f"a sweep {why}")
    return DirState(path, Holds.SAME_UNFINISHED, "an unfinished sweep", not why_not, why_not)


def saved_sweep_identity(path: Path) -> dict[str, Any] | None:
    """``sweep_identity`` of the sweep config saved in ``path``; None where it cannot be read,
    or holds a value of the wrong type where the identity is made of (a number for the
    overrides)."""
    saved = load_yaml(path)
    try:
        return None if saved is None else sweep_identity(saved)
    except (ValueError, TypeError, AttributeError, OmegaConfBaseException):
        return None


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clear_run_dir(path: Path, log_file: str | None, keep_hydra: bool = False) -> None:
    """Delete the files a run writes in ``path`` (results, temporary files, ``.hydra/`` and
    the log ``log_file`` unless ``keep_hydra``: Hydra has just written them for this run)."""
    patterns = RESULT_FILES + TEMPORARY_FILES
    if not keep_hydra:
        patterns += (HYDRA_DIR,) + ((log_file,) if log_file else ())
    for pattern in patterns:
        for found in Path(path).glob(pattern):
            remove(found)


def remove_temporary_files(path: Path) -> None:
    """Delete the temporary files of writes that a killed run left in ``path``
    (``.last.pt.*.tmp``...): the dir's lock is held, so no write of them is under way. Each
    is only ever a copy in the making of a file it is renamed to when complete."""
    for pattern in TEMPORARY_FILES:
        for found in Path(path).glob(pattern):
            with contextlib.suppress(OSError):  # what cannot be deleted is left, as before
                remove(found)


def undo_failed_start(claim: Claim, path: Path, log_file: str | None) -> None:
    """A single run that failed before it wrote any result (a bad value, a missing CSV)
    leaves nothing behind: ``.hydra/``, its log and its lock file are deleted, then the dirs
    its claim created, where they are empty; the error was said on stderr. ``claim`` is
    released."""
    try:
        if has_any(path, RESULT_FILES + TEMPORARY_FILES):
            return
        with contextlib.suppress(OSError):
            clear_run_dir(path, log_file)
            (Path(path) / LOCK_FILE).unlink(missing_ok=True)
    finally:
        claim.release()
    for created in claim.lock.created:
        try:
            created.rmdir()  # only if empty
        except OSError:
            break


def clear_sweep_dir(path: Path, log_file: str | None) -> None:
    """Delete what a sweep writes in ``path``: its files, and its job dirs' files (a job dir
    left empty is removed)."""
    for job_dir in job_dirs(path):
        clear_run_dir(job_dir, log_file)
        with contextlib.suppress(OSError):
            (job_dir / LOCK_FILE).unlink(missing_ok=True)
            job_dir.rmdir()  # only if nothing else is in it
    for name in SWEEP_FILES:
        remove(Path(path) / name)


@dataclass
class DirLock:
    """An exclusive ``flock`` on ``path``'s lock file, held until ``release`` (or until the
    process ends, whatever ends it); the file holds the holder's pid."""

    file: IO[str] | None
    previous: str = ""  # what the lock file said before: the last holder's pid and mark
    created: list[Path] = field(default_factory=list)  # the dirs locking it made, deepest first

    def restore_previous(self) -> None:
        """Put back what the lock file said before this lock (its holder's mark)."""
        if self.file is not None:
            self.file.seek(0)
            self.file.truncate()
            self.file.write(self.previous)
            self.file.flush()

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing drops the lock
            self.file = None


def lock_dir(path: Path, what: str, mark: str = "") -> DirLock:
    """Create ``path`` if needed and lock it; OutputDirInUse if another process holds it,
    OutputError if it cannot be created or written. ``mark`` (a sweep job's number) is kept
    in the lock file after the holder's pid, for the next claim to read."""
    path = Path(path)
    shown = display_path(path)
    try:
        if path.exists() and not path.is_dir():
            raise OutputError(f"cannot use {shown} as the {what}: it is a file, not a directory")
        created = [d for d in (path, *path.parents) if not d.exists()]
        path.mkdir(parents=True, exist_ok=True)
        file = (path / LOCK_FILE).open("a+")
    except OSError as err:
        raise OutputError(f"cannot write the {what} {shown}: {os_reason(err)}") from None
    if fcntl is None:
        return DirLock(file, created=created)
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        file.seek(0)
        holder = (file.read().split() or [""])[0]
        file.close()
        by = f" (pid {holder})" if holder.isdigit() else ""
        raise OutputDirInUse(
            f"the {what} {shown} is in use by another process{by}; wait for it to end, or "
            f"choose another dir"
        ) from None
    file.seek(0)
    previous = file.read()
    file.seek(0)
    file.truncate()
    file.write(f"{os.getpid()} {mark}".rstrip() + "\n")
    file.flush()
    return DirLock(file, previous, created)


def claim(
    state: DirState,
    overwrite: bool,
    resume: str,
    what: str,
    key: str,
    clear: Any,
    lock: DirLock,
    keep_ended: bool = False,
) -> Claim:
    """Apply the decision on ``state`` (see the module docstring) for ``resume`` (one of
    RESUME_MODES); ``clear()`` empties the dir; ``key`` is the setting that chooses another
    dir; ``keep_ended``: a run that ended stands (a job of a sweep that goes on). Returns
    the claim, its lock still held."""
    shown = display_path(state.path)
    if state.holds is Holds.FINISHED and keep_ended and resume != "false":
        remove_temporary_files(state.path)
        return Claim(lock, Start.ENDED)
    resumes = state.holds is Holds.SAME_UNFINISHED and state.resumable and resume != "false"
    refused = state.holds in (Holds.FINISHED, Holds.OTHER)
    if (resume == "true" and not resumes) or (refused and not overwrite):
        lock.release()
        raise OutputDirInUse(refusal(state, what, key, resume == "true"))
    if resumes:
        remove_temporary_files(state.path)
        return Claim(lock, Start.RESUME)
    if state.holds is Holds.SAME_UNFINISHED:
        how = "resume=false" if state.resumable else state.why_not
        log.info("%s in %s starts over (%s)", state.words, shown, how)
    try:
        clear()
    except OSError as err:
        lock.release()
        raise OutputError(f"cannot clear the {what} {shown}: {os_reason(err)}") from None
    return Claim(lock, Start.FRESH)


def refusal(state: DirState, what: str, key: str, resume_true: bool) -> str:
    """Why ``claim`` refuses the dir, and the keys that change it, in one line: it holds a
    finished run or another config's (``overwrite=true`` deletes it), or ``resume=true``
    finds nothing to resume there."""
    shown = display_path(state.path)
    resume_it = "run it with its own config to resume it, " if state.resumable else ""
    if not resume_true:
        return (
            f"the {what} {shown} holds {state.words}; {resume_it}choose another {key}, or add "
            "overwrite=true to delete it first"
        )
    if state.holds is Holds.SAME_UNFINISHED:
        held, way_out = f"{state.words}, but {state.why_not}", "resume=auto starts it over"
    elif state.holds is Holds.NOTHING:
        held, way_out = "nothing", "resume=auto starts a new one"
    else:
        held = state.words
        way_out = (
            f"{resume_it}choose another {key}, or add overwrite=true instead of resume=true "
            "to delete it first"
        )
    thing = "sweep" if what == "sweep dir" else "run"
    return (
        f"resume=true, but the {what} {shown} holds no unfinished {thing} of this config to "
        f"resume ({held}); {way_out}"
    )


def claim_run_dir(
    path: Path, config: DictConfig, overwrite: bool, log_file: str | None, resume: str = "auto"
) -> Claim:
    """Lock the run dir ``path`` for a run of ``config`` (the task config) and make it
    ready, before Hydra writes into it; OutputDirInUse (one line) if it may not be used."""
    lock = lock_dir(path, "run dir")
    state = inspect_run_dir(path, task_identity(config))
    return claim(
        state,
        overwrite,
        resume_mode(resume),
        "run dir",
        "hydra.run.dir",
        lambda: clear_run_dir(path, log_file),
        lock,
    )


def claim_job_dir(
    path: Path, config: DictConfig, overwrite: bool, resume: str = "auto", job: str | None = None
) -> Claim:
    """The same for a sweep's job dir, from inside the job: Hydra has written its
    ``.hydra/`` and log already, so these are this job's and stay. The job dir of a sweep
    that goes on may hold this job's run from before: one that ended stands, an unfinished
    one resumes. ``resume=true`` was asked of the sweep dir (``claim_sweep_dir``): a job
    that had not started starts. ``job``: the job's number in its sweep; a dir that holds
    the run of another job of the sweep is refused (a ``hydra.sweep.subdir`` that gives two
    jobs one dir, where the sweeper decides its jobs as it goes and no plan could tell)."""
    lock = lock_dir(path, "job dir", "" if job is None else f"job {job}")
    earlier = lock.previous.split()[2:3] if lock.previous.split()[1:2] == ["job"] else []
    if job is not None and earlier and earlier[0] != job and has_any(path, RUN_RESULTS):
        lock.restore_previous()  # the dir stays job #earlier's
        lock.release()
        raise OutputDirInUse(
            f"the job dir {display_path(path)} holds the run of job #{earlier[0]} of this "
            f"sweep, and job #{job} would write there too; hydra.sweep.subdir must give each "
            "job its own dir (with ${hydra.job.num}, as the default does)"
        )
    state = inspect_run_dir(path, task_identity(config))
    mode = resume_mode(resume)
    return claim(
        state,
        overwrite,
        "auto" if mode == "true" else mode,
        "job dir",
        "hydra.sweep.dir",
        lambda: clear_run_dir(path, None, keep_hydra=True),
        lock,
        keep_ended=True,
    )


def claim_sweep_dir(
    path: Path, config: DictConfig, overwrite: bool, log_file: str | None, resume: str = "auto"
) -> Claim:
    """Lock the sweep dir ``path`` for the sweep of ``config`` (with its Hydra node) and
    make it ready, before the sweeper writes into it."""
    lock = lock_dir(path, "sweep dir")
    hydra = config.hydra
    why_not = why_a_sweep_cannot_resume(hydra.launcher.get("_target_"), hydra.sweeper._target_)
    state = inspect_sweep_dir(path, sweep_identity(config), why_not)
    return claim(
        state,
        overwrite,
        resume_mode(resume),
        "sweep dir",
        "hydra.sweep.dir",
        lambda: clear_sweep_dir(path, log_file),
        lock,
    )
