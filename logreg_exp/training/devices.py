"""Turn the ``device`` config into a torch.device, or say clearly why it cannot be used."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

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


# torch runs an op on several threads only from this many elements on (at::internal::GRAIN_SIZE)
GRAIN_SIZE = 32768


def one_thread_is_enough(k: int, n_features: int, batch_sizes: Sequence[int]) -> bool:
    """Whether every tensor of a training or validation step of K models (a batch
    (B, n_features), scores (K, B), weights (n_features, K); K = 1 for a single run) is smaller
    than torch's grain size: no op is then split across threads, and the threads torch keeps
    only wait for work; on a machine whose cores are busy with other processes they take turns
    with the one that computes, and each tiny step waits for them."""
    largest = max(max(batch_sizes) * n_features, k * max(n_features, *batch_sizes))
    return largest < GRAIN_SIZE


def threads_for_problem(
    threads: int | None,
    default: int | None,
    k: int,
    n_features: int,
    batch_sizes: Sequence[int],
) -> int:
    """Set torch's threads for training K models of ``n_features`` on ``batch_sizes``:
    ``threads`` (the config's), else ``default`` (the launcher's), else one where the problem
    is below the grain size (``one_thread_is_enough``), else torch's own; return the count."""
    if threads is None and default is None and one_thread_is_enough(k, n_features, batch_sizes):
        default = 1
    return set_torch_threads(threads, default)
