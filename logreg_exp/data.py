"""The exercise's data as numpy arrays, then TensorDataset and DataLoader over them."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset


def rotation(angle: float) -> np.ndarray:
    """R(a) = [[cos a, sin a], [-sin a, cos a]], applied as x = z @ R(a)."""
    return np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])


CLASS0_ANGLE = 0.2 * math.pi
CLASS0_SHIFT = np.array([1.0, 3.0])
STRETCH = 3.0  # standard deviation of the first latent axis, before rotation


NOISE_ROWS = 1 << 16  # noise features are drawn this many rows at a time


def make_gaussian2d(
    n_samples: int,
    n_features: int,
    label_flip: float,
    rng: np.random.Generator,
    dtype: np.dtype | type = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``x`` of shape (n_samples, n_features) and labels ``y`` in {0, 1}, unshuffled.

    The first ``n_samples // 2`` points are class 1: z ~ N(0, I), z[:, 0] *= 3, x = z @ R(0).
    The rest are class 0: z drawn alike, x = z @ R(0.2 pi) + (1, 3). Each label is flipped with
    probability ``label_flip``. Features past the second are N(0, 1) noise in both classes.

    The arrays are written in place in ``dtype``: the draws are float64 whatever ``dtype`` is
    (so the points are the same, only rounded), but no float64 copy of the whole array exists,
    and the noise is drawn in blocks of rows (the same stream as one draw), so building a
    float32 dataset takes little more memory than the dataset itself.
    """
    n1 = n_samples // 2
    x = np.empty((n_samples, n_features), dtype=dtype)
    y = np.zeros(n_samples, dtype=dtype)
    z1 = rng.standard_normal((n1, 2))
    z1[:, 0] *= STRETCH
    z0 = rng.standard_normal((n_samples - n1, 2))
    z0[:, 0] *= STRETCH
    x[:n1, :2] = z1 @ rotation(0.0)
    x[n1:, :2] = z0 @ rotation(CLASS0_ANGLE) + CLASS0_SHIFT
    y[:n1] = 1.0
    flipped = rng.random(n_samples) < label_flip
    y[flipped] = 1.0 - y[flipped]
    if n_features > 2:
        for start in range(0, n_samples, NOISE_ROWS):
            stop = min(start + NOISE_ROWS, n_samples)
            x[start:stop, 2:] = rng.standard_normal((stop - start, n_features - 2))
    return x, y


def split_train_val(
    x: np.ndarray, y: np.ndarray, val_fraction: float, rng: np.random.Generator
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Shuffle, then hold out ``round(val_fraction * n)`` points for validation.

    One shuffled copy of the data, of which validation and training are views: the first
    ``n_val`` shuffled points, and the rest.
    """
    order = rng.permutation(len(y))
    n_val = round(val_fraction * len(y))
    x, y = x[order], y[order]
    return (x[n_val:], y[n_val:]), (x[:n_val], y[:n_val])


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


def load_arrays(
    dataset_cfg, rng: np.random.Generator, dtype: np.dtype | type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the dataset that ``dataset.name`` names, before the split."""
    if dataset_cfg.name == "gaussian2d":
        return make_gaussian2d(
            dataset_cfg.n_samples, dataset_cfg.n_features, dataset_cfg.label_flip, rng, dtype
        )
    raise ValueError(f"dataset.name={dataset_cfg.name!r} is not known; allowed: gaussian2d")
