"""Files a run leaves behind: ``metrics.json``, ``best.pt`` and pictures, written atomically.

A file is written to a temporary name beside its target and renamed over it, so a reader
(or a crash mid-write) never sees a truncated file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

CHECKPOINT_FILE = "best.pt"
DECISION_BOUNDARY_FILE = "decision_boundary.png"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> Path:
    atomic_write(path, lambda f: f.write(data))
    return path


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
    import torch  # here, not at the top: the sweep callbacks read metrics without torch

    atomic_write(path, lambda f: torch.save(checkpoint, f))
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def display_path(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it, as a user typed it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)
