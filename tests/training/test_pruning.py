"""Successive halving across a stacked model's columns (hydra.launcher.prune)."""

from __future__ import annotations

import pytest

from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor, Status
from logreg_exp.training.loop import EpochMetrics, FitResult
from logreg_exp.training.pruning import SuccessiveHalving
from tests.training.test_stacked import assert_same_fit, fit_columns


def with_best(value: float) -> FitResult:
    result = FitResult(Monitor.val_loss, best_epoch=1)
    result.history.append(EpochMetrics(1, 0.0, 0.0, value, 0.0, 0.0, 0.0, {}))
    return result


def test_a_round_stops_the_worst_fraction_and_always_leaves_one():
    rule = SuccessiveHalving(every=2, fraction=0.5)
    results = [with_best(v) for v in (0.3, 0.9, 0.1, 0.5, 0.9)]
    assert rule.to_stop(1, results, [0, 1, 2, 3, 4], Monitor.val_loss) == []  # not a round
    assert rule.to_stop(2, results, [0, 1, 2, 3, 4], Monitor.val_loss) == [4, 1]
    assert rule.to_stop(4, results, [0, 2], Monitor.val_loss) == [0]
    assert rule.to_stop(4, results, [2], Monitor.val_loss) == []
    assert SuccessiveHalving(1, 0.99).to_stop(1, results, [0, 2], Monitor.val_loss) == [0]


@pytest.mark.parametrize(
    "prune, message",
    [
        ({"every": 0}, "hydra.launcher.prune.every must be a positive integer"),
        ({"every": "2"}, "hydra.launcher.prune.every must be a positive integer"),
        ({"every": 2, "fraction": 1}, r"prune.fraction must be in the open interval \(0, 1\)"),
        ({"every": 2, "fration": 0.5}, "prune has no key 'fration'; allowed: every, fraction"),
    ],
)
def test_bad_settings_name_the_key(prune, message):
    with pytest.raises(ConfigError, match=message):
        SuccessiveHalving.from_config(prune)


def test_a_number_is_every_that_many_epochs_halving():
    assert SuccessiveHalving.from_config(3) == SuccessiveHalving(3, 0.5)
    with pytest.raises(ConfigError, match=r"hydra.launcher.prune must be a positive integer"):
        SuccessiveHalving.from_config(0)


def test_off_by_default():
    assert SuccessiveHalving.from_config(None) is None
    assert SuccessiveHalving.from_config({"every": None, "fraction": 0.5}) is None


def test_pruned_columns_stop_and_the_others_train_as_without_pruning(monkeypatch):
    import logreg_exp.training.stacked as stacked

    original = stacked.fit_stacked

    def pruning(*args, **kwargs):
        return original(*args, **kwargs, prune=SuccessiveHalving(every=1, fraction=0.5))

    monkeypatch.setattr(stacked, "fit_stacked", pruning)
    import tests.training.test_stacked as helpers

    monkeypatch.setattr(helpers, "fit_stacked", pruning)
    lrs = [0.001, 0.01, 0.1, 1.0]
    _, pruned = fit_columns(lrs)
    monkeypatch.undo()
    _, plain = fit_columns(lrs)
    # epoch 1: the two worst of four stop; epoch 2: one of the two left; epoch 3 is the last
    statuses = [r.status for r in pruned]
    assert statuses.count(Status.PRUNED) == 3 and statuses.count(Status.COMPLETED) == 1
    for p, q in zip(pruned, plain, strict=True):
        if p.status is Status.PRUNED:
            n = p.stopped_at[0]
            assert len(p.history) == n
            assert [m.val_loss for m in p.history] == [m.val_loss for m in q.history[:n]]
        else:
            assert_same_fit(p, q)
