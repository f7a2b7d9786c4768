"""The HParams names and values of a run: the config flattened to the keys a user overrides."""

from __future__ import annotations

from logreg_exp import hparams
from logreg_exp.hparams import flatten, hparam_value, run_hparams

from .conftest import compose_config


def test_values_become_types_tensorboard_hparams_accept():
    assert hparam_value(0.01) == 0.01 and hparam_value(8) == 8 and hparam_value("sgd") == "sgd"
    assert hparam_value(True) == "true" and hparam_value(False) == "false"  # not 1.0 / 0.0
    assert hparam_value(None) == "null"
    assert hparam_value([1, 2]) == "[1, 2]"


def test_flatten_uses_dotted_override_keys_and_drops_instantiate_plumbing():
    node = {
        "updater": {
            "lr": 0.1,
            "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "nesterov": True},
        },
        "extra": {},
        "seed": 0,
    }
    assert flatten(node) == {
        "updater.lr": 0.1,
        "updater.optimizer._target_": "torch.optim.SGD",
        "updater.optimizer.nesterov": "true",
        "extra": "{}",
        "seed": 0,
    }


def test_run_hparams_of_the_default_config():
    found = run_hparams(compose_config("updater.lr=0.1", "dtype=float64"))
    assert found == {
        "batch_size": 8,
        "dataset.label_flip": 0.1,
        "dataset.max_samples": "null",
        "dataset.n_features": 2,
        "dataset.n_samples": 5000,
        "dataset.name": "gaussian2d",
        "dataset.standardize": "false",
        "dataset.stratify": "false",
        "dataset.val_fraction": 0.5,
        "device.data_on_device": "true",
        "device.name": "cpu",
        "dtype": "float64",
        "epochs": 12,
        "loss._target_": "torch.nn.BCEWithLogitsLoss",
        "monitor": "val_loss",
        "seed": 0,
        "tensorboard": "true",
        "threads": "null",
        "updater.lr": 0.1,
        "updater.momentum": 0.0,
        "updater.name": "optim",
        "updater.optimizer._target_": "torch.optim.SGD",
        "updater.weight_decay": 0.0,
        "val_batch_size": 32,
    }
    assert list(found) == sorted(found)


def test_group_choices_are_added_where_the_group_name_does_not_say_them(monkeypatch):
    choices = {"updater": "manual", "loss": "bce", "device": "auto"}
    monkeypatch.setattr(hparams, "group_choices", lambda: choices)
    found = run_hparams(compose_config("updater=manual", "loss=bce", "device=auto"))
    assert found["loss"] == "bce" and found["loss._target_"] == "logreg_exp.losses.SigmoidBCELoss"
    assert "updater" not in found and found["updater.name"] == "manual"
    assert "device" not in found and found["device.name"] == "auto"
    assert "updater.optimizer._target_" not in found  # the manual updater has no optimizer
