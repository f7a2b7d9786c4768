"""Everything the project takes from Hydra, OmegaConf, the Hydra plugins, submitit and
TensorBoard that they do not make public: the one module that names their private parts.

Each reach is gated on the installed version: where the line is one this module knows
(``KNOWN_LINES``) and the internal is there, the internal is used (it is faster, or it is
the very code the library runs); anywhere else a public-API equivalent, slower perhaps but
correct, takes its place. Every function takes ``public=True`` to force that equivalent,
which is how ``tests/test_hydra_compat.py`` checks the two agree on whichever line is
installed. No other module of the package may name a private attribute of these libraries
(the test greps for them).

Where Hydra 1.4 changes what a user sees, the project follows 1.4 there: no ``version_base``
(``MAIN_ARGUMENTS``) but an execution whitelist (``TRUSTED_TARGETS``, ``instantiate``);
``register_resolver`` and a replacing ConfigStore (``store_replacing``); the launchers as
``hydra.plugins`` entry points (pyproject.toml); ``hydra.job.override_dirname`` left to 1.4's
resolver (``set_override_dirname``); a config group that sets ``hydra.mode`` moved to the
command line (``with_mode_of_groups``). CI runs both lines (.ci/run, .ci/hydra-1.4.txt).
"""

from __future__ import annotations

import contextlib
import decimal
import itertools
import re
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import hydra.utils
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Override, OverrideType, ValueType
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, run_job, setup_globals
from hydra.errors import HydraException
from hydra.types import HydraContext, TaskFunction
from omegaconf import Container, DictConfig, OmegaConf, open_dict


def line_of(package: str) -> tuple[int, int] | None:
    """The installed ``package``'s major and minor version (1.4 for 1.4.0rc3); None where it
    is not installed."""
    try:
        text = version(package)
    except PackageNotFoundError:
        return None
    major, minor = re.match(r"(\d+)\.(\d+)", text).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


HYDRA = line_of("hydra-core")
OMEGACONF = line_of("omegaconf")
# The lines whose internals this module has read, and which CI tests (.ci/run).
KNOWN_LINES = {"hydra-core": {(1, 3), (1, 4)}, "omegaconf": {(2, 3), (2, 4)}}
KNOWN_HYDRA = HYDRA in KNOWN_LINES["hydra-core"]
KNOWN_OMEGACONF = OMEGACONF in KNOWN_LINES["omegaconf"]

HYDRA_1_4 = HYDRA is not None and HYDRA >= (1, 4)
# What initialize_config_module is given: 1.3 warns without a version_base, 1.4 deprecates
# the argument (its behaviour is 1.3's with 1.1's and 1.2's compatibility removed).
VERSION_BASE: dict[str, str] = {} if HYDRA_1_4 else {"version_base": "1.3"}

# The targets the project's configs name (_target_, and a logging handler's class): its own
# code, its launchers, torch's optimizers and losses, the logging module's handlers. Hydra
# 1.4 instantiates only what trusted code lists (anything else is refused, and no list at
# all is deprecated); 1.3 instantiates anything.
TRUSTED_TARGETS = ["logreg_exp.*", "hydra_plugins.*", "torch.optim.*", "torch.nn.*", "logging.*"]
# What @hydra.main is given besides the config's place.
MAIN_ARGUMENTS: dict[str, Any] = (
    {"execution_whitelist": TRUSTED_TARGETS} if HYDRA_1_4 else {"version_base": "1.3"}
)


def trusted_targets(*more: str) -> Any:
    """A context in which ``hydra.utils.instantiate`` instantiates ``TRUSTED_TARGETS`` and
    ``more``."""
    if not HYDRA_1_4:
        return contextlib.nullcontext()
    from hydra.utils import execution_whitelist

    return execution_whitelist([*TRUSTED_TARGETS, *more])


def instantiate(config: Any, *args: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of a project config (the loss, the optimizer), whose
    ``_target_`` the project has checked (``config.check_targets``: the documented classes
    and those ``allow_targets`` lists), so it is trusted."""
    target = config.get("_target_") if hasattr(config, "get") else None
    with trusted_targets(*([str(target)] if target else [])):
        return hydra.utils.instantiate(config, *args, **kwargs)


def register_resolver(name: str, resolver: Callable[..., Any]) -> None:
    """Register an OmegaConf resolver by the API of the installed line: 2.4 renames
    ``register_new_resolver`` ``register_resolver`` (2.3's is the legacy one)."""
    if OMEGACONF is not None and OMEGACONF >= (2, 4):
        OmegaConf.register_resolver(name, resolver)
    else:
        OmegaConf.register_new_resolver(name, resolver)


def store_replacing(**arguments: Any) -> None:
    """``ConfigStore.store(**arguments)``, in place of what is stored there already (a
    plugin's config, or the project's own stored by an earlier call): 1.4 warns on a collision
    unless told to replace, 1.3 replaces and takes no such argument."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(**arguments, **({"replace": True} if HYDRA_1_4 else {}))


class ReplacingConfigStore:
    """Hydra's ConfigStore, its ``store`` replacing (``store_replacing``)."""

    store = staticmethod(store_replacing)


# The _target_ of Hydra's own basic sweeper and launcher, as their configs name them.
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def child_container(cfg: DictConfig, key: Any, *, public: bool = not KNOWN_OMEGACONF) -> Any:
    """The config node (a DictConfig or ListConfig) at ``cfg[key]``, without resolving it;
    None where the key holds a value, is missing (``???``) or is an interpolation."""
    if not public:
        node = cfg._get_node(key)
        if not isinstance(node, Container) or node._is_missing() or node._is_interpolation():
            return None
        return node
    if OmegaConf.is_missing(cfg, key) or OmegaConf.is_interpolation(cfg, key):
        return None
    value = cfg[key]  # a container child is handed out itself, not a copy
    return value if isinstance(value, Container) else None


def is_plain_change(override: Override) -> bool:
    """``key=value``: no +, ~ or ++, no sweep, no package."""
    return (
        override.type == OverrideType.CHANGE
        and override.value_type == ValueType.ELEMENT
        and override.package is None
    )


def apply_overrides(
    overrides: Sequence[Override], cfg: DictConfig, *, public: bool = not KNOWN_HYDRA
) -> None:
    """Apply parsed value overrides to ``cfg`` as Hydra applies them after composing a config.
    The public path takes plain changes only (``key=value``), which is what Hydra's does
    with them: ``OmegaConf.update`` with merge."""
    if not public:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        ConfigLoaderImpl._apply_overrides_to_config(list(overrides), cfg)
        return
    for override in overrides:
        if not is_plain_change(override):
            raise ValueError(f"not a plain key=value override: {override.input_line}")
        try:
            OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
        except Exception as err:
            raise HydraException(f"Error merging override {override.input_line}") from err


def set_override_dirname(
    cfg: DictConfig, overrides: Sequence[Override], *, public: bool = not KNOWN_HYDRA
) -> None:
    """Give ``cfg`` (a job's config derived from another job's) the
    ``hydra.job.override_dirname`` of its own ``hydra.overrides.task``. From Hydra 1.4 the key
    is an interpolation of the ``hydra_override_dirname`` resolver, which follows the task
    overrides by itself; before, the config loader writes the string, as this does."""
    if OmegaConf.is_interpolation(cfg.hydra.job, "override_dirname"):
        return
    options = cfg.hydra.job.config.override_dirname
    kv_sep, item_sep = options.kv_sep, options.item_sep
    exclude_keys = list(options.exclude_keys)
    if not public and HYDRA == (1, 3):
        from hydra._internal.config_loader_impl import get_overrides_dirname

        dirname = get_overrides_dirname(
            overrides=list(overrides), kv_sep=kv_sep, item_sep=item_sep, exclude_keys=exclude_keys
        )
    else:  # Hydra 1.3's rule: the input lines but excluded keys', sorted, joined, "=" swapped
        lines = sorted(o.input_line for o in overrides if o.key_or_group not in exclude_keys)
        dirname = re.sub("[=]", kv_sep, item_sep.join(lines))
    with open_dict(cfg.hydra):
        cfg.hydra.job.override_dirname = dirname


def basic_sweep_jobs(
    overrides: list[Override], *, public: bool = not KNOWN_HYDRA
) -> list[list[str]]:
    """Each job's overrides as Hydra's BasicSweeper expands ``overrides`` (in one batch): the
    cartesian product of each key's values, the keys in order of their first mention, a later
    mention of a key replacing its values. HydraException for a sweep it does not expand
    (``range``-like sweeps other than discrete ones)."""
    if not public:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        (batch,) = BasicSweeper.split_arguments(overrides, None)
        return [list(job) for job in batch]
    values: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            values[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            values[key] = [f"{key}={val}" for val in override.sweep_string_iterator()]
        else:
            assert override.value_type is not None
            raise HydraException(
                f"BasicSweeper does not support sweep type : {override.value_type.name}"
            )
    return [list(job) for job in itertools.product(*values.values())]


def submitit_executor(launcher: Any, *, public: bool = False) -> str:
    """The submitit executor (``"slurm"``, ``"local"``) a hydra-submitit-launcher launcher
    submits to: its class attribute, or, in public, the plugin class it derives from."""
    if not public and isinstance(getattr(type(launcher), "_EXECUTOR", None), str):
        return type(launcher)._EXECUTOR
    plugin = "hydra_plugins.hydra_submitit_launcher.submitit_launcher"
    # by name: Hydra's plugin scan may import the plugin's module anew, classes and all
    bases = {(c.__module__, c.__name__) for c in type(launcher).__mro__}
    for name, executor in (("SlurmLauncher", "slurm"), ("LocalLauncher", "local")):
        if (plugin, name) in bases:
            return executor
    raise TypeError(f"{type(launcher).__name__} is not a hydra-submitit-launcher launcher")


JOBLIB_PLUGIN = line_of("hydra-joblib-launcher")


def execute_joblib_job(
    idx: int,
    overrides: Sequence[str],
    hydra_context: HydraContext,
    config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
    public: bool = JOBLIB_PLUGIN not in {(1, 2), (1, 3), (1, 4)},
) -> JobReturn:
    """Run one job of a sweep in a joblib worker as hydra-joblib-launcher's ``execute_job``
    does: compose its config, number it, set Hydra's config, ``run_job``. The public path is
    that function's steps, through Hydra's public API."""
    if not public:
        from hydra_plugins.hydra_joblib_launcher._core import execute_job

        args: tuple[Any, ...] = (idx, overrides, hydra_context, config, task_function)
        if JOBLIB_PLUGIN == (1, 4):  # (..., task_function_unwrap_depth, state, wrap_result)
            return execute_job(*args, 0, singleton_state, False)
        return execute_job(*args, singleton_state)
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def crc32c_function(*, public: bool = False) -> Callable[[bytes], int]:
    """A pure-Python CRC-32C (Castagnoli) for TensorBoard's record checksums: tensorboard's
    own where it is where tensorboard keeps it, else this module's table-driven one."""
    if not public:
        try:
            from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c
        except ImportError:
            pass
        else:
            return crc32c
    return crc32c_pure


def crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC32C_TABLE = crc32c_table()


def crc32c_pure(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def decimal_float_ranges(*, hydra_1_4: bool = HYDRA_1_4) -> None:
    """A float sweep ``range(0.01,1.01,0.01)`` counts in the decimals the user wrote: its job
    dirs, overrides and summary say ``updater.lr=0.06``, where Hydra 1.3 counts in binary
    floats (``0.060000000000000005``). Hydra 1.4 reads the bounds through ``str``; on 1.3
    its ``FloatRange`` is given 1.4's reading (a public class, its dataclass set-up)."""
    if hydra_1_4:
        return
    from hydra.core.override_parser.types import FloatRange

    def post_init(self: Any) -> None:
        self.start = decimal.Decimal(str(self.start))
        self.stop = decimal.Decimal(str(self.stop))
        self.step = decimal.Decimal(str(self.step))

    FloatRange.__post_init__ = post_init  # type: ignore[method-assign]


def with_mode_of_groups(
    arguments: Sequence[str], config_module: str, *, hydra_1_4: bool = HYDRA_1_4
) -> list[str]:
    """The command line's ``arguments`` with ``hydra.mode=...`` added where a config group
    option they choose sets ``hydra.mode`` (``hparams_search=optuna`` makes a multirun) and
    neither ``-m`` nor ``hydra.mode`` is given: Hydra 1.4 takes the mode from the command line
    or the primary config only, and refuses one that composing changes; 1.3 reads it from the
    composed config, so there the arguments are returned as they are."""
    if not hydra_1_4 or any(
        a in ("-m", "--multirun") or a.startswith(("hydra.mode=", "hydra/mode=")) for a in arguments
    ):
        return list(arguments)
    from importlib.resources import files

    for argument in arguments:
        choice = re.fullmatch(r"([A-Za-z_][\w/]*)=([\w.-]+)", argument)
        if choice is None:
            continue
        path = files(config_module).joinpath(*choice[1].split("/"), f"{choice[2]}.yaml")
        if not path.is_file():
            continue
        mode = (yaml.safe_load(path.read_text()) or {}).get("hydra", {}).get("mode")
        if mode is not None:
            return [*arguments, f"hydra.mode={mode}"]
    return list(arguments)


def show_hydra_config(
    cfg: DictConfig, *, public: bool = not (KNOWN_HYDRA and KNOWN_OMEGACONF)
) -> None:
    """``HydraConfig.instance().set_config(cfg)``, without its deep copy of ``cfg.hydra`` (a
    third of a grouped job's set-up). Hydra shows the hydra node alone, in a config of its
    own whose one key is a copy of it, the copy's parent being ``cfg`` (so that
    interpolations into the job's config resolve); here that key is the node itself,
    read-only as there, its parent ``cfg`` as before. ``cfg`` must be a config of its own
    (nothing else may hold its hydra node). The public path is ``set_config`` itself."""
    if public:
        HydraConfig.instance().set_config(cfg)
        return
    from hydra.conf import HydraConf

    OmegaConf.set_readonly(cfg.hydra, True)
    node = cfg._get_node("hydra")
    assert isinstance(node, DictConfig)
    assert issubclass(OmegaConf.get_type(node) or object, HydraConf)
    shown = DictConfig({}, flags={"no_deepcopy_set_nodes": True})
    shown["hydra"] = node  # detaches the node from cfg ...
    node._set_parent(cfg)  # ... and back, as set_config leaves its copy
    HydraConfig.instance().cfg = shown  # type: ignore[assignment]


def shown_hydra_config() -> DictConfig | None:
    """The config ``HydraConfig`` shows (``{hydra: ...}``, what Hydra writes as hydra.yaml);
    tests compare the lean set-up's with Hydra's own."""
    return HydraConfig.instance().cfg


def parent_of(cfg: DictConfig, key: str) -> Any:
    """The parent of the node at ``cfg[key]``, as OmegaConf links them (tests check that the
    lean set-up leaves the hydra node a child of its job's config)."""
    return cfg._get_node(key)._get_parent()
