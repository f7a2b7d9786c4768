"""What Hydra and OmegaConf must know before they compose this package's config: every
schema in Hydra's ConfigStore, the resolvers the YAML files call, and this package's
launchers; and the README's table of allowed values, from the same schemas."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
from collections.abc import Sequence
from importlib.resources import files

from omegaconf import OmegaConf

from logreg_exp.config import (
    SCHEDULER_SCHEMAS,
    TRACKER_SCHEMAS,
    UPDATER_SCHEMAS,
    DeviceConfig,
    JobConfig,
    LBFGSUpdaterConfig,
    LossConfig,
    UpdaterConfig,
    reference,
)
from logreg_exp.data.datasets import DATASETS
from logreg_exp.hydra_compat import (
    ReplacingConfigStore,
    decimal_float_ranges,
    register_resolver,
)
from logreg_exp.sweeps.launchers import (
    JOBLIB,
    gpus_for_device,
    is_installed,
    jobs_at_once,
    register_own_plugins,
)

NAME_BYTES = 150  # of a job dir's name after its number; file systems allow 255
KEPT_BYTES = 120  # of a name too long for that, kept before its hash


def path_safe(text: str) -> str:
    """A directory-name-safe form of ``text`` (a job's overrides): path separators become
    ``_``, and a name longer than NAME_BYTES in UTF-8 keeps its first KEPT_BYTES and ends in
    ``-`` and 12 hex digits of its SHA-256, the same on every machine and in every launcher.
    The job's full overrides are in its ``.hydra/overrides.yaml`` and the sweep summary."""
    name = text.replace("/", "_").replace("\\", "_")
    encoded = name.encode()
    if len(encoded) <= NAME_BYTES:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:12]
    return encoded[:KEPT_BYTES].decode(errors="ignore") + "-" + digest


def zero_pad(number: int, width: int) -> str:
    """``number`` with leading zeros to ``width`` digits (``0007``), so that names holding it
    sort in numeric order as text; a longer number is written whole."""
    return f"{int(number):0{int(width)}d}"


def register_configs() -> None:
    """Put every schema in Hydra's ConfigStore and our resolvers in OmegaConf; call before
    Hydra composes the config.

    Each schema is stored under ``schema/`` (``schema/dataset/gaussian2d`` validates
    ``dataset/gaussian2d.yaml``), apart from the groups a user chooses from, so
    ``updater=foo`` lists only real options; each YAML file lists its schema first in its
    defaults list, placed at its own package with ``@_here_``.
    """
    resolvers = {
        "path_safe": path_safe,
        "zero_pad": zero_pad,
        "gpus_for_device": gpus_for_device,
        "jobs_at_once": jobs_at_once,
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            register_resolver(name, resolver)
    decimal_float_ranges()  # range() sweeps of floats say 0.06, not 0.060000000000000005
    cs = ReplacingConfigStore()
    cs.store(group="schema", name="job", node=JobConfig)
    for name, dataset in DATASETS.items():
        cs.store(group="schema/dataset", name=name, node=dataset.schema)
    for name, schema in UPDATER_SCHEMAS.items():
        cs.store(group="schema/updater", name=name, node=schema)
    for name, schema in SCHEDULER_SCHEMAS.items():
        cs.store(group="schema/scheduler", name=name, node=schema)
    for name, schema in TRACKER_SCHEMAS.items():
        cs.store(group="schema/tracker", name=name, node=schema)
    cs.store(group="schema", name="device", node=DeviceConfig)
    cs.store(group="schema", name="loss", node=LossConfig)


def register_plugins() -> None:
    """This package's launchers, registered with Hydra: hydra/launcher=vectorized, and the
    joblib launcher that replaces the plugin's. It runs Hydra's plugin scan, so the command
    line's check for a missing extra (``missing_plugin``) comes first."""
    register_own_plugins()  # hydra/launcher=vectorized
    if is_installed(JOBLIB.package):
        from logreg_exp.sweeps.joblib_launcher import register_config

        register_config()


def unknown_key(arguments: Sequence[str], config_module: str = "logreg_exp.conf") -> str | None:
    """The one-line error for the first command-line override (``epoch=3``,
    ``dataset.val_fractio=0.9``) whose key no schema declares, with the keys it may have
    meant; None where there is none. Read before Hydra composes, whose own message spans six
    lines and suggests adding the key with ``+`` (which ``config.check_known_keys`` refuses
    too). A top-level key must be a key of ``JobConfig`` or a config group; a key of a group
    with schemas (``dataset.*``, ``updater.*``...) a field of one of its options' schemas
    (whether the chosen option has it is left to Hydra and the schemas)."""
    groups = {p.name for p in files(config_module).iterdir() if p.is_dir()} - {"__pycache__"}
    known = [f.name for f in dataclasses.fields(JobConfig)]
    group_keys = group_fields()
    for argument in arguments:
        found = re.fullmatch(r"([A-Za-z_]\w*)(?:\.([^.=]+))?[^=]*=.*", argument, flags=re.DOTALL)
        if found is None:
            continue
        key, sub = found[1], found[2]
        if key not in known and key not in groups:
            close = difflib.get_close_matches(key, [*known, *sorted(groups)], n=3)
            hint = (
                f"did you mean {' or '.join(close)}" if close else f"its keys: {', '.join(known)}"
            )
            return f"error: Key '{key}' not in '{JobConfig.__name__}'; {hint}"
        fields = group_keys.get(key)
        if sub is not None and fields is not None and sub not in fields:
            close = [f"{key}.{c}" for c in difflib.get_close_matches(sub, sorted(fields), n=3)]
            hint = (
                f"did you mean {' or '.join(close)}"
                if close
                else f"its keys: {', '.join(sorted(fields))}"
            )
            return f"error: Key '{key}.{sub}' not in any {key} option's schema; {hint}"
    return None


def group_fields() -> dict[str, set[str]]:
    """The keys each config group with schemas may hold: its options' fields, together."""
    schemas = {
        "dataset": [d.schema for d in DATASETS.values()],
        "updater": list(UPDATER_SCHEMAS.values()),
        "scheduler": list(SCHEDULER_SCHEMAS.values()),
        "device": [DeviceConfig],
    }
    return {
        group: {f.name for schema in options for f in dataclasses.fields(schema)}
        for group, options in schemas.items()
    }


def config_reference() -> str:
    """The README's table of every key's allowed values, from the schemas."""
    return reference(
        [
            ("", JobConfig, "every run"),
            ("updater.", UpdaterConfig, "both updaters"),
            ("updater.", LBFGSUpdaterConfig, "updater=lbfgs"),
            *(("dataset.", d.schema, f"dataset={name}") for name, d in DATASETS.items()),
            *(("scheduler.", s, f"scheduler={name}") for name, s in SCHEDULER_SCHEMAS.items()),
        ]
    )
