"""``best.pt``: the best epoch's parameters and what they were chosen by, and reading it back
as a model, with a one-line error for a file that is not one of ours."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from logreg_exp.errors import ConfigError, one_line
from logreg_exp.files import atomic_write
from logreg_exp.training.model import LogisticRegression

CHECKPOINT_FILE = "best.pt"


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
    """The checkpoint, read with ``weights_only=True``: tensors and plain values only, so a
    file from elsewhere cannot run code. ConfigError in one line for anything else."""
    path = Path(path)
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
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigError(f"{path} is not a checkpoint of logreg_exp: it has no state_dict")
    return checkpoint


def load_model(path: Path, n_features: int) -> tuple[LogisticRegression, dict[str, Any]]:
    """The model saved in ``path``, in the dtype it was trained in, and the checkpoint; a
    ConfigError in one line unless it is a logistic regression on ``n_features`` features
    with finite parameters."""
    checkpoint = load_checkpoint(path)
    state = checkpoint["state_dict"]
    w, bias = state.get("w"), state.get("bias")
    if set(state) != {"w", "bias"} or not all(isinstance(t, torch.Tensor) for t in (w, bias)):
        raise ConfigError(
            f"{path} is not a checkpoint of logreg_exp: its state_dict holds "
            f"{', '.join(sorted(map(str, state))) or 'nothing'}, not w and bias"
        )
    if w.dim() != 2 or w.shape[1] != 1 or tuple(bias.shape) != (1,) or w.dtype != bias.dtype:
        raise ConfigError(
            f"{path} holds parameters of another shape (w {tuple(w.shape)}, bias "
            f"{tuple(bias.shape)}) than a logistic regression's (w (n_features, 1), bias (1,))"
        )
    if w.shape[0] != n_features:
        raise ConfigError(
            f"{path} holds a model of {w.shape[0]} features, but its run's data have "
            f"{n_features}: is it the checkpoint of another run?"
        )
    if not (w.is_floating_point() and torch.isfinite(w).all() and torch.isfinite(bias).all()):
        raise ConfigError(f"{path} holds non-finite or non-float parameters")
    model = LogisticRegression(n_features, dtype=w.dtype)
    model.load_state_dict(state)
    return model.eval(), checkpoint
