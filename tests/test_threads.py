"""Threads per job: jobs x threads <= cores under every launcher, torch's default otherwise."""

from __future__ import annotations

import os

import pytest
import torch
from omegaconf import OmegaConf

from logreg_exp.threads import (
    default_threads,
    parallel_jobs,
    set_torch_threads,
    torch_default_threads,
    usable_cores,
)


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
        ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, 8, None),
    ],
)
def test_default_threads_keep_jobs_times_threads_within_the_cores(launcher, cores, expected):
    cfg = OmegaConf.create(launcher)
    OmegaConf.set_struct(cfg, True)  # as Hydra hands it over: unknown keys raise on access
    assert default_threads(cfg, cores=cores) == expected


def test_set_torch_threads_prefers_the_key_then_the_launcher_then_torch():
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(1, 2) == 1 == torch.get_num_threads()
        assert set_torch_threads(None, 1) == 1
        # a later job that asks for the default gets torch's own, not the job before it's
        assert set_torch_threads(None, None) == torch_default_threads()
    finally:
        torch.set_num_threads(before)
