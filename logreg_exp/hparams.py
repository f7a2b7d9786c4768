"""A run's hyperparameters as TensorBoard's HParams tab takes them.

Every name is the override that sets it (``updater.lr``, ``batch_size``, ``loss._target_``,
and config group choices such as ``updater``), so a row of the table can be rerun by typing
its names and values on the command line.
"""

from __future__ import annotations

import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

HParamValue = int | float | str | bool

# Keys that say how hydra.utils.instantiate calls a _target_, not what the run is.
INSTANTIATE_KEYS = frozenset({"_partial_", "_recursive_", "_convert_"})


def hparam_value(value: Any) -> HParamValue:
    """``value`` as one of the types TensorBoard's HParams accept, spelt as in an override.

    Booleans become ``"true"``/``"false"``: ``torch.utils.tensorboard.summary.hparams`` would
    otherwise store them as the numbers 1.0 and 0.0. ``None`` becomes ``"null"`` (it would be
    dropped), lists and the like their JSON text.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float | str):
        return value
    return json.dumps(value)


def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, HParamValue]:
    """Leaves of a nested dict under dotted keys, instantiate plumbing left out."""
    flat: dict[str, HParamValue] = {}
    for key, value in node.items():
        if key in INSTANTIATE_KEYS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = hparam_value(value)
    return flat


def group_choices() -> dict[str, HParamValue]:
    """The config group options this run was composed from (``updater: manual``), when Hydra
    runs it; Hydra's own groups (``hydra/...``) and the schemas each option pulls in
    (``schema/updater@updater``) are left out: they follow from the options."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {
        group: hparam_value(choice)
        for group, choice in choices.items()
        if not group.startswith(("hydra/", "schema"))
    }


def run_hparams(cfg: DictConfig) -> dict[str, HParamValue]:
    """The resolved config flattened, sorted by name, plus each group choice that its
    ``<group>.name`` does not already say (``loss: bce_logits``, not ``updater: optim``)."""
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(container, dict)
    hparams = flatten(container)
    for group, choice in group_choices().items():
        if hparams.get(f"{group}.name") != choice:
            hparams[group] = choice
    return dict(sorted(hparams.items()))
