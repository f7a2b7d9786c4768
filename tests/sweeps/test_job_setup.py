"""A grouped job's set-up: its .hydra/ files byte for byte as Hydra writes them, from configs
derived from the first job's template."""

from __future__ import annotations

import copy

import pytest
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict, read_write

from logreg_exp.hydra_compat import VERSION_BASE, parent_of, shown_hydra_config
from logreg_exp.registry import register_configs
from logreg_exp.sweeps.job_setup import JobSetUp, log_file_of, resolved_text, set_hydra_config
from logreg_exp.sweeps.vectorized import ConfigDeriver

JOBS = [  # batch_size comes after updater in the config: holes out of the overrides' order
    ["device=cpu", "batch_size=8", "updater.lr=0.1"],  # the same group choice in every job
    ["device=cpu", "batch_size=8", "updater.lr=1"],  # an int for a float key: written 1.0
    ["device=cpu", "batch_size=32", "updater.lr=0.001"],
    ["device=cpu", "batch_size=8", "updater.lr=1e-5"],
    ["device=cpu", f"batch_size={10**70}", "updater.lr=0.5"],  # a dir name too long for a line
]


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_the_hydra_files_are_what_hydra_writes(tmp_path):
    """Each job's config.yaml, hydra.yaml and overrides.yaml from the configs derived from the
    first job's template, against OmegaConf.to_yaml of the configs Hydra composes, as its
    run_job writes them."""
    register_configs()
    with initialize_config_module(config_module="logreg_exp.conf", **VERSION_BASE):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            "config", [f"hydra.sweep.dir={tmp_path}", "hydra/launcher=vectorized"],
            RunMode.MULTIRUN,
        )  # fmt: skip
        deriver = ConfigDeriver(loader.load_sweep_config)
        for num, overrides in enumerate(JOBS):
            texts = {}
            for way in ("hydra", "derived"):
                if way == "hydra":
                    cfg = loader.load_sweep_config(master, overrides)
                else:
                    cfg = deriver.for_launch(master, overrides)
                with open_dict(cfg):
                    cfg.hydra.job.id, cfg.hydra.job.num = str(num), num
                subdir = OmegaConf.select(cfg, "hydra.sweep.subdir")
                with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
                    cfg.hydra.runtime.output_dir = str(tmp_path / subdir)
                if way == "hydra":
                    HydraConfig.instance().set_config(cfg)
                else:
                    set_hydra_config(cfg)
                hydra_cfg = shown_hydra_config()
                if way == "hydra":  # as run_job makes and writes them
                    task_cfg = copy.deepcopy(cfg)
                    with read_write(task_cfg), open_dict(task_cfg):
                        del task_cfg["hydra"]
                    nodes = (task_cfg, hydra_cfg, cfg.hydra.overrides.task)
                    texts[way] = [OmegaConf.to_yaml(node) for node in nodes]
                    hydra_task = task_cfg
                else:
                    task_cfg = deriver.task_config(cfg)
                    assert OmegaConf.get_type(task_cfg) is OmegaConf.get_type(hydra_task)
                    nodes = (task_cfg, hydra_cfg, cfg.hydra.overrides.task)
                    texts[way] = [OmegaConf.to_yaml(node) for node in nodes]
            assert texts["derived"] == texts["hydra"], overrides


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_set_hydra_config_shows_what_hydras_set_config_shows(tmp_path):
    """HydraConfig set from a job's config without copying its hydra node: the same YAML, the
    same values through HydraConfig.get() and ${hydra:...} in the job's config, the node
    read-only, and the job's config itself unchanged, its hydra node still its child."""
    register_configs()
    with initialize_config_module(config_module="logreg_exp.conf", **VERSION_BASE):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            "config", [f"hydra.sweep.dir={tmp_path}"], RunMode.MULTIRUN
        )
        seen = {}
        for way in ("hydra", "shared"):
            cfg = loader.load_sweep_config(master, ["updater.lr=0.3", "+note=${hydra:job.num}"])
            with open_dict(cfg):
                cfg.hydra.job.id, cfg.hydra.job.num = "7", 7
            with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
                cfg.hydra.runtime.output_dir = str(tmp_path / "7")
            before = OmegaConf.to_yaml(cfg)
            if way == "hydra":
                HydraConfig.instance().set_config(cfg)
            else:
                set_hydra_config(cfg)
                assert HydraConfig.get() is cfg.hydra
            shown = shown_hydra_config()
            assert parent_of(cfg, "hydra") is cfg
            assert OmegaConf.is_readonly(HydraConfig.get())
            assert OmegaConf.to_yaml(cfg) == before
            seen[way] = (
                OmegaConf.to_yaml(shown),
                HydraConfig.get().runtime.output_dir,
                HydraConfig.get().job.override_dirname,
                cfg.note,
            )
        assert seen["shared"] == seen["hydra"]
        assert seen["shared"][3] == 7


@pytest.mark.slow
@pytest.mark.hydra_lines
@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["hydra.job_logging.handlers.file.filename=${hydra.runtime.output_dir}/own.log"],
        ["hydra.job_logging.formatters.simple.format='${hydra.job.num} %(message)s'"],
        ["hydra.job.name=renamed"],
    ],
)  # fmt: skip
def test_a_jobs_log_file_is_the_one_hydras_job_logging_names(tmp_path, overrides):
    """Read once per template where the config keeps Hydra's default file name, and where it
    does not, resolved for each job: the same path and line format either way."""
    register_configs()
    with initialize_config_module(config_module="logreg_exp.conf", **VERSION_BASE):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            "config", [f"hydra.sweep.dir={tmp_path}", *overrides], RunMode.MULTIRUN
        )
        set_up = JobSetUp(callbacks=None, task_config=lambda cfg: cfg, console=[])
        for num in range(3):
            cfg = loader.load_sweep_config(master, [f"updater.lr={0.1 * (num + 1)}"])
            with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
                cfg.hydra.runtime.output_dir = str(tmp_path / str(num))
            with open_dict(cfg):
                cfg.hydra.job.num = num
            assert set_up.log_file_for(cfg, "template") == log_file_of(cfg.hydra)
        assert (set_up.log_formats["template"] is None) is ("${" in "".join(overrides))


def test_a_config_that_interpolates_nothing_is_its_own_resolved_text():
    """The job's config.yaml text stands for TensorBoard's resolved config text only where
    the two are the same."""
    plain = OmegaConf.create({"a": 1, "b": {"c": "x", "d": [1.5, None]}, "e": "???"})
    text = OmegaConf.to_yaml(plain)
    assert resolved_text(text) == OmegaConf.to_yaml(plain, resolve=True)
    linked = OmegaConf.create({"a": 1, "b": "${a}", "c": "\\${a}"})
    assert OmegaConf.to_yaml(linked) != OmegaConf.to_yaml(linked, resolve=True)
    assert resolved_text(OmegaConf.to_yaml(linked)) is None
