"""From numpy arrays to minibatches: split, standardize, TensorDataset, DataLoader."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from logreg_exp.errors import ConfigError


def split_train_val(
    x: np.ndarray,
    y: np.ndarray,
    val_fraction: float,
    rng: np.random.Generator,
    stratify: bool = False,
    source: str = "the data",
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Shuffle, then hold out ``round(val_fraction * n)`` points for validation.

    With ``stratify`` the hold-out is drawn per class (``round(val_fraction * n_class)``
    each), so both splits keep the class balance of the whole; each split's points stay
    in shuffled order. Each split must hold both classes; if not, the error names ``source``.

    One shuffled copy of the data, of which validation and training are views: the first
    ``n_val`` shuffled points, and the rest.
    """
    if stratify:
        val_parts, train_parts = [], []
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            n_val = round(val_fraction * len(members))
            val_parts.append(members[:n_val])
            train_parts.append(members[n_val:])
        val = rng.permutation(np.concatenate(val_parts))
        train = rng.permutation(np.concatenate(train_parts))
        order, n_val = np.concatenate([val, train]), len(val)
    else:
        order = rng.permutation(len(y))
        n_val = round(val_fraction * len(y))
    x, y = x[order], y[order]
    check_both_classes(y[n_val:], "training", val_fraction, source)
    check_both_classes(y[:n_val], "validation", val_fraction, source)
    return (x[n_val:], y[n_val:]), (x[:n_val], y[:n_val])


def check_both_classes(y: np.ndarray, split: str, val_fraction: float, source: str) -> None:
    """Accuracy and the loss need both classes in each split; say so when one is missing."""
    present = sorted({int(v) for v in np.unique(y)})
    if present != [0, 1]:
        has = f"only class {present[0]}" if present else "no samples"
        raise ConfigError(
            f"{source}: too few samples to split; the {split} split has {has} ({len(y)} "
            f"samples at dataset.val_fraction={val_fraction}); use more samples or another "
            "val_fraction"
        )


@dataclass
class Standardizer:
    """Feature-wise (x - mean) / std with mean and std from the training split only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        std = x.std(axis=0, dtype=np.float64)
        mean = x.mean(axis=0, dtype=np.float64)
        return cls(mean, np.where(std > 0, std, 1.0))  # a constant column stays 0

    def transform_(self, x: np.ndarray) -> np.ndarray:
        """Standardize ``x`` in place (no second copy of a large dataset); returns ``x``."""
        x -= self.mean.astype(x.dtype)
        x /= self.std.astype(x.dtype)
        return x


def to_tensor_dataset(
    x: np.ndarray, y: np.ndarray, dtype: torch.dtype, device: torch.device
) -> TensorDataset:
    """A TensorDataset of features (n, d) and float labels (n,), placed on ``device`` once."""
    return TensorDataset(
        torch.as_tensor(x, dtype=dtype, device=device),
        torch.as_tensor(y, dtype=dtype, device=device),
    )


class BatchIndexSampler(Sampler[torch.Tensor]):
    """Yields whole minibatches of indices as tensors: slices of one permutation per epoch.

    With ``DataLoader(dataset, sampler=..., batch_size=None)`` each minibatch is then a single
    indexed fetch ``dataset[indices]`` instead of one ``dataset[i]`` per sample plus a collate.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.n = n
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.device = device

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator)
        else:
            order = torch.arange(self.n)
        yield from order.to(self.device).split(self.batch_size)


def make_loader(
    dataset: TensorDataset,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader that fetches each minibatch of ``dataset`` with one indexed read.

    ``pin_memory``: for data kept on the host while training on a GPU, each minibatch is
    copied into page-locked memory, so that ``.to("cuda", non_blocking=True)`` is async.
    """
    n = len(dataset)
    device = dataset.tensors[0].device
    sampler = BatchIndexSampler(n, batch_size, shuffle, generator, device)
    return DataLoader(dataset, sampler=sampler, batch_size=None, pin_memory=pin_memory)
