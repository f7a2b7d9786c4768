import torch

from logreg_exp.results import Status
from logreg_exp.training.build import build_pipeline
from logreg_exp.training.loop import fit
from tests.helpers import build, compose_config, fit_built


def fit_recording(*overrides):
    """Fit, recording the parameters after every epoch through the callback."""
    cfg, exp = build(*overrides)
    snapshots = {}

    def on_epoch(metrics, is_best):
        snapshots[metrics.epoch] = {k: v.clone() for k, v in exp.model.state_dict().items()}

    return exp, fit_built(cfg, exp, on_epoch=on_epoch), snapshots


def test_best_state_is_a_copy_of_the_best_epoch_not_the_last():
    # a large lr makes validation accuracy jump around, so the best epoch is not the last
    exp, result, snapshots = fit_recording(
        "updater.lr=0.5", "monitor=val_acc", "epochs=8", "dataset.n_samples=400"
    )
    accs = [m.val_acc for m in result.history]
    assert result.best_epoch == accs.index(max(accs)) + 1
    assert result.best_epoch < 8
    for key, value in result.best_state.items():
        assert torch.equal(value, snapshots[result.best_epoch][key])
        assert not torch.equal(value, exp.model.state_dict()[key])


def test_history_has_every_epoch_with_sane_metrics():
    _, result, _ = fit_recording("epochs=3", "dataset.n_samples=1000")
    assert [m.epoch for m in result.history] == [1, 2, 3]
    for m in result.history:
        assert 0 < m.train_loss < 2 and 0 < m.val_loss < 2
        assert 0.5 < m.val_acc <= 1 and 0.5 < m.train_acc <= 1
        assert m.train_s > 0 and m.val_s > 0
    losses = [m.val_loss for m in result.history]
    assert result.best_value == min(losses)


def test_validation_loss_is_the_mean_over_all_samples():
    cfg = compose_config("val_batch_size=7", "dtype=float64")
    exp = build_pipeline(cfg, torch.device("cpu"))
    from logreg_exp.training.loop import evaluate

    loss, acc = evaluate(exp.model, exp.loss_fn, exp.val_loader, exp.device)
    x, y = exp.val_set.tensors
    with torch.no_grad():
        full = torch.nn.functional.binary_cross_entropy_with_logits(exp.model(x), y)
        full_acc = (exp.model.predict(x) == y).double().mean()
    assert abs(loss - full.item()) < 1e-12
    assert abs(acc - full_acc.item()) < 1e-12


def test_a_stop_request_ends_training_between_minibatches_with_whole_epochs_only():
    cfg = compose_config("epochs=5", "dataset.n_samples=400")
    exp = build_pipeline(cfg, torch.device("cpu"))
    steps = {"n": 0}

    def stop_requested():  # true in the middle of epoch 3: an epoch asks 25 + 7 + 1 times
        steps["n"] += 1
        return steps["n"] > 2 * (25 + 7 + 1) + 10

    result = fit(
        exp.model, exp.loss_fn, exp.updater, exp.train_loader, exp.val_loader,
        epochs=5, device=exp.device, stop_requested=stop_requested,
    )  # fmt: skip
    assert result.status is Status.INTERRUPTED and result.stopped_at == (3, None)
    assert [m.epoch for m in result.history] == [1, 2]


def test_non_finite_loss_is_reported_at_its_exact_step():
    cfg = compose_config("epochs=3", "updater.lr=10", "updater.weight_decay=1")
    exp = build_pipeline(cfg, torch.device("cpu"))
    result = fit(
        exp.model, exp.loss_fn, exp.updater, exp.train_loader, exp.val_loader,
        epochs=3, device=exp.device,
    )  # fmt: skip
    assert result.status is Status.DIVERGED and result.history == [] and result.best is None
    epoch, step = result.stopped_at
    # replay the same run step by step, reading every loss, to find the first bad one
    exp = build_pipeline(cfg, torch.device("cpu"))
    first_bad = None
    for i, (x, y) in enumerate(exp.train_loader, start=1):
        exp.updater.zero_grad()
        loss = exp.loss_fn(exp.model(x), y)
        if not torch.isfinite(loss):
            first_bad = i
            break
        loss.backward()
        exp.updater.step()
    assert (epoch, step) == (1, first_bad)


def test_parameters_that_overflow_in_the_last_step_diverge_at_validation():
    # one minibatch an epoch; lr * weight_decay = 1e39 sends the weights to inf in that step,
    # after its (finite) loss was taken: only the validation phase sees it
    cfg, exp = build(
        "dataset.n_samples=40", "batch_size=64", "updater.lr=1e38", "updater.weight_decay=10",
        "epochs=2",
    )  # fmt: skip
    result = fit_built(cfg, exp)
    assert result.status is Status.DIVERGED and result.non_finite == "val_loss"
    assert result.stopped_at == (1, 1)
    assert result.history == [] and result.best is None and result.best_state == {}
