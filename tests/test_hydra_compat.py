"""``logreg_exp.hydra_compat``: the one module that names the libraries' private parts, each
fallback giving what the internal gives (both run, on whichever Hydra line is installed),
and no deprecation warning from a run or a sweep."""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.singleton import Singleton
from hydra.errors import HydraException
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from logreg_exp import hydra_compat
from logreg_exp.registry import register_configs
from tests.helpers import REPO, compose_config, run_cli

PARSER = OverridesParser.create()

# What no module but hydra_compat may name: the libraries' private modules and attributes.
PRIVATE = re.compile(
    r"\b_internal\b|\b_utils\b|\b_get_node\b|\b_set_parent\b|\b_core\b|\b_EXECUTOR\b"
    r"|\b_apply_overrides_to_config\b|\btensorflow_stub\b|\bsplit_arguments\b"
    r"|HydraConfig\.instance\(\)\.cfg\s*="
)


def test_only_hydra_compat_names_private_internals():
    found = []
    for root in ("logreg_exp", "hydra_plugins"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path.name == "hydra_compat.py" and path.parent.name == "logreg_exp":
                continue
            for n, line in enumerate(path.read_text().splitlines(), start=1):
                if PRIVATE.search(line):
                    found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_private_names_pattern_finds_what_it_forbids():
    for line in (
        "from hydra._internal.config_loader_impl import ConfigLoaderImpl",
        "from omegaconf._utils import get_omega_conf_dumper",
        "node = cfg._get_node(key)",
        "from hydra_plugins.hydra_joblib_launcher._core import execute_job",
        "HydraConfig.instance().cfg = shown",
        "launcher._EXECUTOR",
    ):
        assert PRIVATE.search(line), line
    assert not PRIVATE.search("from logreg_exp.hydra_compat import apply_overrides")


def test_the_installed_lines_are_known():
    """CI runs on the lines whose internals hydra_compat has read; elsewhere it falls back."""
    assert hydra_compat.KNOWN_HYDRA and hydra_compat.KNOWN_OMEGACONF
    assert ({} if hydra_compat.HYDRA_1_4 else {"version_base": "1.3"}) == hydra_compat.VERSION_BASE


def nodes(cfg, prefix=""):
    """Each (parent, key) below ``cfg``, depth first."""
    keys = cfg.keys() if isinstance(cfg, DictConfig) else range(len(cfg))
    for key in keys:
        yield cfg, key
        node = hydra_compat.child_container(cfg, key, public=True)
        if node is not None:
            yield from nodes(node, f"{prefix}{key}.")


def test_child_container_public_is_the_internal():
    cfg = compose_config()
    with open_dict(cfg):
        cfg.extra = {"missing": "???", "ref": "${updater}", "items": [1, {"a": 2}], "none": None}
    seen = 0
    for parent, key in nodes(cfg):
        fast = hydra_compat.child_container(parent, key, public=False)
        public = hydra_compat.child_container(parent, key, public=True)
        assert fast is public, key
        seen += fast is not None
    assert seen > 5
    assert hydra_compat.child_container(cfg.extra, "ref", public=False) is None
    assert isinstance(hydra_compat.child_container(cfg.extra, "items"), ListConfig)


@pytest.mark.parametrize(
    "overrides",
    [
        ["updater.lr=0.5", "epochs=3"],
        ["batch_size=7", "dataset.n_samples=100", "updater.momentum=0.9", "seed=5"],
        ["updater.lr=1e-3", "updater.lr=0.25"],
    ],
)
def test_apply_overrides_public_is_the_internal(overrides):
    parsed = PARSER.parse_overrides(overrides)
    fast, public = compose_config(), compose_config()
    hydra_compat.apply_overrides(parsed, fast, public=False)
    hydra_compat.apply_overrides(parsed, public, public=True)
    assert OmegaConf.to_yaml(fast) == OmegaConf.to_yaml(public)
    assert OmegaConf.to_yaml(public) == OmegaConf.to_yaml(compose_config(*overrides))


def test_apply_overrides_public_fails_as_hydra_does():
    cfg = compose_config()
    for public in (False, True):
        with pytest.raises(HydraException):
            hydra_compat.apply_overrides(
                PARSER.parse_overrides(["epochs=many"]), cfg, public=public
            )
    with pytest.raises(ValueError, match="plain"):
        hydra_compat.apply_overrides(PARSER.parse_overrides(["+extra=1"]), cfg, public=True)


@pytest.mark.parametrize(
    "overrides", [["updater.lr=0.5", "batch_size=8"], ["overwrite=true", "seed=3"], []]
)
def test_set_override_dirname_public_is_what_hydra_composes(overrides):
    """Each way gives the dirname Hydra gives the job (``conf/config.yaml`` excludes
    ``overwrite``); on 1.4, where the key is the resolver's interpolation, it is left so."""
    expected = compose_config(*overrides, with_hydra=True).hydra.job.override_dirname
    parsed = PARSER.parse_overrides(overrides)
    for public in (False, True):
        cfg = compose_config(with_hydra=True)  # another job's, with no overrides
        with open_dict(cfg):
            cfg.hydra.overrides.task = overrides
        hydra_compat.set_override_dirname(cfg, parsed, public=public)
        if hydra_compat.HYDRA_1_4:
            assert OmegaConf.is_interpolation(cfg.hydra.job, "override_dirname")
        assert cfg.hydra.job.override_dirname == expected
        with open_dict(cfg):
            cfg.hydra.job.override_dirname = "stale"  # a string, as 1.3 composes it
        hydra_compat.set_override_dirname(cfg, parsed, public=public)
        assert cfg.hydra.job.override_dirname == expected


@pytest.mark.parametrize(
    "arguments",
    [
        ["updater.lr=0.1,0.01", "batch_size=8,16,32", "epochs=2"],
        ["seed=range(3)", "updater.lr=0.1", "seed=4,5"],
        ["dataset=glob(*)", "device=cpu"],
        ["updater.lr=choice(0.1,0.2)", "+extra=1", "~debug"],
        [],
    ],
)
def test_basic_sweep_jobs_public_is_the_internal(arguments):
    register_configs()
    with initialize_config_module(config_module="logreg_exp.conf", **hydra_compat.VERSION_BASE):
        parser = OverridesParser.create(GlobalHydra.instance().config_loader())
        parsed = parser.parse_overrides(arguments)
        fast = hydra_compat.basic_sweep_jobs(parsed, public=False)
        public = hydra_compat.basic_sweep_jobs(parsed, public=True)
    assert fast == public and len(fast) >= 1


def test_basic_sweep_jobs_refuses_what_the_basic_sweeper_refuses():
    parsed = PARSER.parse_overrides(["updater.lr=interval(0.1, 1.0)"])
    for public in (False, True):
        with pytest.raises(HydraException, match="does not support sweep type"):
            hydra_compat.basic_sweep_jobs(parsed, public=public)


def test_submitit_executor_public_is_the_internal():
    pytest.importorskip("submitit")
    from hydra_plugins.logreg_exp import launchers

    for name, executor in (("SlurmLauncher", "slurm"), ("LocalLauncher", "local")):
        launcher = object.__new__(getattr(launchers, name))  # the class says it, not params
        assert hydra_compat.submitit_executor(launcher, public=False) == executor
        assert hydra_compat.submitit_executor(launcher, public=True) == executor
    with pytest.raises(TypeError):
        hydra_compat.submitit_executor(object(), public=True)


def test_crc32c_public_is_tensorboards():
    assert hydra_compat.crc32c_pure(b"123456789") == 0xE3069283  # CRC-32C's check value
    internal = hydra_compat.crc32c_function(public=False)
    rng = random.Random(0)
    for size in (0, 1, 7, 64, 1000):
        data = bytes(rng.randrange(256) for _ in range(size))
        assert internal(data) == hydra_compat.crc32c_pure(data)
    assert hydra_compat.crc32c_function(public=True) is hydra_compat.crc32c_pure


class NoCallbacks:
    """What ``run_job`` calls of Hydra's callbacks, doing nothing."""

    def on_job_start(self, **kwargs):
        pass

    def on_job_end(self, **kwargs):
        pass


def lr_of(cfg: DictConfig) -> float:
    return cfg.updater.lr


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_execute_joblib_job_public_is_the_plugins(tmp_path, monkeypatch):
    """A job run in-process by each way: the same config, number, id, dir and value."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from hydra.core.utils import JobStatus

    monkeypatch.chdir(tmp_path)
    register_configs()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    returns = {}
    try:
        with initialize_config_module(config_module="logreg_exp.conf", **hydra_compat.VERSION_BASE):
            master = compose(
                config_name="config",
                overrides=[f"hydra.sweep.dir={tmp_path}/sweep"],
                return_hydra_config=True,
            )
            with open_dict(master):
                master.hydra.mode = RunMode.MULTIRUN
            HydraConfig.instance().set_config(master)
            context = HydraContext(
                config_loader=GlobalHydra.instance().config_loader(), callbacks=NoCallbacks()
            )
            for public in (False, True):
                with hydra_compat.trusted_targets():
                    ret = hydra_compat.execute_joblib_job(
                        3, ["updater.lr=0.25", "epochs=2"], context, master, lr_of,
                        Singleton.get_state(), public=public,
                    )  # fmt: skip
                assert ret.status == JobStatus.COMPLETED
                returns[public] = ret
                os.chdir(tmp_path)
    finally:
        root.handlers[:], root.level = handlers, level
    fast, public = returns[False], returns[True]
    assert fast.return_value == public.return_value == 0.25
    assert OmegaConf.to_yaml(fast.cfg) == OmegaConf.to_yaml(public.cfg)
    for key in ("job.id", "job.num", "runtime.output_dir", "overrides.task"):
        assert OmegaConf.select(fast.hydra_cfg.hydra, key) == OmegaConf.select(
            public.hydra_cfg.hydra, key
        )
    assert fast.hydra_cfg.hydra.job.id == "logreg_exp_3"
    job_dir = Path(public.hydra_cfg.hydra.runtime.output_dir)
    assert (job_dir / ".hydra" / "overrides.yaml").is_file()


def test_a_group_that_makes_a_multirun_does_so_from_the_command_line():
    arguments = ["hparams_search=optuna", "epochs=2"]
    assert hydra_compat.with_mode_of_groups(arguments, "logreg_exp.conf", hydra_1_4=True) == [
        *arguments, "hydra.mode=MULTIRUN",
    ]  # fmt: skip
    for unchanged in (["-m", *arguments], [*arguments, "hydra.mode=RUN"], ["updater=manual"]):
        assert (
            hydra_compat.with_mode_of_groups(unchanged, "logreg_exp.conf", hydra_1_4=True)
            == unchanged
        )
    assert hydra_compat.with_mode_of_groups(arguments, "logreg_exp.conf", hydra_1_4=False) == (
        arguments
    )


def test_project_targets_instantiate_on_either_line():
    cfg = compose_config()
    loss = hydra_compat.instantiate(cfg.loss)
    assert type(loss).__name__ in ("BCEWithLogitsLoss", "SigmoidBCELoss")
    # a class of the user's (allow_targets), which config.check_targets has let through
    made = hydra_compat.instantiate(OmegaConf.create({"_target_": "collections.OrderedDict"}))
    assert type(made).__name__ == "OrderedDict"


@pytest.mark.slow
@pytest.mark.hydra_lines
def test_a_run_and_sweeps_print_no_deprecation_warning(tmp_path):
    """Neither Hydra line's deprecations (version_base, override_dirname, the execution
    whitelist, register_new_resolver, ConfigStore collisions) reach a user's terminal or log."""
    commands = [
        ["epochs=1"],
        ["-m", "epochs=1", "updater.lr=0.1,0.01", "hydra/launcher=vectorized"],
        ["-m", "epochs=1", "updater.lr=0.1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1"],
    ]
    for arguments in commands:
        proc = run_cli(*arguments, "dataset.n_samples=200", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert not re.search("deprecat|Warning", proc.stdout + proc.stderr, re.I), proc.stderr
    logs = sorted((tmp_path / "outputs").rglob("*.log"))
    assert len(logs) >= 4
    for log in logs:
        assert not re.search("deprecat|Warning", log.read_text(), re.I), log


def test_show_hydra_config_public_is_the_internal():
    """Either way HydraConfig shows the job's hydra node, read-only, its interpolations into
    the job's config resolved."""
    shown = {}
    for public in (False, True):
        cfg = compose_config("updater.lr=0.3", with_hydra=True)
        with open_dict(cfg):
            cfg.hydra.job.name = "${updater.name}_job"
            cfg.hydra.runtime.output_dir = "/tmp/x"
            cfg.hydra.job.num = 4
            cfg.hydra.job.id = "4"
        hydra_compat.show_hydra_config(cfg, public=public)
        hydra_cfg = HydraConfig.get()
        assert hydra_cfg.job.name == f"{cfg.updater.name}_job"
        assert OmegaConf.is_readonly(hydra_cfg)
        shown[public] = OmegaConf.to_yaml(hydra_cfg.job, resolve=True)
    assert shown[False] == shown[True]


def test_a_float_range_counts_in_the_decimals_it_is_written_in():
    register_configs()  # which gives Hydra 1.3 the reading of 1.4
    (override,) = PARSER.parse_overrides(["x=range(0.05,0.1,0.01)"])
    assert list(override.sweep_string_iterator()) == ["0.05", "0.06", "0.07", "0.08", "0.09"]
    (whole,) = PARSER.parse_overrides(["x=range(1,4)"])
    assert list(whole.sweep_string_iterator()) == ["1", "2", "3"]
