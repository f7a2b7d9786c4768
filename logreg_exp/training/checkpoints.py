"""A run's two checkpoints: ``best.pt``, the best epoch's parameters and what they were chosen
by, read back as a model with a one-line error for a file that is not one of ours; and
``last.pt``, everything a run needs to go on after its last finished epoch.

``last.pt`` is rewritten (atomically) before the first epoch and after each one. It holds the
pipeline's state (parameters, updater state, where the training minibatches' next epoch
starts), torch's random generators, and the finished epochs' metrics with the best epoch so
far. A run resumed from it ends exactly as if it had never stopped (``tests/test_resume.py``
checks it bit for bit). numpy's generator is not in it: the data are drawn from ``seed`` while
the pipeline is built, and built again the same on resume. Whether a run resumes is the
output dir's decision (``output_dirs``): a dir keeps its ``last.pt`` only for a run of the
same config that goes on with it. ``last.pt`` also says what made it (``run_origin``: the
config's hash, the dtype, the data's shapes and a hash of their values), and a run resumes
from it only where all of these are its own (``check_origin``): a ``last.pt`` copied from
another run, or data changed between the attempts, is refused in one line.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from logreg_exp.errors import ConfigError, one_line
from logreg_exp.files import atomic_write, display_path
from logreg_exp.run_files import CHECKPOINT_FILE, PROGRESS_FILE
from logreg_exp.training.loop import FitResult
from logreg_exp.training.model import LogisticRegression, score_columns

if TYPE_CHECKING:
    from logreg_exp.training.build import Pipeline

PROGRESS_FORMAT = 2  # 2: it says what made it (``origin``)
# last.pt's entries and the type each must have: a file with another layout is not resumed.
PROGRESS_ENTRIES = {
    "epoch": int, "pipeline": dict, "fit": dict, "random": dict, "wall_s": (int, float),
}  # fmt: skip
PIPELINE_ENTRIES = ("model", "updater", "train_batches")


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
    """``best.pt``'s contents (``read_checkpoint_file``); ConfigError in one line for a file
    without a state dict."""
    path = Path(path)
    checkpoint = read_checkpoint_file(path)
    if not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigError(f"{path} is not a checkpoint of logreg_exp: it has no state_dict")
    return checkpoint


def read_checkpoint_file(path: Path) -> dict[str, Any]:
    """The dict a checkpoint file holds, read with ``weights_only=True``: tensors and plain
    values only, so a file from elsewhere cannot run code. ConfigError in one line for
    anything else."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(
            f"{path} holds objects other than tensors and plain values, so it is not a "
            "checkpoint of logreg_exp; it is not loaded (torch.load with weights_only=True)"
        ) from None
    except Exception as err:  # a truncated or foreign file: torch raises several kinds
        raise ConfigError(f"{path} is not a readable checkpoint ({one_line(err)})") from None
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"{path} is not a checkpoint of logreg_exp")
    return checkpoint


def load_model(
    path: Path, n_features: int, n_classes: int = 2
) -> tuple[LogisticRegression, dict[str, Any]]:
    """The model saved in ``path``, in the dtype it was trained in, and the checkpoint; a
    ConfigError in one line unless it is a logistic regression on ``n_features`` features
    and ``n_classes`` classes with finite parameters."""
    checkpoint = load_checkpoint(path)
    state = checkpoint["state_dict"]
    w, bias = state.get("w"), state.get("bias")
    if set(state) != {"w", "bias"} or not all(isinstance(t, torch.Tensor) for t in (w, bias)):
        raise ConfigError(
            f"{path} is not a checkpoint of logreg_exp: its state_dict holds "
            f"{', '.join(sorted(map(str, state))) or 'nothing'}, not w and bias"
        )
    k = score_columns(n_classes)
    if w.dim() != 2 or w.shape[1] != k or tuple(bias.shape) != (k,) or w.dtype != bias.dtype:
        shape = "(n_features, 1), bias (1,)" if k == 1 else f"(n_features, {k}), bias ({k},)"
        raise ConfigError(
            f"{path} holds parameters of another shape (w {tuple(w.shape)}, bias "
            f"{tuple(bias.shape)}) than a logistic regression's of {n_classes} classes "
            f"(w {shape})"
        )
    if w.shape[0] != n_features:
        raise ConfigError(
            f"{path} holds a model of {w.shape[0]} features, but its run's data have "
            f"{n_features}: is it the checkpoint of another run?"
        )
    if not (w.is_floating_point() and torch.isfinite(w).all() and torch.isfinite(bias).all()):
        raise ConfigError(f"{path} holds non-finite or non-float parameters")
    model = LogisticRegression(n_features, dtype=w.dtype, n_classes=n_classes)
    model.load_state_dict(state)
    return model.eval(), checkpoint


def random_states() -> dict[str, Any]:
    """torch's global generators: the CPU one, and each GPU's where CUDA is in use."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def set_random_states(states: Mapping[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_progress(
    run_dir: Path,
    pipeline: Pipeline,
    result: FitResult,
    wall_s: float,
    origin: Mapping[str, Any] | None = None,
) -> Path:
    """``last.pt`` after the epochs in ``result`` (none yet: the start); ``wall_s``: the
    run's time so far, earlier attempts included; ``origin``: what made it (``run_origin``)."""
    progress = {
        "origin": dict(origin or {}),
        "format": PROGRESS_FORMAT,
        "epoch": len(result.history),
        "pipeline": pipeline.state_dict(),
        "fit": result.progress(),
        "random": random_states(),
        "wall_s": wall_s,
    }
    path = Path(run_dir) / PROGRESS_FILE
    atomic_write(path, lambda f: torch.save(progress, f))
    return path


def load_progress(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir``'s ``last.pt``, None where there is none; ConfigError in one line for one
    that cannot be resumed from (``resume=false`` starts the run over)."""
    path = Path(run_dir) / PROGRESS_FILE
    if not path.exists():
        return None
    try:
        progress = read_checkpoint_file(path)
        if progress.get("format") != PROGRESS_FORMAT:
            raise ConfigError(
                f"{path} is not a {PROGRESS_FILE} of this logreg_exp (format "
                f"{progress.get('format')!r}, not {PROGRESS_FORMAT})"
            )
        wrong = [
            key for key, kind in PROGRESS_ENTRIES.items()
            if not isinstance(progress.get(key), kind) or isinstance(progress.get(key), bool)
        ]  # fmt: skip
        pipeline = progress.get("pipeline")
        if isinstance(pipeline, dict):
            wrong += [f"pipeline.{key}" for key in PIPELINE_ENTRIES if key not in pipeline]
        if wrong:
            raise ConfigError(
                f"{path} is not a {PROGRESS_FILE} of this logreg_exp: {', '.join(wrong)} "
                f"missing or of the wrong type"
            )
    except ConfigError as err:
        raise ConfigError(f"cannot resume: {err}; resume=false starts the run over") from None
    return progress


def run_origin(config: Mapping[str, Any], pipeline: Pipeline) -> dict[str, Any]:
    """What makes a run's numbers, for ``last.pt``: a hash of ``config`` (the run's identity,
    as the output dir's claim compares configs), the dtype, each split's shape, and a hash of
    the split data's values (a CSV whose rows were reordered or edited changes it). Taken
    right after the pipeline is built, before training reorders the training samples."""
    text = json.dumps(config, sort_keys=True, default=str)
    data = hashlib.sha256()
    shapes = {}
    for name in ("train", "val", "test"):
        split = getattr(pipeline, f"{name}_set")
        if split is None:
            continue
        shapes[name] = [list(t.shape) for t in split.tensors]
        for tensor in split.tensors:
            data.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {
        "config": hashlib.sha256(text.encode()).hexdigest(),
        "dtype": str(pipeline.model.w.dtype).removeprefix("torch."),
        "shapes": shapes,
        "data": data.hexdigest(),
    }


def check_origin(run_dir: Path, progress: Mapping[str, Any], origin: Mapping[str, Any]) -> None:
    """ConfigError in one line, naming the file and ``resume=false``, unless ``last.pt``
    (``progress``) was made by a run of this config on these data (``origin``)."""
    saved = progress.get("origin")
    why = None
    if not isinstance(saved, dict) or set(saved) != set(origin):
        why = "it does not say which config and data made it"
    elif saved["dtype"] != origin["dtype"]:
        why = f"it was made in {saved['dtype']}, this run trains in {origin['dtype']}"
    elif saved["shapes"] != origin["shapes"]:
        why = f"it was made on data of other shapes ({shapes(saved)}; now {shapes(origin)})"
    elif saved["config"] != origin["config"]:
        why = "it was made by a run of another config"
    elif saved["data"] != origin["data"]:
        why = "the data changed since it was made (other values or another order of the rows)"
    if why is not None:
        raise ConfigError(
            f"cannot resume from {display_path(Path(run_dir) / PROGRESS_FILE)}: {why}; "
            "resume=false starts the run over"
        )


def shapes(origin: Mapping[str, Any]) -> str:
    """``train 1500x2, val 500x2``: the samples' shapes of each split."""
    found = origin.get("shapes")
    if not isinstance(found, dict):
        return "unknown"
    return ", ".join(
        f"{name} {'x'.join(map(str, s[0])) if s and isinstance(s[0], list) else '?'}"
        for name, s in found.items()
    )


def restore(pipeline: Pipeline, progress: Mapping[str, Any]) -> FitResult:
    """Put a freshly built pipeline and torch's generators where ``last.pt`` left them; the
    result of the finished epochs, for ``fit(start=...)``. ConfigError in one line for
    entries that do not fit the pipeline (another model, updater or layout)."""
    try:
        pipeline.load_state_dict(progress["pipeline"])
        set_random_states(progress["random"])
        return FitResult.from_progress(progress["fit"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
        raise ConfigError(
            f"cannot resume: {PROGRESS_FILE} does not fit this run ({type(err).__name__}: "
            f"{one_line(err)}); resume=false starts the run over"
        ) from None
