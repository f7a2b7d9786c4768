"""Launcher presets, the check for a missing plugin, and threads per job (jobs x threads <=
cores), without launching anything."""

from __future__ import annotations

import os

import pytest
from omegaconf import OmegaConf

from logreg_exp.errors import ConfigError
from logreg_exp.hydra_compat import BASIC_LAUNCHER
from logreg_exp.sweeps import launchers
from logreg_exp.sweeps.launchers import (
    default_threads,
    gpus_for_device,
    missing_plugin,
    parallel_jobs,
    usable_cores,
)
from tests.helpers import compose_config


def launcher_config(*overrides: str):
    """The resolved ``hydra.launcher`` that ``python -m logreg_exp OVERRIDES`` would launch with."""
    cfg = compose_config(*overrides, with_hydra=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


@pytest.mark.parametrize(
    ("preset", "device", "gpus"),
    [
        ("slurm_local", "cpu", 0),
        ("slurm_local", "cuda", 1),
        ("slurm_local", "auto", 1),
        ("slurm", "cpu", 0),
        ("slurm", "cuda", 1),
        ("slurm", "auto", 0),  # sbatch rejects a GPU request on a partition without GPUs
    ],
)
def test_submitit_presets_ask_for_a_gpu_when_the_device_may_use_one(preset, device, gpus):
    launcher = launcher_config(f"hydra/launcher={preset}", f"device={device}")
    assert launcher["gpus_per_node"] == gpus


def test_device_auto_on_slurm_gets_a_gpu_when_the_user_asks_for_one():
    launcher = launcher_config(
        "hydra/launcher=slurm", "device=auto", "hydra.launcher.gpus_per_node=1"
    )
    assert launcher["gpus_per_node"] == 1


def test_slurm_presets_use_the_launchers_that_wait_for_every_job():
    slurm = launcher_config("hydra/launcher=slurm")
    assert slurm["_target_"] == "hydra_plugins.logreg_exp.launchers.SlurmLauncher"
    assert slurm["max_num_timeout"] > 0  # a job that reaches its time limit is requeued
    assert slurm["additional_parameters"] == {"requeue": True}
    local = launcher_config("hydra/launcher=slurm_local")
    assert local["_target_"] == "hydra_plugins.logreg_exp.launchers.LocalLauncher"


def test_slurm_preset_exposes_what_users_edit_on_the_slurm_launcher():
    launcher = launcher_config("hydra/launcher=slurm", "hydra.launcher.partition=gpu")
    assert launcher["_target_"].endswith("launchers.SlurmLauncher")
    assert launcher["partition"] == "gpu"
    assert (launcher["timeout_min"], launcher["cpus_per_task"], launcher["mem_gb"]) == (60, 2, 4)
    assert {"account", "qos", "nodes", "tasks_per_node", "array_parallelism", "setup"} <= set(
        launcher
    )


def test_slurm_local_preset_runs_submitits_local_executor():
    launcher = launcher_config("hydra/launcher=slurm_local")
    assert launcher["_target_"].endswith("launchers.LocalLauncher")
    assert launcher["cpus_per_task"] == 1


def test_joblib_runs_a_job_per_usable_core_by_default():
    launcher = launcher_config("hydra/launcher=joblib")
    assert launcher["_target_"].endswith("JoblibLauncher")
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf

    # the plugin's other defaults (backend: None on 1.2, "loky" on 1.4; the launcher uses loky)
    assert launcher["n_jobs"] == -1 and launcher["backend"] == JobLibLauncherConf().backend


def test_unknown_device_names_the_key_to_set():
    with pytest.raises(ConfigError, match=r"set hydra\.launcher\.gpus_per_node"):
        gpus_for_device("tpu")


def test_installed_plugins_pass_the_check():
    for choice in ["hydra/launcher=joblib", "hydra/launcher=slurm", "hparams_search=optuna"]:
        assert missing_plugin([choice, "epochs=1"]) is None
    assert missing_plugin(["updater=manual", "hydra/launcher=basic"]) is None


def test_a_missing_plugin_is_named_with_its_extra(monkeypatch):
    monkeypatch.setattr(launchers, "is_installed", lambda module: module != "optuna")
    assert missing_plugin(["epochs=1", "hparams_search=optuna"]) == (
        "error: hparams_search=optuna needs hydra-optuna-sweeper (optuna is not installed): "
        "pip install 'logreg-exp[optuna]'"
    )
    assert missing_plugin(["hydra/launcher=joblib"]) is None


@pytest.mark.parametrize(
    ("launcher", "device", "warns"),
    [
        ({"gpus_per_node": None}, "cuda", True),  # the plugin's bare submitit_slurm
        ({"gpus_per_node": 0}, "cuda", True),
        ({"gpus_per_node": 1}, "cuda", False),
        ({"gpus_per_node": 0}, "cpu", False),
        ({"gpus_per_node": None}, "auto", False),  # auto falls back to the CPU, as it should
        ({"n_jobs": -1}, "cuda", False),  # joblib: the job sees this machine's GPUs
    ],
)
def test_a_submitit_job_without_a_gpu_warns_when_it_wants_cuda(launcher, device, warns):
    from logreg_exp.sweeps.launchers import hidden_gpu_warning

    message = hidden_gpu_warning(OmegaConf.create(launcher), device)
    assert (message is not None) == warns
    if warns:
        assert "hydra.launcher.gpus_per_node=1" in message and "hydra/launcher=slurm," in message


def test_the_gpu_warning_names_the_local_preset_under_the_local_launcher():
    from logreg_exp.sweeps.launchers import hidden_gpu_warning

    local = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}
    message = hidden_gpu_warning(OmegaConf.create({**local, "gpus_per_node": None}), "cuda")
    assert "use hydra/launcher=slurm_local, which asks for one" in message


def test_usable_cores_follows_the_cpu_affinity():
    if hasattr(os, "sched_getaffinity"):
        assert usable_cores() == len(os.sched_getaffinity(0))
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("n_jobs", "cores", "expected"), [(-1, 8, 8), (-2, 8, 7), (-9, 8, 1), (3, 8, 3), (0, 8, 1)]
)
def test_parallel_jobs_reads_n_jobs_as_joblib_does(n_jobs, cores, expected):
    assert parallel_jobs(n_jobs, cores) == expected


@pytest.mark.parametrize(
    ("launcher", "cores", "expected"),
    [
        ({"n_jobs": -1}, 8, 1),  # joblib's default: a job per core, a thread each
        ({"n_jobs": 2}, 8, 4),
        ({"n_jobs": 3}, 8, 2),  # rounds down: 3 x 2 <= 8
        ({"n_jobs": 16}, 8, 1),  # never 0
        ({"cpus_per_task": 4, "gpus_per_node": 0}, 8, 4),  # submitit: what the job asked for
        ({"cpus_per_task": 32}, 8, 8),  # but no more than this machine has
        ({"cpus_per_task": None}, 8, None),
        ({"_target_": BASIC_LAUNCHER}, 8, None),
    ],
)
def test_default_threads_keep_jobs_times_threads_within_the_cores(launcher, cores, expected):
    cfg = OmegaConf.create(launcher)
    OmegaConf.set_struct(cfg, True)  # as Hydra hands it over: unknown keys raise on access
    assert default_threads(cfg, cores=cores) == expected
