"""A run's two checkpoints: ``best.pt``, the best epoch's parameters, and ``last.pt``, everything
a run needs to go on after its last finished epoch; and the decision to resume a run.

``last.pt`` is rewritten (atomically) before the first epoch and after each one. It holds the
pipeline's state (parameters, updater state, where the training minibatches' next epoch
starts), torch's random generators, the finished epochs' metrics and the best epoch so far,
and the config the run trains with. A run started again in the same dir with the same config
loads it and ends exactly as if it had never stopped (``tests/test_resume.py`` checks it bit
for bit). numpy's generator is not in it: the data are drawn from ``seed`` while the pipeline
is built, and built again the same on resume.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from logreg_exp.errors import ConfigError
from logreg_exp.files import atomic_write, display_path
from logreg_exp.results import read_metrics
from logreg_exp.training.loop import FitResult

if TYPE_CHECKING:
    from logreg_exp.training.build import Pipeline

CHECKPOINT_FILE = "best.pt"
PROGRESS_FILE = "last.pt"
PROGRESS_FORMAT = 1

# Keys that do not change what a run computes: a run resumes whatever they are set to.
NOT_COMPARED = ("resume",)


def save_checkpoint(
    run_dir: Path, state_dict: dict[str, torch.Tensor], epoch: int, monitor: str, value: float
) -> Path:
    """``best.pt``: the state dict and the epoch and metric it was chosen at.

    Only tensors, ints, floats and strings, so ``torch.load(path, weights_only=True)`` reads it.
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    checkpoint = {
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "epoch": epoch,
        "monitor": monitor,
        "value": value,
    }
    atomic_write(path, lambda f: torch.save(checkpoint, f))
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def random_states() -> dict[str, Any]:
    """torch's global generators: the CPU one, and each GPU's where CUDA is in use."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def set_random_states(states: Mapping[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_progress(
    run_dir: Path, pipeline: Pipeline, result: FitResult, config: dict[str, Any], wall_s: float
) -> Path:
    """``last.pt`` after the epochs in ``result`` (none yet: the start); ``config``: the job
    config, resolved, as plain values; ``wall_s``: the run's time so far, earlier attempts
    included."""
    progress = {
        "format": PROGRESS_FORMAT,
        "config": config,
        "epoch": len(result.history),
        "pipeline": pipeline.state_dict(),
        "fit": result.progress(),
        "random": random_states(),
        "wall_s": wall_s,
    }
    path = Path(run_dir) / PROGRESS_FILE
    atomic_write(path, lambda f: torch.save(progress, f))
    return path


def restore(pipeline: Pipeline, progress: Mapping[str, Any]) -> FitResult:
    """Put a freshly built pipeline and torch's generators where ``last.pt`` left them; the
    result of the finished epochs, for ``fit(start=...)``."""
    pipeline.load_state_dict(progress["pipeline"])
    set_random_states(progress["random"])
    return FitResult.from_progress(progress["fit"])


@dataclass
class SavedRun:
    """A run whose ``last.pt`` is in a dir (already loaded); ``ended``: its metrics.json says
    that it completed or diverged."""

    run_dir: Path
    progress: dict[str, Any]
    ended: bool = False

    @property
    def epochs_done(self) -> int:
        return int(self.progress["epoch"])

    @property
    def wall_s(self) -> float:
        return float(self.progress["wall_s"])

    def differences(self, config: Mapping[str, Any]) -> list[str]:
        """The keys whose values differ between its config and ``config`` (but those in
        NOT_COMPARED), as ``key: old -> new``."""
        old = {k: v for k, v in self.progress["config"].items() if k not in NOT_COMPARED}
        return differences(old, {k: v for k, v in config.items() if k not in NOT_COMPARED})

    def __str__(self) -> str:
        which = "ended" if self.ended else "unfinished"
        return f"the {which} run in {display_path(self.run_dir)}"


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            missing = "(unset)"
            found += differences(old.get(key, missing), new.get(key, missing), f"{prefix}{key}.")
        return found
    return [] if old == new else [f"{prefix.rstrip('.')}: {old} -> {new}"]


def saved_run(run_dir: Path) -> SavedRun | None:
    """The run in ``run_dir`` if its ``last.pt`` loads, else None (none, cut short, foreign)."""
    path = Path(run_dir) / PROGRESS_FILE
    if not path.is_file():
        return None
    try:
        progress = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # cut short or foreign: nothing to resume from
        return None
    if not isinstance(progress, dict) or progress.get("format") != PROGRESS_FORMAT:
        return None
    return SavedRun(Path(run_dir), progress, read_metrics(run_dir).final)


def unfinished_run(run_dir: Path) -> SavedRun | None:
    """The run in ``run_dir`` if it has not ended: a ``last.pt`` that loads, and no
    ``metrics.json`` saying that the run completed or diverged (a run that was interrupted,
    killed, or failed after it started training); None otherwise."""
    if read_metrics(run_dir).final:
        return None
    return saved_run(run_dir)


def unfinished_run_of(run_dir: Path, config: Mapping[str, Any]) -> SavedRun | None:
    """Whether ``run_dir`` holds an unfinished run of ``config`` (the job config, resolved,
    as plain values): that run, which a run of ``config`` in this dir goes on with; else
    None."""
    found = unfinished_run(run_dir)
    return found if found is not None and not found.differences(config) else None


def ended_run_of(run_dir: Path, config: Mapping[str, Any]) -> SavedRun | None:
    """Whether ``run_dir`` holds a run of ``config`` that has ended (completed or diverged):
    that run, whose results a run of ``config`` with ``resume=auto`` leaves as they are."""
    if not read_metrics(run_dir).final:
        return None
    found = saved_run(run_dir)
    return found if found is not None and not found.differences(config) else None


RESUME_MODES = ("auto", "true", "false")


def resume_mode(value: Any) -> str:
    """``resume`` as one of RESUME_MODES (a YAML or command-line true/false is a bool)."""
    return str(value).lower()


def run_to_resume(run_dir: Path, config: Mapping[str, Any], mode: str) -> SavedRun | None:
    """What ``resume=<mode>`` makes of ``run_dir``: the unfinished run to go on with, or None
    to start at epoch 1. ``auto`` goes on with an unfinished run of the same config, and
    refuses one of another config; ``true`` requires one; ``false`` always starts over.
    ConfigError when the dir does not allow what ``mode`` asks."""
    if mode == "false":
        return None
    found = unfinished_run(run_dir)
    if found is None:
        if mode == "true":
            raise ConfigError(
                f"resume=true, but {display_path(Path(run_dir))} holds no unfinished run "
                f"(no {PROGRESS_FILE}, or its metrics.json says the run ended)"
            )
        return None
    changed = found.differences(config)
    if changed:
        raise ConfigError(
            f"resume={mode}: {found} has another config ({'; '.join(changed)}); run it with "
            "the same config to resume it, resume=false to start over, or choose another dir"
        )
    return found


def discard_progress(run_dir: Path) -> None:
    """Remove an earlier attempt's checkpoints, for a run that starts over in its dir: a
    ``best.pt`` of that attempt must not pass for this one's."""
    for name in (PROGRESS_FILE, CHECKPOINT_FILE):
        (Path(run_dir) / name).unlink(missing_ok=True)
