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
from hydra.errors import InstantiationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from logreg_exp.config import DType
from logreg_exp.data.datasets import dataset_for, limit_samples, load_dataset
from logreg_exp.data.loaders import (
    Standardizer,
    make_loader,
    split_test_and_folds,
    split_train_val_test,
    to_tensor_dataset,
)
from logreg_exp.data.preprocessing import Preprocessing
from logreg_exp.errors import ConfigError, one_line
from logreg_exp.hydra_compat import instantiate
from logreg_exp.results import Monitor
from logreg_exp.training.devices import data_device
from logreg_exp.training.graphs import captured_training
from logreg_exp.training.loop import FitResult, evaluate, fit
from logreg_exp.training.memory import check_memory
from logreg_exp.training.model import (
    ClassWeightedLoss,
    LogisticRegression,
    SoftmaxCrossEntropyLoss,
)
from logreg_exp.training.schedules import Schedule, schedule_for
from logreg_exp.training.updaters import StatefulUpdater, build_updater, locate


@dataclass
class DataSplits:
    """A job's data as tensors on their device: the training, validation and test splits
    (``test`` None where ``dataset.test_fraction`` is 0), what turned the table into them,
    and the dataset's evaluators (see ``Dataset.evaluators``)."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset | None
    preprocessing: Preprocessing
    evaluators: dict[str, Callable[[nn.Module], float]] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.preprocessing.features)

    @property
    def n_classes(self) -> int:
        return len(self.preprocessing.classes)


@dataclass
class Pipeline:
    """Everything the training loop needs, built and placed on ``device``.

    ``train_set``, ``val_set`` and ``test_set`` (None without a test split) hold the samples
    (the training set's tensors are reordered each epoch by ``train_loader``); the loaders
    yield their minibatches. ``preprocessing`` is what predicting on new data needs.
    """

    model: LogisticRegression
    loss_fn: nn.Module
    updater: StatefulUpdater
    train_set: TensorDataset
    val_set: TensorDataset
    train_loader: DataLoader
    val_loader: DataLoader
    device: torch.device
    preprocessing: Preprocessing
    evaluators: dict[str, Callable[[nn.Module], float]] = field(default_factory=dict)
    test_set: TensorDataset | None = None
    test_loader: DataLoader | None = None
    cuda_graphs: bool = False
    schedule: Schedule | None = None  # None: updater.lr every epoch
    patience: int | None = None  # early stopping (None: off), see ``loop.fit``
    min_delta: float = 0.0
    class_weights: torch.Tensor | None = None  # each class's in the loss (None: all 1)

    def fit(self, epochs: int, monitor: Monitor, **fit_kwargs: Any) -> FitResult:
        """``loop.fit`` for ``epochs``, keeping the best epoch by ``monitor``;
        ``fit_kwargs``: ``on_epoch``, ``stop_requested``, ``start``, ``save_progress``. With
        ``cuda_graphs`` on a GPU the train phase replays CUDA graphs
        (``graphs.captured_training``)."""
        captured = None
        if self.cuda_graphs:
            captured = captured_training(self.model, self.loss_fn, self.updater, self.train_loader)
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
            train_epoch=captured.train_one_epoch if captured else None,
            schedule=self.schedule,
            patience=self.patience,
            min_delta=self.min_delta,
            **fit_kwargs,
        )

    def test(self, state_dict: dict[str, torch.Tensor]) -> dict[str, float | None]:
        """The model with ``state_dict`` (the best epoch's), once, on the test split: ``loss``
        and ``acc`` (None without a test split), and the dataset's evaluators (for
        gaussian2d the exact ``population_acc``). Leaves that state in ``model``."""
        self.model.load_state_dict(state_dict)
        loss = acc = None
        if self.test_loader is not None:
            loss, acc = evaluate(self.model, self.loss_fn, self.test_loader, self.device)
        extra = {name: fn(self.model) for name, fn in self.evaluators.items()}
        return {"loss": loss, "acc": acc, **extra}

    def state_dict(self) -> dict[str, Any]:
        """What training changes: the parameters, the updater's state (momentum, Adam's
        moments, step counts), where the training minibatches' next epoch starts, and the
        learning-rate schedule's state (where there is one)."""
        state = {
            "model": self.model.state_dict(),
            "updater": self.updater.state_dict(),
            "train_batches": self.train_loader.dataset.state_dict(),
        }
        if self.schedule is not None:
            state["schedule"] = self.schedule.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put a freshly built pipeline where ``state_dict`` was taken.

        An optimizer's ``capturable`` stays as built: a run on a GPU switches it on to replay
        CUDA graphs (``graphs.make_capturable``), and its state, resumed where there is no
        GPU, would otherwise ask for a capturable step on the CPU, which torch refuses.
        """
        self.model.load_state_dict(state["model"])
        as_built = [group.get("capturable") for group in getattr(self.updater, "param_groups", [])]
        self.updater.load_state_dict(state["updater"])
        for group, capturable in zip(
            getattr(self.updater, "param_groups", []), as_built, strict=True
        ):
            if capturable is not None:
                group["capturable"] = capturable
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        self.train_loader.dataset.load_state_dict(state["train_batches"])

    @property
    def n_train(self) -> int:
        return len(self.train_set)

    @property
    def n_val(self) -> int:
        return len(self.val_set)

    @property
    def n_test(self) -> int:
        return 0 if self.test_set is None else len(self.test_set)


def seeded_streams(seed: int) -> tuple[np.random.Generator, torch.Generator, torch.Generator]:
    """Independent generators for data, initialisation and shuffling, all from ``seed``."""
    data_seq, init_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(3)
    init = torch.Generator().manual_seed(int(init_seq.generate_state(1, np.uint64)[0] >> 1))
    shuffle = torch.Generator().manual_seed(int(shuffle_seq.generate_state(1, np.uint64)[0] >> 1))
    return np.random.default_rng(data_seq), init, shuffle


def torch_dtype(cfg: Any) -> torch.dtype:
    """``dtype: float32`` -> torch.float32."""
    return getattr(torch, DType(cfg.dtype).value)


BINARY_LOSSES = ("torch.nn.BCEWithLogitsLoss", "logreg_exp.training.model.SigmoidBCELoss")


def build_loss(
    loss_cfg: Any,
    n_classes: int = 2,
    class_weights: torch.Tensor | None = None,
    **kwargs: Any,
) -> nn.Module:
    """The ``loss`` node's ``_target_`` (one that ``config.check_targets`` allowed), built,
    with ``kwargs`` (``reduction="none"`` for a stacked model). For K >= 3 classes the
    binary logistic loss the config names becomes its multinomial form, the softmax
    cross-entropy: the data choose it, as scikit-learn's ``LogisticRegression`` does.
    ``class_weights`` (one a class, see ``class_weights_for``) weigh each sample's loss."""
    if class_weights is not None:
        reduction = kwargs.pop("reduction", "mean")
        per_sample = build_loss(loss_cfg, n_classes, reduction="none", **kwargs)
        return ClassWeightedLoss(per_sample, class_weights, reduction)
    setting = f"loss._target_={loss_cfg._target_}"
    if n_classes > 2:
        if loss_cfg._target_ not in BINARY_LOSSES:
            raise ConfigError(
                f"{setting} is for two classes and the data have {n_classes}; allowed: "
                f"{', '.join(BINARY_LOSSES)} (the softmax cross-entropy for K classes)"
            )
        return SoftmaxCrossEntropyLoss(**kwargs)
    locate(loss_cfg._target_, setting)  # a missing class named in one line
    try:
        return instantiate(loss_cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{setting} cannot be built: {one_line(cause, joined=True)}") from None


def class_weights_for(cfg: Any, classes: list[str], train: TensorDataset) -> torch.Tensor | None:
    """Each class's weight in the loss as ``class_weight`` sets it, on the training set's
    device, in its dtype; None for null. ``balanced``: n / (K * n_k) over the training split,
    as scikit-learn computes it on the data ``fit`` sees. A mapping names classes by their
    labels as the data spell them (a class it leaves out weighs 1); a label that is not a
    class is a ConfigError naming them."""
    setting = cfg.class_weight
    if setting is None:
        return None
    labels = train.tensors[1]
    if setting == "balanced":
        counts = torch.bincount(labels.long(), minlength=len(classes)).to(torch.float64)
        weights = len(labels) / (len(classes) * counts)
    else:
        by_name = {str(label): float(weight) for label, weight in setting.items()}
        unknown = [name for name in by_name if name not in classes]
        if unknown:
            raise ConfigError(
                f"class_weight: {unknown[0]!r} is not a class of the data; its classes: "
                f"{', '.join(classes)}"
            )
        weights = torch.tensor([by_name.get(name, 1.0) for name in classes], dtype=torch.float64)
    return weights.to(device=labels.device, dtype=train.tensors[0].dtype)


def build_data(cfg: Any, device: torch.device) -> DataSplits:
    """The exercise's steps 1-2 from the composed config: load, split, standardize with the
    training split's statistics, and place the splits where ``device`` reads them. The same
    config and seed give the same splits, so a finished run's data can be rebuilt."""
    data_rng = seeded_streams(cfg.seed)[0]
    dtype = torch_dtype(cfg)
    dataset = dataset_for(cfg.dataset)
    check_memory(cfg, dataset)
    data = load_dataset(dataset, data_rng, np.dtype(DType(cfg.dtype).value))
    data = limit_samples(data, cfg.dataset.max_samples, data_rng)
    features, classes = data.feature_names, data.class_names
    # The split is one shuffled copy; dropping ``data`` frees the unsplit arrays, so the data
    # exist at most twice at once (``python -m benchmarks.bench`` measures the peak).
    # with dataset.folds, the test split then a k-fold cross-validation's fold
    ds = cfg.dataset
    how = {
        "stratify": ds.stratify,
        "source": dataset.describe(),
        "test_fraction": ds.test_fraction,
        "classes": classes,
    }
    if ds.folds is None:
        splits = split_train_val_test(data.x, data.y, ds.val_fraction, data_rng, **how)
    else:
        splits = split_test_and_folds(data.x, data.y, ds.folds, ds.fold, data_rng, **how)
    del data
    scaler = None
    if cfg.dataset.standardize:
        scaler = Standardizer.fit(splits[0][0], features, dataset.describe())
        for x, _ in splits:
            scaler.transform_(x)
    nbytes = sum(a.nbytes for pair in splits for a in pair)
    on = data_device(device, cfg.device.data_on_device, nbytes)
    train, val, test = (to_tensor_dataset(x, y, dtype, on) for x, y in splits)
    return DataSplits(
        train,
        val,
        test if len(test) else None,
        Preprocessing(features, classes, scaler),
        dataset.evaluators(scaler),
    )


def build_pipeline(cfg: Any, device: torch.device) -> Pipeline:
    """Build the exercise's steps 1-5 from the composed config."""
    _, init_gen, shuffle_gen = seeded_streams(cfg.seed)
    data = build_data(cfg, device)
    on = data.train.tensors[0].device
    pin = on.type == "cpu" and device.type == "cuda"  # batches then copy to the GPU async
    train_loader = make_loader(data.train, cfg.batch_size, True, shuffle_gen, pin_memory=pin)
    val_loader = make_loader(data.val, cfg.val_batch_size, False, pin_memory=pin)
    test_loader = None
    if data.test is not None:
        test_loader = make_loader(data.test, cfg.val_batch_size, False, pin_memory=pin)
    model = LogisticRegression(
        data.n_features, generator=init_gen, dtype=torch_dtype(cfg), n_classes=data.n_classes
    )
    model = model.to(device)
    class_weights = class_weights_for(cfg, data.preprocessing.classes, data.train)
    loss_fn = build_loss(cfg.loss, data.n_classes, class_weights)
    updater = build_updater(model.parameters(), cfg.updater)
    return Pipeline(
        model,
        loss_fn,
        updater,
        data.train,
        data.val,
        train_loader,
        val_loader,
        device,
        data.preprocessing,
        data.evaluators,
        test_set=data.test,
        test_loader=test_loader,
        cuda_graphs=cfg.device.cuda_graphs,
        schedule=schedule_for(updater, [cfg]),
        patience=cfg.patience,
        min_delta=float(cfg.min_delta),
        class_weights=class_weights,
    )
