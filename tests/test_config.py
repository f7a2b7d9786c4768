import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from .conftest import EXERCISE_DATASET, compose_config


def test_defaults_reproduce_the_exercise():
    cfg = compose_config()
    assert (cfg.batch_size, cfg.val_batch_size, cfg.epochs, cfg.seed) == (8, 32, 12, 0)
    assert cfg.dtype.value == "float32" and cfg.monitor.value == "val_loss"
    assert cfg.updater.name == "optim" and cfg.updater.lr == 0.01
    assert cfg.updater.optimizer._target_ == "torch.optim.SGD"
    assert cfg.updater.momentum == 0 and cfg.updater.weight_decay == 0
    assert cfg.device.name == "cpu"
    assert cfg.loss._target_ == "torch.nn.BCEWithLogitsLoss"
    assert dict(cfg.dataset) == EXERCISE_DATASET
    assert cfg.threads is None and cfg.tensorboard is True


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        (["updater=manual"], lambda c: c.updater.name == "manual" and c.updater.lr == 0.01),
        (["loss=bce"], lambda c: c.loss._target_ == "logreg_exp.losses.SigmoidBCELoss"),
        (["device=auto"], lambda c: c.device.name == "auto"),
        (["dtype=float64", "monitor=val_acc"], lambda c: c.dtype.value == "float64"),
    ],
)
def test_groups_and_keys_can_be_chosen(overrides, check):
    assert check(compose_config(*overrides))


@pytest.mark.parametrize(
    "override",
    ["epochs=abc", "batch_size=1.5", "updater.lr=fast", "dtype=float16", "monitor=train_loss"],
)
def test_wrong_types_are_rejected_before_training(override):
    with pytest.raises((ValidationError, ConfigCompositionException)):
        compose_config(override)


@pytest.mark.parametrize("override", ["epoch=3", "updater.learning_rate=0.1", "dataset.n=3"])
def test_unknown_keys_are_rejected(override):
    with pytest.raises(ConfigCompositionException):
        compose_config(override)


def test_unknown_group_option_is_rejected():
    with pytest.raises(ConfigCompositionException, match="updater"):
        compose_config("updater=foo")
