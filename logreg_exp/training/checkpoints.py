"""``best.pt``: the best epoch's parameters and what they were chosen by, and reading it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from logreg_exp.files import atomic_write

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
    return torch.load(path, map_location="cpu", weights_only=True)
