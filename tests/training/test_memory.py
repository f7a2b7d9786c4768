"""The memory a run will need, checked against what the machine has before any data exist."""

import pytest

from logreg_exp.config import validated
from logreg_exp.data.datasets import dataset_for
from logreg_exp.errors import ConfigError
from logreg_exp.training import memory
from logreg_exp.training.memory import check_memory, memory_needed
from tests.helpers import compose_config


def needed(*overrides):
    cfg = validated(compose_config(*overrides))
    return memory_needed(cfg, dataset_for(cfg.dataset))


def test_the_peak_is_the_split_holding_the_data_twice():
    n, d = 1_000_000, 64
    data = n * (d + 1) * 4  # float32 features and labels
    got = needed(f"dataset.n_samples={n}", f"dataset.n_features={d}")
    assert 2 * data <= got < 2 * data + 1_000_000
    assert needed(f"dataset.n_samples={n}", f"dataset.n_features={d}", "dtype=float64") > got


def test_a_csv_is_counted_from_its_lines_and_header(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,c,label\n" + "1,2,3,0\n" * 1000)
    cfg = validated(
        compose_config("dataset=csv", f"dataset.path={tmp_path / 'd.csv'}", "dataset.target=label")
    )
    assert dataset_for(cfg.dataset).shape() == (1000, 3)
    assert memory_needed(cfg, dataset_for(cfg.dataset)) >= 2 * 1000 * 4 * 8  # read as float64


def test_a_run_larger_than_the_machine_is_refused_naming_the_sizes(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 3 * 2**30)
    cfg = validated(compose_config("dataset.n_samples=100000000", "dataset.n_features=10"))
    with pytest.raises(ConfigError) as info:
        check_memory(cfg, dataset_for(cfg.dataset))
    assert str(info.value) == (
        "dataset.n_samples=100000000: this run needs about 8.2 GiB of memory (100,000,000 "
        "samples x 10 features, held twice while they are split), but 3.0 GiB is available; "
        "use less data"
    )
