"""Turn the ``device`` config into a torch.device, or say clearly why it cannot be used."""

from __future__ import annotations

import functools
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


FITS_FRACTION = 0.5  # of the GPU's free memory; the rest is for the model, batches, allocator


def data_device(device: torch.device, data_on_device: bool, nbytes: int) -> torch.device:
    """Where the dataset lives: on ``device``, moved there once, when ``data_on_device`` and it
    fits in half the GPU's free memory; else on the host, each minibatch moved as it is used.

    On the CPU the two are the same place.
    """
    if device.type == "cpu":
        return device
    if not data_on_device:
        log.info("data_on_device=false: the data stay on the host, moved batch by batch")
        return torch.device("cpu")
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes > FITS_FRACTION * free:
        log.info(
            "the data (%.0f MiB) do not fit in half of %s's free memory (%.0f MiB): "
            "they stay on the host, moved batch by batch",
            nbytes / 2**20,
            describe(device),
            free / 2**20,
        )
        return torch.device("cpu")
    return device


def describe(device: torch.device) -> str:
    """``cpu``, or ``cuda (NVIDIA H100 80GB HBM3)``: what a person wants to read in a log."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


@functools.cache
def torch_default_threads() -> int:
    """torch's own choice, read once before any job changes it: a later job in the same
    process that asks for the default gets this, not what the job before it set."""
    return torch.get_num_threads()


def set_torch_threads(threads: int | None, default: int | None) -> int:
    """Set torch's intra-op thread count to ``threads``, else ``default``, else torch's own;
    return the count in force."""
    count = threads or default or torch_default_threads()
    torch.set_num_threads(count)
    return torch.get_num_threads()
