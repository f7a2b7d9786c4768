"""From config to objects: TensorDataset -> DataLoader -> model -> loss -> updater.

Every random draw comes from generators seeded by ``seed`` alone (one stream each for the
data, the initialisation and the shuffling), so a job's result never depends on what ran
before it in the same process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from logreg_exp.config import DType
from logreg_exp.data.datasets import dataset_for, limit_samples, load_dataset
from logreg_exp.data.loaders import Standardizer, make_loader, split_train_val, to_tensor_dataset
from logreg_exp.results import Monitor
from logreg_exp.training.devices import data_device
from logreg_exp.training.loop import FitResult, fit
from logreg_exp.training.model import LogisticRegression
from logreg_exp.training.updaters import StatefulUpdater, build_updater


@dataclass
class Pipeline:
    """Everything the training loop needs, built and placed on ``device``.

    ``train_set`` and ``val_set`` hold the samples (the training set's tensors are reordered
    each epoch by ``train_loader``); the loaders yield their minibatches.
    """

    model: LogisticRegression
    loss_fn: nn.Module
    updater: StatefulUpdater
    train_set: TensorDataset
    val_set: TensorDataset
    train_loader: DataLoader
    val_loader: DataLoader
    device: torch.device
    evaluators: dict[str, Callable[[nn.Module], float]] = field(default_factory=dict)

    def fit(self, epochs: int, monitor: Monitor, **fit_kwargs: Any) -> FitResult:
        """``loop.fit`` for ``epochs``, keeping the best epoch by ``monitor``;
        ``fit_kwargs``: ``on_epoch``, ``stop_requested``."""
        return fit(
            self.model,
            self.loss_fn,
            self.updater,
            self.train_loader,
            self.val_loader,
            epochs=epochs,
            device=self.device,
            monitor=monitor,
            evaluators=self.evaluators,
            **fit_kwargs,
        )

    def state_dict(self) -> dict[str, Any]:
        """What training changes: the parameters, the updater's state (momentum, Adam's
        moments, step counts) and where the training minibatches' next epoch starts."""
        return {
            "model": self.model.state_dict(),
            "updater": self.updater.state_dict(),
            "train_batches": self.train_loader.dataset.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put a freshly built pipeline where ``state_dict`` was taken."""
        self.model.load_state_dict(state["model"])
        self.updater.load_state_dict(state["updater"])
        self.train_loader.dataset.load_state_dict(state["train_batches"])

    @property
    def n_train(self) -> int:
        return len(self.train_set)

    @property
    def n_val(self) -> int:
        return len(self.val_set)


def seeded_streams(seed: int) -> tuple[np.random.Generator, torch.Generator, torch.Generator]:
    """Independent generators for data, initialisation and shuffling, all from ``seed``."""
    data_seq, init_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(3)
    init = torch.Generator().manual_seed(int(init_seq.generate_state(1, np.uint64)[0] >> 1))
    shuffle = torch.Generator().manual_seed(int(shuffle_seq.generate_state(1, np.uint64)[0] >> 1))
    return np.random.default_rng(data_seq), init, shuffle


def torch_dtype(cfg: Any) -> torch.dtype:
    """``dtype: float32`` -> torch.float32."""
    return getattr(torch, DType(cfg.dtype).value)


def build_pipeline(cfg: Any, device: torch.device) -> Pipeline:
    """Build the exercise's steps 1-5 from the composed config."""
    data_rng, init_gen, shuffle_gen = seeded_streams(cfg.seed)
    dtype = torch_dtype(cfg)

    dataset = dataset_for(cfg.dataset)
    data = load_dataset(dataset, data_rng, np.dtype(DType(cfg.dtype).value))
    data = limit_samples(data, cfg.dataset.max_samples, data_rng)
    n_features = data.x.shape[1]
    # The split is one shuffled copy; dropping ``data`` frees the unsplit arrays, so the data
    # exist at most twice at once (``python -m benchmarks.bench`` measures the peak).
    (x_train, y_train), (x_val, y_val) = split_train_val(
        data.x,
        data.y,
        cfg.dataset.val_fraction,
        data_rng,
        stratify=cfg.dataset.stratify,
        source=dataset.describe(),
    )
    del data
    scaler = None
    if cfg.dataset.standardize:
        scaler = Standardizer.fit(x_train)
        scaler.transform_(x_train)
        scaler.transform_(x_val)
    nbytes = sum(a.nbytes for a in (x_train, y_train, x_val, y_val))
    on = data_device(device, cfg.device.data_on_device, nbytes)
    train_set = to_tensor_dataset(x_train, y_train, dtype, on)
    val_set = to_tensor_dataset(x_val, y_val, dtype, on)
    pin = on.type == "cpu" and device.type == "cuda"  # batches then copy to the GPU async
    train_loader = make_loader(train_set, cfg.batch_size, True, shuffle_gen, pin_memory=pin)
    val_loader = make_loader(val_set, cfg.val_batch_size, False, pin_memory=pin)

    model = LogisticRegression(n_features, generator=init_gen, dtype=dtype).to(device)
    loss_fn = instantiate(cfg.loss)
    updater = build_updater(model.parameters(), cfg.updater)
    evaluators = dataset.evaluators(scaler)
    return Pipeline(
        model, loss_fn, updater, train_set, val_set, train_loader, val_loader, device, evaluators
    )
