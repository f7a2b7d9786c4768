"""Minibatches for a stacked model whose columns train on data of their own: the jobs of a
sweep over seeds (each seed draws its own split, initial weights and shuffling order, and for
gaussian2d its own points) or over the folds of a cross-validation.

Each distinct data set keeps the minibatches a single run of it builds (its own generator, so
its samples come in the order they would alone); each column takes its data's minibatch:
features (K, B, F), labels (K, B), which the stacked model's forward, gradient and tally take
as they take one shared minibatch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch


class ColumnBatches:
    """Column k's minibatches from ``loaders[data_of[k]]`` (``make_loader``'s, over
    ``Minibatches``), step by step: each data set reshuffled once an epoch by its own
    generator, as alone; the data sets then stacked, (D, n, F), and each step's slice taken
    for every column at once, with no Python loop over the data sets. Their splits must be
    of the same size, and the batch size the same (or ``batch_size``, the chunks of columns
    of several batch sizes: ``stacked.BatchSizes``)."""

    def __init__(
        self, loaders: Sequence[Any], data_of: Sequence[int], batch_size: int | None = None
    ) -> None:
        self.batches = [loader.dataset for loader in loaders]  # each a Minibatches
        self.index = torch.tensor(list(data_of), dtype=torch.long)
        self.identity = list(data_of) == list(range(len(self.batches)))
        self.batch_size = batch_size or self.batches[0].batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batches in self.batches:
            if batches.shuffle:
                batches.reshuffle()
        x = torch.stack([b.dataset.tensors[0] for b in self.batches])
        y = torch.stack([b.dataset.tensors[1] for b in self.batches])
        index = self.index.to(x.device)
        for xb, yb in zip(x.split(self.batch_size, 1), y.split(self.batch_size, 1), strict=True):
            if self.identity:
                yield xb, yb
            else:
                yield xb.index_select(0, index), yb.index_select(0, index)
