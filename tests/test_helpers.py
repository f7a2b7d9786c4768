"""The tests' own compose helper: a config it derives from a shared one is the config Hydra
composes for the same overrides, errors included."""

import pytest
from omegaconf import OmegaConf

from logreg_exp.cli import compose
from tests import helpers


@pytest.mark.parametrize(
    "overrides",
    [
        # an int for a float, the enums, the largest seed
        (
            "epochs=3", "updater.lr=1", "dtype=float64", "monitor=val_acc",
            "seed=9223372036854775807",
        ),
        ("updater=manual", "updater.lr=0.2", "updater.weight_decay=0.1"),  # over a group choice
        # over a preset that sets the same keys, beside an added key
        (
            "experiment=breast_cancer", "epochs=3", "dataset.test_fraction=0.1",
            "updater.optimizer._target_=torch.optim.Adam", "+updater.optimizer.eps=1e-6",
        ),
    ],
)  # fmt: skip
def test_a_derived_config_is_what_hydra_composes(monkeypatch, overrides):
    whole = []
    monkeypatch.setattr(helpers, "compose", lambda *o, **k: whole.append(o) or compose(*o, **k))
    helpers.composed.cache_clear()
    derived = helpers.compose_config(*overrides)
    assert overrides not in whole  # derived, not composed whole
    assert OmegaConf.to_yaml(derived) == OmegaConf.to_yaml(compose(*overrides))


def test_a_derived_value_fails_as_hydra_fails_it():
    with pytest.raises(Exception) as composing:
        compose("epochs=abc")
    helpers.composed.cache_clear()
    with pytest.raises(type(composing.value)) as deriving:
        helpers.compose_config("epochs=abc")
    assert str(deriving.value) == str(composing.value)
    assert repr(deriving.value.__cause__) == repr(composing.value.__cause__)
