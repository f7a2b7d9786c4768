"""From numpy arrays to minibatches: split, standardize, TensorDataset, DataLoader."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from logreg_exp.errors import ConfigError

Arrays = tuple[np.ndarray, np.ndarray]  # features (n, d) and labels (n,)


def split_train_val_test(
    x: np.ndarray,
    y: np.ndarray,
    val_fraction: float,
    rng: np.random.Generator,
    stratify: bool = False,
    source: str = "the data",
    test_fraction: float = 0.0,
    classes: Sequence[str] = ("0", "1"),
) -> tuple[Arrays, Arrays, Arrays]:
    """Shuffle, then hold out ``round(test_fraction * n)`` points for the test split and
    ``round(val_fraction * n)`` for validation; the rest train. (train, val, test).

    The test points are drawn first, from the same seeded shuffle, so with
    ``test_fraction=0`` (an empty test split, and no extra draw) the training and validation
    splits are exactly those of a run without one. With ``stratify`` each hold-out is drawn
    per class (``round(fraction * n_class)`` each), so every split keeps the class balance
    of the whole; each split's points stay in shuffled order. Each split must hold every
    one of ``classes`` (the names of labels 0, 1, ...; an empty test split aside); if not,
    the error names ``source`` and the class.

    One shuffled copy of the data, of which test, validation and training are views: the
    first ``n_test`` shuffled points, the next ``n_val``, and the rest.
    """
    if stratify:
        test_parts, val_parts, train_parts = [], [], []
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            n_test = round(test_fraction * len(members))
            n_val = round(val_fraction * len(members))
            test_parts.append(members[:n_test])
            val_parts.append(members[n_test : n_test + n_val])
            train_parts.append(members[n_test + n_val :])
        test = np.concatenate(test_parts)
        if len(test):
            test = rng.permutation(test)
        val = rng.permutation(np.concatenate(val_parts))
        train = rng.permutation(np.concatenate(train_parts))
        order, n_test, n_val = np.concatenate([test, val, train]), len(test), len(val)
    else:
        order = rng.permutation(len(y))
        n_test, n_val = round(test_fraction * len(y)), round(val_fraction * len(y))
    x, y = x[order], y[order]
    first_train = n_test + n_val
    held_out = {"val_fraction": val_fraction, "test_fraction": test_fraction}
    if not test_fraction:
        del held_out["test_fraction"]
    check = ClassCheck(classes, source, stratify, y)
    check(y[first_train:], "training", held_out)
    check(y[n_test:first_train], "validation", {"val_fraction": val_fraction})
    if test_fraction:
        check(y[:n_test], "test", {"test_fraction": test_fraction})
    return (
        (x[first_train:], y[first_train:]),
        (x[n_test:first_train], y[n_test:first_train]),
        (x[:n_test], y[:n_test]),
    )


def split_test_and_folds(
    x: np.ndarray,
    y: np.ndarray,
    folds: int,
    fold: int,
    rng: np.random.Generator,
    stratify: bool = False,
    source: str = "the data",
    test_fraction: float = 0.0,
    classes: Sequence[str] = ("0", "1"),
) -> tuple[Arrays, Arrays, Arrays]:
    """k-fold cross-validation's splits, (train, val, test): the test split held out first,
        drawn as ``split_train_val_test`` draws it (the same points for the same seed); the rest
        dealt into ``folds`` folds (per class with ``stratify``, so each fold keeps the class
        balance), fold ``fold`` validating and the others training. The draws up to the folds do
        not depend on ``fold``, so a seed's K folds partition the same points around one test
        split. Each split must hold every one of ``classes``; if not, the error names ``source``
    and the class."""
    if stratify:
        test_parts: list[np.ndarray] = []
        fold_parts: list[list[np.ndarray]] = [[] for _ in range(folds)]
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            n_test = round(test_fraction * len(members))
            test_parts.append(members[:n_test])
            for k, part in enumerate(np.array_split(members[n_test:], folds)):
                fold_parts[k].append(part)
        test = np.concatenate(test_parts)
        if len(test):
            test = rng.permutation(test)
        parts = [np.concatenate(part) for part in fold_parts]
    else:
        order = rng.permutation(len(y))
        n_test = round(test_fraction * len(y))
        test, parts = order[:n_test], np.array_split(order[n_test:], folds)
    val = parts[fold]
    train = np.concatenate([part for k, part in enumerate(parts) if k != fold])
    if stratify:  # each split's points in shuffled order, as without folds
        val, train = rng.permutation(val), rng.permutation(train)
    held_out = {"folds": folds, "test_fraction": test_fraction}
    if not test_fraction:
        del held_out["test_fraction"]
    check = ClassCheck(classes, source, stratify, y)
    check(y[train], "training", held_out)
    check(y[val], f"validation (fold {fold})", {"folds": folds})
    if test_fraction:
        check(y[test], "test", {"test_fraction": test_fraction})
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


@dataclass
class ClassCheck:
    """Accuracy and the loss need every class in each split: say which one a split lacks,
    naming the ``dataset`` keys that sized it. Two classes keep the message they always had;
    for K >= 3 it names the class and how many samples of it there are in all."""

    classes: Sequence[str]
    source: str
    stratify: bool
    y: np.ndarray

    def __call__(self, y: np.ndarray, split: str, held_out: dict[str, float]) -> None:
        present = sorted({int(v) for v in np.unique(y)})
        if len(present) == len(self.classes):
            return
        settings = ", ".join(f"dataset.{key}={value}" for key, value in held_out.items())
        remedy = f"use more samples or another {' or '.join(held_out)}"
        if len(self.classes) == 2:
            has = f"only class {present[0]}" if present else "no samples"
            raise ConfigError(
                f"{self.source}: too few samples to split; the {split} split has {has} "
                f"({len(y)} samples at {settings}); {remedy}"
            )
        k = next(k for k in range(len(self.classes)) if k not in present)
        in_all = int((self.y == k).sum())
        how = " after stratification" if self.stratify else ""
        raise ConfigError(
            f"{self.source}: the {split} split has no sample of class {self.classes[k]!r}"
            f"{how} ({in_all} in all, at {settings}); every class needs a sample in each "
            f"split: {remedy}"
        )


@dataclass
class Standardizer:
    """Feature-wise (x - mean) / std with mean and std from the training split only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(
        cls, x: np.ndarray, names: list[str] | None = None, source: str = "the data"
    ) -> Standardizer:
        """Mean and std of each column of ``x``; a ConfigError naming the column (from
        ``names``) and ``source`` if they overflow float64, which would zero the column."""
        with np.errstate(over="ignore", invalid="ignore"):
            std = x.std(axis=0, dtype=np.float64)
            mean = x.mean(axis=0, dtype=np.float64)
        bad = np.flatnonzero(~(np.isfinite(std) & np.isfinite(mean)))
        if len(bad):
            j = int(bad[0])
            name = repr(names[j]) if names else str(j)
            largest = float(np.abs(x[:, j]).max())
            raise ConfigError(
                f"{source}: column {name} cannot be standardized: its values (up to "
                f"{largest:.3g} in magnitude) overflow float64 in its variance; rescale the "
                "column, or set dataset.standardize=false"
            )
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


class Minibatches(IterableDataset):
    """A TensorDataset's minibatches, in a new random order each epoch if ``shuffle``.

    Each pass over it (each ``for x, y in loader``: an epoch) starts by reordering the
    dataset's tensors by one ``torch.randperm``, one gather of the whole set, and then yields
    consecutive ``batch_size`` chunks made by one ``torch.split`` per tensor: views, with no
    per-sample and no per-batch indexing. Batch k holds the samples ``perm[k*b:(k+1)*b]`` of
    the epoch's order, as indexing with the permutation would. Making the epoch's views in
    one call is what brings the loop to the eager floor: slicing each minibatch as it is
    needed costs about 10 us a step in a loop whose step costs 170 us (``python -m
    benchmarks.bench``).

    The gather writes into a second buffer kept from epoch to epoch, and the two swap: a
    fresh allocation each epoch would fault in new pages, which costs more than the gather
    (180 ms against 30 ms an epoch for 500k x 64 float32 on one core). The price is one more
    copy of the training set, and a batch stays valid for one more epoch only: take a copy
    to keep one longer.

    Each epoch's order is a permutation of the one before, so where the next epoch starts
    is the generator's state and ``order``, the current position of every sample in the
    dataset as built (kept on the host: 8 bytes a sample): ``state_dict`` holds both.
    """

    def __init__(
        self,
        dataset: TensorDataset,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator | None = None,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.spare: tuple[torch.Tensor, ...] | None = None
        self.order: torch.Tensor | None = None  # None: as built

    def __len__(self) -> int:
        """The number of minibatches an epoch (what ``len(DataLoader)`` reports)."""
        return math.ceil(len(self.dataset) / self.batch_size)

    def reshuffle(self) -> None:
        """Put the dataset's samples in a new random order, the same one for every tensor."""
        order = torch.randperm(len(self.dataset), generator=self.generator)
        self.order = order if self.order is None else self.order[order]
        self.permute(order)

    def permute(self, order: torch.Tensor) -> None:
        """Reorder the dataset's tensors: sample ``order[i]`` becomes sample ``i``."""
        current = self.dataset.tensors
        if self.spare is None:
            self.spare = tuple(torch.empty_like(t) for t in current)
        order = order.to(current[0].device)
        for source, target in zip(current, self.spare, strict=True):
            torch.index_select(source, 0, order, out=target)
        self.dataset.tensors, self.spare = self.spare, current

    def state_dict(self) -> dict[str, torch.Tensor | None]:
        """Where the next epoch starts: the shuffling generator's state and the samples'
        order."""
        generator = self.generator.get_state() if self.generator is not None else None
        return {"generator": generator, "order": self.order}

    def load_state_dict(self, state: dict[str, torch.Tensor | None]) -> None:
        """Go on from where ``state_dict`` was taken, on the same dataset."""
        if self.generator is not None and state["generator"] is not None:
            self.generator.set_state(state["generator"])
        target = state["order"]
        if target is None and self.order is None:
            return
        n = len(self.dataset)
        target = torch.arange(n) if target is None else target
        # the current tensors hold the built ones in ``self.order``: undo it, then apply target
        self.permute(target if self.order is None else torch.argsort(self.order)[target])
        self.order = target.clone()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.shuffle:
            self.reshuffle()
        return zip(*(t.split(self.batch_size) for t in self.dataset.tensors), strict=True)


def as_is(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The DataLoader's ``collate_fn`` for items that are minibatches already. The default,
    ``default_convert``, would walk each one looking for numpy arrays to convert."""
    return batch


def rebatched(loader: DataLoader, batch_size: int) -> DataLoader:
    """``loader``'s data, shuffling generator and order (one permutation an epoch, whatever
    the batch size) in minibatches of ``batch_size``; ``loader`` itself must not be iterated
    any more."""
    batches = loader.dataset
    assert isinstance(batches, Minibatches)
    return make_loader(
        batches.dataset, batch_size, batches.shuffle, batches.generator, loader.pin_memory
    )


def make_loader(
    dataset: TensorDataset,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset``'s minibatches (views), reshuffled once an epoch.

    ``batch_size=None`` because ``Minibatches`` yields whole batches (PyTorch's "disable
    automatic batching" mode). ``pin_memory``: for data kept on the host while training on a
    GPU, each minibatch is copied into page-locked memory, so that ``.to("cuda",
    non_blocking=True)`` is async.
    """
    batches = Minibatches(dataset, batch_size, shuffle, generator)
    return DataLoader(batches, batch_size=None, collate_fn=as_is, pin_memory=pin_memory)
