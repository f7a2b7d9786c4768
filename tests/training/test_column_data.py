"""Columns that train on data of their own (seeds, folds): each column's fit is its model's
fit alone, on its seed's split, initial weights and shuffling order."""

from __future__ import annotations

import pytest
import torch

from logreg_exp.results import Monitor
from logreg_exp.training.column_data import ColumnBatches
from logreg_exp.training.loop import fit
from logreg_exp.training.stacked import (
    ColumnLosses,
    StackedLogisticRegression,
    fit_stacked,
    stacked_updater,
)
from tests.helpers import build
from tests.training.test_stacked import assert_same_fit

SMALL = ("dataset.n_samples=390", "epochs=3", "dtype=float64", "batch_size=16")


def alone(*overrides: str):
    _, p = build(*SMALL, *overrides)
    return fit(
        p.model, p.loss_fn, p.updater, p.train_loader, p.val_loader, epochs=3,
        device=p.device, evaluators=p.evaluators,
    )  # fmt: skip


@pytest.mark.slow
def test_each_column_fits_as_its_seed_and_fold_alone():
    data = [
        ("seed=0", "dataset.fold=0"),
        ("seed=5", "dataset.fold=0"),
        ("seed=0", "dataset.fold=2"),
    ]
    columns = [(0, 0.05), (1, 0.05), (0, 0.5), (2, 0.5), (1, 0.5)]  # (data, lr)
    pipelines = [build(*SMALL, "dataset.folds=3", *d)[1] for d in data]
    data_of = [d for d, _ in columns]
    model = StackedLogisticRegression.of_columns([pipelines[d].model for d in data_of])
    settings = [torch.optim.SGD([torch.zeros(1)], lr=lr).defaults for _, lr in columns]
    updater = stacked_updater(list(model.parameters()), torch.optim.SGD, settings)
    results = fit_stacked(
        model, ColumnLosses(torch.nn.BCEWithLogitsLoss(reduction="none")), updater,
        ColumnBatches([p.train_loader for p in pipelines], data_of),
        ColumnBatches([p.val_loader for p in pipelines], data_of),
        epochs=3, device=pipelines[0].device, monitor=Monitor.val_loss,
        evaluators=[pipelines[d].evaluators for d in data_of],
    )  # fmt: skip
    for (d, lr), result in zip(columns, results, strict=True):
        assert_same_fit(result, alone("dataset.folds=3", *data[d], f"updater.lr={lr}"))
