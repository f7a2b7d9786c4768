"""The overlays: experiment=..., debug=fast and hparams_search=optuna, as composed."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from tests.helpers import EXERCISE_DATASET, compose_config


def test_experiment_exercise_is_the_exercise():
    cfg = compose_config("experiment=exercise")
    assert (cfg.batch_size, cfg.val_batch_size, cfg.epochs) == (8, 32, 12)
    assert cfg.updater.name == "manual"
    assert (cfg.updater.lr, cfg.updater.momentum, cfg.updater.weight_decay) == (0.01, 0, 0)
    assert cfg.loss._target_ == "logreg_exp.training.model.SigmoidBCELoss"
    assert cfg.monitor.value == "val_loss" and cfg.dtype.value == "float32"
    assert cfg.device.name == "cpu"
    assert dict(cfg.dataset) == EXERCISE_DATASET


def test_command_line_values_and_choices_still_win_over_an_experiment():
    cfg = compose_config("experiment=exercise", "epochs=3", "updater.lr=0.1")
    assert (cfg.epochs, cfg.updater.lr, cfg.updater.name) == (3, 0.1, "manual")
    cfg = compose_config("experiment=exercise", "updater=optim", "loss=bce_logits")
    assert cfg.updater.name == "optim" and cfg.loss._target_ == "torch.nn.BCEWithLogitsLoss"
    assert cfg.batch_size == 8 and cfg.dataset.name == "gaussian2d"


def test_experiment_breast_cancer_brings_its_dataset_and_tuned_training():
    cfg = compose_config("experiment=breast_cancer")
    assert cfg.dataset.name == "breast_cancer" and cfg.dataset.standardize
    assert (cfg.epochs, cfg.updater.lr, cfg.batch_size) == (30, 0.1, 8)
    assert cfg.updater.name == "optim" and cfg.monitor.value == "val_loss"


def test_debug_fast_is_one_epoch_on_small_data_without_tensorboard():
    for dataset in ("gaussian2d", "breast_cancer"):
        cfg = compose_config(f"dataset={dataset}", "debug=fast")
        assert cfg.epochs == 1 and cfg.tensorboard is False
        assert cfg.dataset.max_samples == 500
    # after an experiment too: debug comes later in the defaults list
    assert compose_config("experiment=breast_cancer", "debug=fast").epochs == 1


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigCompositionException, match="exercise"):
        compose_config("experiment=nope")


def test_hparams_search_optuna_maximizes_val_acc_over_lr_and_batch_size():
    cfg = compose_config("hparams_search=optuna", with_hydra=True)
    assert cfg.monitor.value == "val_acc"
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize" and sweeper.storage is None
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == 0
    assert dict(sweeper.params) == {
        "updater.lr": "tag(log, interval(0.0001, 1.0))",
        "batch_size": "choice(8, 16, 32, 64, 128)",
    }
    assert sweeper.n_jobs == 1  # the basic launcher runs one trial at a time
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
