"""Turn the ``device`` config into a torch.device, or say clearly why it cannot be used."""

from __future__ import annotations

import logging

import torch

from logreg_exp.errors import ConfigError

log = logging.getLogger(__name__)

DEVICE_NAMES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """``cpu``; ``cuda`` (an error when CUDA is unavailable); ``auto``: CUDA if available."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "device=cuda: CUDA is not available on this machine; use device=cpu or device=auto"
            )
        return torch.device("cuda")
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        log.info("device=auto chose %s", describe(device))
        return device
    raise ConfigError(f"device.name={name!r} is not known; allowed: {', '.join(DEVICE_NAMES)}")


def describe(device: torch.device) -> str:
    """``cpu``, or ``cuda (NVIDIA H100 80GB HBM3)``: what a person wants to read in a log."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
