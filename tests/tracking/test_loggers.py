"""TensorBoardLogger: hparams, result metrics, config text and an image in the run's own file;
the HParams names and values of a run: the config flattened to the keys a user overrides."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from logreg_exp.tracking.loggers import (
    HPARAM_METRIC_TAGS,
    TensorBoardLogger,
    flat_hparams,
    hparam_value,
    run_hparams,
)
from logreg_exp.training.loop import EpochMetrics
from tests.helpers import compose_config, scalars

RESULTS = {
    "status": "completed", "best_epoch": 2, "best_val_loss": 0.5, "best_val_acc": 0.75,
    "final_val_loss": 0.625, "final_val_acc": 0.5, "test_loss": 0.55, "test_acc": 0.7,
    "test_population_acc": 0.72,
}  # fmt: skip


def write_run(run_dir, hparams):
    logger = TensorBoardLogger(run_dir)
    logger.log_config("seed: 0\n")
    logger.start_session(hparams)
    for epoch in (1, 2, 3):
        logger.log_epoch(EpochMetrics(epoch, 0.7, 0.6, 0.6, 0.7, 0.1, 0.1), is_best=False)
    logger.end_session(RESULTS, step=3)
    logger.close()


def plugin_content(run_dir, plugin):
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return acc.PluginTagToContent(plugin)


def test_hparams_and_results_go_into_the_runs_own_event_file(tmp_path):
    write_run(tmp_path, {"updater.lr": 0.1, "dtype": "float32", "batch_size": 8})
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # no add_hparams subdir
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1

    content = plugin_content(tmp_path, hparams_metadata.PLUGIN_NAME)
    # no experiment summary: TensorBoard builds the experiment from all runs (see start_session)
    assert set(content) == {
        hparams_metadata.SESSION_START_INFO_TAG,
        hparams_metadata.SESSION_END_INFO_TAG,
    }
    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG]
    )
    assert start.hparams["updater.lr"].number_value == pytest.approx(0.1)
    assert start.hparams["batch_size"].number_value == 8
    assert start.hparams["dtype"].string_value == "float32"
    end = hparams_metadata.parse_session_end_info_plugin_data(
        content[hparams_metadata.SESSION_END_INFO_TAG]
    )
    assert end.status == api_pb2.STATUS_SUCCESS

    found = scalars(tmp_path)
    for tag, key in HPARAM_METRIC_TAGS.items():
        assert found[tag] == [(3, pytest.approx(RESULTS[key]))]


def test_config_is_text_in_a_yaml_code_block(tmp_path):
    write_run(tmp_path, {"seed": 0})
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    (event,) = acc.Tensors("config/text_summary")
    assert event.tensor_proto.string_val[0].decode() == "```yaml\nseed: 0\n```"


def test_a_run_that_did_not_complete_ends_as_a_failure_without_invented_results(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.start_session({"seed": 0})
    logger.end_session({"status": "diverged", "best_epoch": None}, step=0)
    logger.close()
    assert not [tag for tag in scalars(tmp_path) if tag.startswith("hparams/")]
    content = plugin_content(tmp_path, hparams_metadata.PLUGIN_NAME)
    end = hparams_metadata.parse_session_end_info_plugin_data(
        content[hparams_metadata.SESSION_END_INFO_TAG]
    )
    assert end.status == api_pb2.STATUS_FAILURE


def test_values_become_types_tensorboard_hparams_accept():
    assert hparam_value(0.01) == 0.01 and hparam_value(8) == 8 and hparam_value("sgd") == "sgd"
    assert hparam_value(True) == "true" and hparam_value(False) == "false"  # not 1.0 / 0.0
    assert hparam_value(None) == "null"
    assert hparam_value([1, 2]) == "[1, 2]"


def test_flat_hparams_use_dotted_override_keys_and_drop_instantiate_plumbing():
    node = {
        "updater": {
            "lr": 0.1,
            "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "nesterov": True},
        },
        "extra": {},
        "seed": 0,
    }
    assert flat_hparams(node) == {
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
        "class_weight": "null",
        "dataset.fold": 0,
        "dataset.folds": "null",
        "dataset.label_flip": 0.1,
        "dataset.max_samples": "null",
        "dataset.n_features": 2,
        "dataset.n_samples": 5000,
        "dataset.name": "gaussian2d",
        "dataset.standardize": "false",
        "dataset.stratify": "false",
        "dataset.test_fraction": 0.0,
        "dataset.val_fraction": 0.5,
        "device.cuda_graphs": "true",
        "device.data_on_device": "true",
        "device.name": "cpu",
        "dtype": "float64",
        "epochs": 12,
        "loss._target_": "torch.nn.BCEWithLogitsLoss",
        "min_delta": 0.0,
        "monitor": "val_loss",
        "patience": "null",
        "scheduler.name": "none",
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


def test_group_choices_are_added_where_the_group_name_does_not_say_them():
    choices = {
        "updater": "manual", "loss": "bce", "device": "auto",
        "hydra/launcher": "basic", "schema/updater@updater": "manual",
    }  # fmt: skip
    found = run_hparams(compose_config("updater=manual", "loss=bce", "device=auto"), choices)
    assert found["loss"] == "bce"
    assert found["loss._target_"] == "logreg_exp.training.model.SigmoidBCELoss"
    assert "updater" not in found and found["updater.name"] == "manual"
    assert "device" not in found and found["device.name"] == "auto"
    assert "updater.optimizer._target_" not in found  # the manual updater has no optimizer
    assert not any(key.startswith(("hydra", "schema")) for key in found)


def test_a_sweeps_job_records_only_the_hparams_the_sweep_varies():
    cfg = compose_config("updater=manual", "updater.lr=0.1", "loss=bce", "epochs=2")
    choices = {"updater": "manual", "loss": "bce", "dataset": "gaussian2d"}
    assert run_hparams(cfg, choices, ["updater.lr", "epochs"]) == {"epochs": 2, "updater.lr": 0.1}
    # a swept config group is its choice, named as every run names it
    assert run_hparams(cfg, choices, ["updater", "loss"]) == {
        "loss": "bce",
        "updater.name": "manual",
    }
    # nothing swept that is an hparam: the whole config, as for a single run
    everything = run_hparams(cfg, choices)
    assert run_hparams(cfg, choices, ["hydra/launcher"]) == everything
    assert run_hparams(cfg, choices, []) == everything
    assert len(everything) > 20
