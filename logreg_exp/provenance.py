"""Which code made a run: ``provenance.json`` in its dir, written as the run starts and again,
with its end time, as it ends. It holds the command line, the git commit of the working
directory's repository and whether it had uncommitted changes (absent outside a repository,
never an error), the versions of this package, Python and the libraries a result depends on,
the host, the device and the thread count. TensorBoard's Text tab, the tracker's tags and
``evaluate`` show it. Imports neither torch nor Hydra: the versions come from the installed
distributions' metadata."""

from __future__ import annotations

import functools
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from logreg_exp.files import atomic_write
from logreg_exp.run_files import PROVENANCE_FILE

# The distributions whose versions a result depends on, by their names on PyPI.
PACKAGES = ("logreg-exp", "torch", "hydra-core", "omegaconf", "numpy")
# Set by the entrypoint to the command the user typed, for the jobs a launcher runs in other
# processes (joblib's workers, SLURM's tasks), whose own command line is the launcher's.
COMMAND_VARIABLE = "LOGREG_EXP_COMMAND"
GIT_TIMEOUT_S = 5.0


def command_line(argv: list[str] | None = None) -> str:
    """``python -m logreg_exp ARGS`` as a shell would take it back."""
    argv = sys.argv if argv is None else argv
    program = argv[0] if argv else ""
    if program.endswith(("__main__.py", "logreg-exp")):
        head = ["python", "-m", "logreg_exp"]
    else:
        head = [program]
    return shlex.join([*head, *argv[1:]])


def now() -> str:
    """The time in ISO 8601, UTC, to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def versions() -> dict[str, str | None]:
    """Python's version and each of PACKAGES' (None where one is not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_state(cwd: str) -> dict[str, Any] | None:
    """The commit checked out in the git repository holding ``cwd`` and whether tracked files
    differ from it; None outside a repository, or without git."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", cwd, *args], capture_output=True, text=True,
                timeout=GIT_TIMEOUT_S, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


@functools.lru_cache(maxsize=4)
def process_provenance(cwd: str) -> dict[str, Any]:
    """What every run of this process shares, found once (git runs twice)."""
    record: dict[str, Any] = {
        "command": os.environ.get(COMMAND_VARIABLE) or command_line(),
        "cwd": cwd,
    }
    state = git_state(cwd)
    if state is not None:
        record["git"] = state
    record["versions"] = versions()
    record["host"] = socket.gethostname()
    return record


def start_provenance(device: str, threads: int, started: str | None = None) -> dict[str, Any]:
    """The provenance of a run starting now (or at ``started``) on ``device`` with ``threads``
    torch threads."""
    record = dict(process_provenance(os.getcwd()))
    record.update(device=device, threads=threads, started=started or now(), ended=None)
    return record


def ended(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "ended": now()}


# What TensorBoard's Text tab shows of a provenance: the code, the same for a job whatever
# launcher ran it; the command, device, threads and times stay in provenance.json.
CODE_KEYS = ("git", "versions", "host", "cwd")


def code_provenance(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in CODE_KEYS if key in record}


def provenance_text(record: dict[str, Any]) -> str:
    """The record as indented JSON, as the file holds it."""
    return json.dumps(record, indent=2) + "\n"


def write_provenance(job_dir: Path, record: dict[str, Any]) -> Path:
    """``provenance.json`` in ``job_dir`` (made if missing: it is a run's first file)."""
    Path(job_dir).mkdir(parents=True, exist_ok=True)
    path = Path(job_dir) / PROVENANCE_FILE
    text = provenance_text(record)
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def read_provenance(job_dir: Path) -> dict[str, Any] | None:
    """The run's provenance; None where it has none, or none readable (an older run)."""
    try:
        record = json.loads((Path(job_dir) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def flat_provenance(record: dict[str, Any]) -> dict[str, str]:
    """One line a fact, under dotted names (``git.commit``, ``versions.torch``), for tags
    and the console; what is unknown is left out."""
    flat: dict[str, str] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": str(v) for k, v in value.items() if v is not None})
        elif value is not None:
            flat[key] = str(value)
    return flat


def provenance_lines(record: dict[str, Any] | None) -> list[str]:
    """What made the run, in three lines for ``evaluate``; one line for a run without a
    provenance (made before runs recorded one)."""
    if record is None:
        return [f"made by: unknown (no readable {PROVENANCE_FILE})"]
    git = record.get("git")
    code = "not in a git repository"
    if isinstance(git, dict):
        code = f"git commit {git.get('commit')}" + (
            " with uncommitted changes" if git.get("dirty") else ""
        )
    versions = record.get("versions") if isinstance(record.get("versions"), dict) else {}
    listed = ", ".join(f"{name} {v}" for name, v in versions.items() if v is not None)
    return [
        f"made by: {record.get('command')} ({code})",
        f"  {listed}",
        f"  on {record.get('host')}, {record.get('device')}, {record.get('threads')} torch "
        f"threads, from {record.get('started')} to {record.get('ended') or '(not ended)'}",
    ]
