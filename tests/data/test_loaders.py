import numpy as np
import pytest
import torch

from logreg_exp.data.gaussian2d import make_gaussian2d, rotation
from logreg_exp.data.loaders import (
    Minibatches,
    make_loader,
    split_train_val_test,
    to_tensor_dataset,
)

CPU = torch.device("cpu")


def gaussian(n=5000, d=2, flip=0.1, seed=0):
    return make_gaussian2d(n, d, flip, np.random.default_rng(seed))


def test_shapes_and_class_sizes_without_flips():
    x, y = gaussian(n=5001, flip=0.0)
    assert x.shape == (5001, 2) and y.shape == (5001,)
    assert y[:2500].sum() == 2500 and y[2500:].sum() == 0  # first n//2 are class 1


def test_classes_follow_the_spec_distributions():
    x, _ = gaussian(n=200_000, flip=0.0)
    x1, x0 = x[:100_000], x[100_000:]
    np.testing.assert_allclose(x1.mean(0), [0, 0], atol=0.03)
    np.testing.assert_allclose(np.cov(x1.T), np.diag([9.0, 1.0]), atol=0.1)
    r = rotation(0.2 * np.pi)
    np.testing.assert_allclose(x0.mean(0), [1, 3], atol=0.03)
    np.testing.assert_allclose(np.cov(x0.T), r.T @ np.diag([9.0, 1.0]) @ r, atol=0.1)


def test_label_flip_rate():
    n = 100_000
    _, y = gaussian(n=n, flip=0.1)
    flipped_1 = 1 - y[: n // 2].mean()
    flipped_0 = y[n // 2 :].mean()
    # binomial standard deviation at n/2 = 50k draws is 0.0013; allow 4 of them
    assert abs(flipped_1 - 0.1) < 0.0054
    assert abs(flipped_0 - 0.1) < 0.0054


def test_extra_features_are_standard_noise_in_both_classes():
    x, _ = gaussian(n=100_000, d=5, flip=0.0)
    assert x.shape == (100_000, 5)
    for part in (x[:50_000, 2:], x[50_000:, 2:]):
        np.testing.assert_allclose(part.mean(0), 0, atol=0.03)
        np.testing.assert_allclose(part.std(0), 1, atol=0.03)


def test_same_seed_same_data_other_seed_other_data():
    a, ya = gaussian(seed=3)
    b, yb = gaussian(seed=3)
    c, _ = gaussian(seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a, c)


def test_split_holds_out_val_fraction_and_keeps_every_point_once():
    x, y = gaussian(n=1000)
    x = np.concatenate([x, np.arange(1000)[:, None]], axis=1)  # tag each point
    (xt, yt), (xv, yv), (xs, ys) = split_train_val_test(x, y, 0.3, np.random.default_rng(0))
    assert xs.shape == (0, 3) and ys.shape == (0,)  # no test split by default
    assert len(xv) == 300 and len(xt) == 700
    for xs, ys in ((xt, yt), (xv, yv)):  # labels travel with their points
        np.testing.assert_array_equal(ys, y[xs[:, 2].astype(int)])
    assert sorted(np.concatenate([xt[:, 2], xv[:, 2]]).tolist()) == list(range(1000))
    assert not np.array_equal(xt[:, 2], np.sort(xt[:, 2]))  # shuffled


def test_the_test_split_is_drawn_first_from_the_same_shuffle():
    x, y = gaussian(n=1000)
    x = np.concatenate([x, np.arange(1000)[:, None]], axis=1)  # tag each point
    train, val, test = split_train_val_test(x, y, 0.3, np.random.default_rng(0), test_fraction=0.2)
    assert [len(xs) for xs, _ in (train, val, test)] == [500, 300, 200]
    for xs, ys in (train, val, test):  # labels travel with their points
        np.testing.assert_array_equal(ys, y[xs[:, 2].astype(int)])
    order = np.random.default_rng(0).permutation(1000)
    np.testing.assert_array_equal(test[0][:, 2], order[:200])
    np.testing.assert_array_equal(val[0][:, 2], order[200:500])
    # without one, validation is exactly what the same seed gave before: a run stays the same
    _, (xv, _), _ = split_train_val_test(x, y, 0.3, np.random.default_rng(0))
    np.testing.assert_array_equal(xv[:, 2], order[:300])


def test_tensor_dataset_dtype_and_device():
    x, y = gaussian(n=10)
    ds = to_tensor_dataset(x, y, torch.float64, torch.device("cpu"))
    assert ds.tensors[0].dtype == torch.float64 and ds.tensors[0].shape == (10, 2)
    assert ds.tensors[1].shape == (10,)
    xi, yi = ds[3]
    assert torch.equal(xi, torch.as_tensor(x[3])) and yi.item() == y[3]


@pytest.mark.parametrize("shuffle", [True, False])
def test_loader_yields_every_sample_once_per_epoch_in_minibatches(shuffle):
    n = 23
    ds = to_tensor_dataset(np.arange(n)[:, None], np.zeros(n), torch.float64, torch.device("cpu"))
    loader = make_loader(
        ds, batch_size=5, shuffle=shuffle, generator=torch.Generator().manual_seed(0)
    )
    epochs = []
    for _ in range(2):
        batches = [x[:, 0].long().tolist() for x, _ in loader]
        assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
        order = [i for batch in batches for i in batch]
        assert sorted(order) == list(range(n))
        epochs.append(order)
    if shuffle:
        assert epochs[0] != list(range(n)) and epochs[0] != epochs[1]
    else:
        assert epochs == [list(range(n))] * 2
    assert len(loader) == 5


def test_minibatches_follow_one_randperm_of_their_generator_per_epoch():
    n, b = 100, 7
    ds = to_tensor_dataset(np.arange(n)[:, None], np.arange(n), torch.float64, CPU)
    batches = Minibatches(ds, b, True, torch.Generator().manual_seed(1))
    reference = torch.Generator().manual_seed(1)
    order = torch.arange(n)
    for _ in range(3):  # each epoch permutes the previous epoch's order
        order = order[torch.randperm(n, generator=reference)]
        got = [(x[:, 0].long(), y.long()) for x, y in batches]
        assert [len(y) for _, y in got] == [b] * (n // b) + [n % b]
        torch.testing.assert_close(torch.cat([x for x, _ in got]), order)
        torch.testing.assert_close(torch.cat([y for _, y in got]), order)


def test_minibatches_go_on_from_their_state_dict_in_a_fresh_loader():
    n, b = 30, 4

    def dataset():
        return to_tensor_dataset(np.arange(n)[:, None], np.arange(n), torch.float64, CPU)

    def epoch(batches):
        return torch.cat([x[:, 0] for x, _ in batches])

    first = Minibatches(dataset(), b, True, torch.Generator().manual_seed(5))
    for _ in range(2):
        epoch(first)
    state = first.state_dict()
    assert torch.equal(first.dataset.tensors[1].long(), state["order"])  # where each sample is
    expected = torch.stack([epoch(first) for _ in range(2)])

    fresh = Minibatches(dataset(), b, True, torch.Generator().manual_seed(99))
    epoch(fresh)  # wherever it was, loading the state puts it where ``first`` was
    fresh.load_state_dict(state)
    assert torch.equal(torch.stack([epoch(fresh) for _ in range(2)]), expected)


def test_shuffled_batches_are_views_and_labels_stay_with_their_points():
    n = 50
    ds = to_tensor_dataset(np.arange(n)[:, None], np.arange(n) * 10, torch.float64, CPU)
    loader = make_loader(ds, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3))
    for x, y in loader:
        assert x._base is ds.tensors[0]  # a view of this epoch's tensor, not a copy
        assert y._base is ds.tensors[1]
        torch.testing.assert_close(y, x[:, 0] * 10)


def test_float32_data_are_the_float64_data_rounded(monkeypatch):
    monkeypatch.setattr("logreg_exp.data.gaussian2d.NOISE_ROWS", 7)  # noise drawn in many blocks
    x64, y64 = make_gaussian2d(100, 5, 0.1, np.random.default_rng(0), np.float64)
    x32, y32 = make_gaussian2d(100, 5, 0.1, np.random.default_rng(0), np.float32)
    assert x32.dtype == np.float32 and y32.dtype == np.float32
    np.testing.assert_array_equal(x32, x64.astype(np.float32))
    np.testing.assert_array_equal(y32, y64)
    monkeypatch.setattr(
        "logreg_exp.data.gaussian2d.NOISE_ROWS", 1 << 16
    )  # one block: the same draws
    np.testing.assert_array_equal(make_gaussian2d(100, 5, 0.1, np.random.default_rng(0))[0], x64)


def test_split_views_one_shuffled_copy():
    x, y = gaussian(n=100)
    (xt, _), (xv, _), (xs, _) = split_train_val_test(
        x, y, 0.4, np.random.default_rng(0), test_fraction=0.2
    )
    assert xt.base is xv.base is xs.base is not None and not np.shares_memory(xt, x)


def test_limit_samples_keeps_a_seeded_random_subset_in_order():
    from logreg_exp.data.csv_file import LabeledArrays
    from logreg_exp.data.datasets import limit_samples

    x = np.arange(20, dtype=float).reshape(10, 2)
    data = LabeledArrays(x, np.arange(10) % 2.0, ["a", "b"], ["0", "1"])
    assert limit_samples(data, None, np.random.default_rng(0)) is data
    assert limit_samples(data, 10, np.random.default_rng(0)) is data
    small = limit_samples(data, 4, np.random.default_rng(0))
    again = limit_samples(data, 4, np.random.default_rng(0))
    assert len(small.y) == 4 and np.array_equal(small.x, again.x)
    rows = small.x[:, 0] / 2
    assert np.all(np.diff(rows) > 0)  # distinct rows, in their original order
    assert np.array_equal(small.y, rows % 2) and small.feature_names == ["a", "b"]
