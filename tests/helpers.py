"""Helpers every test module shares: compose the real config, build and fit in-process, run
the real CLI, read what a run leaves behind."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from logreg_exp.cli import compose
from logreg_exp.hydra_compat import apply_overrides
from logreg_exp.results import Monitor
from logreg_exp.sweeps.vectorized import ConfigDeriver
from logreg_exp.training.build import build_pipeline

REPO = Path(__file__).resolve().parents[1]
PARSER = OverridesParser.create()

# The exercise's data, key by key: the default dataset and experiment=exercise's.
EXERCISE_DATASET = {
    "name": "gaussian2d",
    "n_samples": 5000,
    "n_features": 2,
    "label_flip": 0.1,
    "val_fraction": 0.5,
    "test_fraction": 0.0,
    "stratify": False,
    "standardize": False,
    "max_samples": None,
    "folds": None,
    "fold": 0,
}


def compose_config(*overrides: str, with_hydra: bool = False) -> DictConfig:
    """The config ``python -m logreg_exp OVERRIDES`` would run with (see ``cli.compose``),
    the caller's own copy. Without its ``hydra`` node a config follows from its overrides
    alone, so each set is made once (see ``composed``); the ``hydra`` node also holds the
    working directory (and Hydra reads the environment), so it is made once for each."""
    if with_hydra:
        environment = tuple(sorted(os.environ.items()))
        return copy.deepcopy(composed_in(overrides, os.getcwd(), environment))
    return copy.deepcopy(composed(overrides))


@functools.cache
def composed_in(overrides: tuple[str, ...], cwd: str, environment: tuple) -> DictConfig:
    """The config for ``overrides`` with its ``hydra`` node, composed once in ``cwd`` with
    ``environment``; only ``compose_config`` hands it out."""
    return compose(*overrides, with_hydra=True)


@functools.cache
def composed(overrides: tuple[str, ...]) -> DictConfig:
    """The config for ``overrides``, made once; only ``compose_config`` hands it out.

    Most tests change only values, and composing is the slow step: overrides that set a
    plain value are applied with Hydra's own function, as Hydra applies them after composing,
    to the config composed from the others (group choices, +, ~), which tests share. The
    vectorized launcher derives a sweep's jobs the same way (``ConfigDeriver``), and
    ``test_helpers.py`` checks that the result is what Hydra composes. A key given twice, or
    a value that is not a plain leaf, is composed whole.
    """
    parsed = PARSER.parse_overrides(list(overrides))
    groups = composed_with_hydra(()).hydra.runtime.choices
    plain = [o for o in parsed if ConfigDeriver.signature([o]) and o.key_or_group not in groups]
    keys = [o.key_or_group for o in parsed]
    if len(set(keys)) < len(keys):
        return compose(*overrides)
    others = tuple(o.input_line for o in parsed if o not in plain)
    if not plain:  # what cli.compose returns: the config composed with its hydra node, less it
        cfg = copy.deepcopy(composed_with_hydra(others))
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg
    if ConfigDeriver.group_keys(composed_with_hydra(others), plain) != frozenset():
        return compose(*overrides)
    cfg = copy.deepcopy(composed(others))
    apply_overrides(plain, cfg)
    return cfg


@functools.cache
def composed_with_hydra(overrides: tuple[str, ...]) -> DictConfig:
    """The config for ``overrides`` with its ``hydra`` node, composed once: ``composed``
    reads its group choices and hands out the rest."""
    return compose(*overrides, with_hydra=True)


def build(*overrides: str):
    """The config and the pipeline ``python -m logreg_exp OVERRIDES`` would build, on CPU."""
    cfg = compose_config(*overrides)
    return cfg, build_pipeline(cfg, torch.device("cpu"))


def fit_built(cfg, exp, **fit_kwargs):
    """``Pipeline.fit`` on a built pipeline, as a job calls it."""
    return exp.fit(cfg.epochs, Monitor(cfg.monitor), **fit_kwargs)


def run_cli(
    *args: str, cwd: Path, timeout: float = 300, module: str = "logreg_exp"
) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` in a subprocess, as a user would run it (``module``:
    ``logreg_exp``, ``logreg_exp.evaluate``, ...)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    """A command that failed as a user's mistake should: exit 1, one line on stderr."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def can_mount_tmpfs(tmp_path: Path) -> bool:
    """Whether this machine lets a test mount a private tmpfs (a user namespace)."""
    probe = [*UNSHARE, "sh", "-c", "mount -t tmpfs -o size=64k none ."]
    try:
        return subprocess.run(probe, cwd=tmp_path, capture_output=True).returncode == 0
    except OSError:
        return False


def run_on_tmpfs(
    tmp_path: Path, options: str, *args: str, keep: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m logreg_exp ARGS`` with a tmpfs mounted (``-o OPTIONS``: ``size=64k``,
    ``ro``) at ``tmp_path/disk``, private to the command and gone when it ends; ``disk/KEEP``
    is copied out to ``tmp_path/copy`` first."""
    (tmp_path / "disk").mkdir()
    script = f'mount -t tmpfs -o {options} none disk && "$0" -m logreg_exp "$@"; rc=$?; '
    if keep:
        script += f"cp -r disk/{keep} copy; "
    return subprocess.run(
        [*UNSHARE, "sh", "-c", script + "exit $rc", sys.executable, *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def children_of(pid: int) -> set[int]:
    """The processes whose parent is ``pid``, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


TIMINGS = {"train_s", "val_s", "wall_s", "train_samples_per_s"}


def without_timings(metrics: dict) -> dict:
    """metrics.json without its timings, which differ from run to run."""
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def read_metrics_json(job_dir: Path) -> dict:
    return json.loads((Path(job_dir) / "metrics.json").read_text())


def event_records(run_dir: Path) -> list[tuple[str, int, object]]:
    """Everything the run dir's event files hold, file after file, as (tag, step, value):
    scalars' values, texts' and images' bytes, the HParams session's start and end (their
    clock times left out); what two runs that computed the same must share exactly."""
    records = []
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                records.append((value.tag, event.step, summary_value(value)))
    return records


def summary_value(value) -> object:
    if value.HasField("simple_value"):
        return value.simple_value
    if value.HasField("image"):
        return value.image.encoded_image_string
    if value.metadata.plugin_data.plugin_name == "hparams":
        data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
        data.session_start_info.start_time_secs = 0
        data.session_end_info.end_time_secs = 0
        return data.SerializeToString(deterministic=True)
    return value.tensor.SerializeToString(deterministic=True)


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in the run dir's event files, as (step, value) pairs."""
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def completed_metrics(best_loss: float, best_acc: float, monitor: str = "val_loss") -> dict:
    """A completed job's metrics.json, its final values a little worse than its best."""
    return {
        "status": "completed", "monitor": monitor, "best_epoch": 3,
        "best_val_loss": best_loss, "best_val_acc": best_acc,
        "final_val_loss": best_loss + 0.01, "final_val_acc": best_acc - 0.01,
        "epochs_run": 4, "wall_s": 1.25,
    }  # fmt: skip


def make_job(
    sweep: Path, num: int, overrides: list[str], metrics: dict | str | None, name: str | None = None
) -> Path:
    """A job dir as Hydra and a run leave it, named as conf/config.yaml names it (``name``:
    another name); ``metrics`` None: no metrics.json, str: its raw text."""
    job = sweep / (name or f"{num:04d}_{','.join(sorted(overrides))}")
    (job / ".hydra").mkdir(parents=True)
    task = "".join(f"\n      - {o}" for o in overrides) or " []"
    (job / ".hydra" / "hydra.yaml").write_text(
        f"hydra:\n  job:\n    name: logreg_exp\n    num: {num}\n  overrides:\n    task:{task}\n"
    )
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides) or "[]")
    if metrics is not None:
        text = metrics if isinstance(metrics, str) else json.dumps(metrics)
        (job / "metrics.json").write_text(text)
    return job


def write_csv(path: Path, n: int = 200, seed: int = 0, separation: float = 3.0) -> Path:
    """Two classes labelled 'neg' and 'pos', ``separation`` apart on each of 3 features, in a
    shuffled order."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3)) + separation * y[:, None]
    lines = ["f1,f2,f3,kind"] + [
        f"{a:.5f},{b:.5f},{c:.5f},{'pos' if t else 'neg'}"
        for (a, b, c), t in zip(x, y, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def finished_run(run_dir: Path, *overrides: str, launched_in: Path | None = None) -> Path:
    """``run_dir`` as ``python -m logreg_exp OVERRIDES`` leaves it, made in-process: the job's
    files, and the ``.hydra/`` files that evaluate and predict read (the config, and the
    directory it was launched in, ``launched_in``, default the current one)."""
    from logreg_exp.single_run import run_job

    cfg = compose_config(*overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_job(cfg, run_dir)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    cwd = str(launched_in or Path.cwd())
    OmegaConf.save({"hydra": {"runtime": {"cwd": cwd}}}, run_dir / ".hydra" / "hydra.yaml")
    return run_dir


def wait_until(found, what: str, limit_s: float = 300):
    """``found()``'s first true value, polled; a test that would hang fails instead."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"no {what} after {limit_s} s")


def job_id(job: Path) -> str | None:
    """The submitit job id Hydra recorded in a started job's dir (for the local executor,
    the job's process id), or None before then."""
    try:
        hydra_cfg = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())
        return str(hydra_cfg["hydra"]["job"]["id"])
    except (OSError, TypeError, KeyError, yaml.YAMLError):  # not there, or half written
        return None


def reached_epoch(job: Path, epoch: int) -> bool:
    log = job / "logreg_exp.log"
    return log.exists() and re.search(rf"epoch +{epoch}/", log.read_text()) is not None
