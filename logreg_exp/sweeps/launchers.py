"""Hydra's launcher and sweeper plugins: which extra brings each, the GPUs a job asks for, and
how many CPU threads torch gets per job.

The plugins are optional (``pip install 'logreg-exp[launchers]'`` or ``[optuna]``). One that
is chosen but not installed is reported before Hydra starts, in one line naming the extra,
rather than as Hydra's list of the options it did find.

Threads: ``threads: null`` (the default) means: under a launcher that runs ``n_jobs`` jobs at
once on this machine (joblib), ``usable cores // n_jobs``; under one that gives each job its
own ``cpus_per_task`` (submitit), that many; otherwise torch's own default. Either way
jobs x threads <= cores.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from logreg_exp.errors import ConfigError
from logreg_exp.hydra_compat import BASIC_SWEEPER


@dataclass(frozen=True)
class Plugin:
    """A Hydra plugin package, the library it drives, and the extra that installs both."""

    package: str
    library: str
    distribution: str
    extra: str


JOBLIB = Plugin(
    "hydra_plugins.hydra_joblib_launcher", "joblib", "hydra-joblib-launcher", "launchers"
)
SUBMITIT = Plugin(
    "hydra_plugins.hydra_submitit_launcher", "submitit", "hydra-submitit-launcher", "launchers"
)
OPTUNA = Plugin("hydra_plugins.hydra_optuna_sweeper", "optuna", "hydra-optuna-sweeper", "optuna")
MLFLOW = Plugin("mlflow", "mlflow", "mlflow", "mlflow")  # not a Hydra plugin: a tracker

# The command-line choices that need a plugin: "group=option" -> plugin.
NEEDS_PLUGIN = {
    "hydra/launcher=joblib": JOBLIB,
    "hydra/launcher=submitit_local": SUBMITIT,
    "hydra/launcher=submitit_slurm": SUBMITIT,
    "hydra/launcher=slurm": SUBMITIT,  # our presets on top of the two above
    "hydra/launcher=slurm_local": SUBMITIT,
    "hydra/sweeper=optuna": OPTUNA,
    "hparams_search=optuna": OPTUNA,
    "tracker=mlflow": MLFLOW,
}

# GPUs a submitit job asks for, by the device choice: submitit hides every GPU from a job
# that asks for none, so device=cuda needs one, and device=auto one to have a choice. On a
# SLURM cluster device=auto asks for none: sbatch rejects a GPU request on a partition without
# GPUs, so there the user asks for one (hydra.launcher.gpus_per_node=1).
GPUS_FOR_DEVICE = {"cpu": 0, "cuda": 1, "auto": 1}
GPUS_FOR_DEVICE_ON_SLURM = {**GPUS_FOR_DEVICE, "auto": 0}


# Launchers that train some jobs without a last.pt (a stacked group of the vectorized launcher
# trains from its first epoch): an unfinished sweep of theirs starts over rather than resume.
NOT_RESUMING = {
    "hydra_plugins.logreg_exp.launchers.VectorizedLauncher": "hydra/launcher=vectorized",
}


def why_a_sweep_cannot_resume(launcher: Any, sweeper: Any) -> str:
    """Why an unfinished sweep through ``launcher`` and ``sweeper`` (their ``_target_``) starts
    over rather than go on where it stopped; "" where it goes on. Going on needs the jobs
    that the basic sweeper lists, the same each time (a search such as Optuna's chooses its
    jobs as it goes), and a launcher whose jobs resume."""
    if str(launcher) in NOT_RESUMING:
        return f"{NOT_RESUMING[str(launcher)]} trains its jobs from the first epoch"
    if str(sweeper) != BASIC_SWEEPER:
        return f"its sweeper ({sweeper}) chooses its jobs as it goes"
    return ""


def register_own_plugins() -> None:
    """Make sure Hydra knows this package's launchers. Hydra 1.3 finds plugins by listing the
    ``hydra_plugins`` namespace package, which misses a package installed in editable mode by
    setuptools 64 or newer (hydra issue #2359; Hydra 1.4 moves to entry points): the classes
    import, but the listing does not see them. So they are registered here, by name (the
    submitit ones where the extra that they build on is installed)."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.logreg_exp import launchers

    for name in ("VectorizedLauncher", "SlurmLauncher", "LocalLauncher"):
        launcher = getattr(launchers, name, None)
        if launcher is not None:
            Plugins.instance().register(launcher)


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (optuna takes a second)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def missing_plugin(overrides: Sequence[str]) -> str | None:
    """The one-line error for the first override that chooses a plugin that is not installed."""
    for override in overrides:
        choice = override.lstrip("+~").replace(" ", "")
        plugin = NEEDS_PLUGIN.get(choice)
        if plugin is None:
            continue
        for module in (plugin.package, plugin.library):
            if not is_installed(module):
                return (
                    f"error: {choice} needs {plugin.distribution} ({module} is not installed): "
                    f"pip install 'logreg-exp[{plugin.extra}]'"
                )
    return None


def gpus_for_device(choice: str, where: str = "local") -> int:
    """The ``gpus_per_node`` a submitit job needs for ``device=<choice>``; ``where``: ``local``
    (submitit's local executor) or ``slurm``."""
    table = GPUS_FOR_DEVICE_ON_SLURM if where == "slurm" else GPUS_FOR_DEVICE
    try:
        return table[choice]
    except KeyError:
        allowed = ", ".join(GPUS_FOR_DEVICE)
        raise ConfigError(
            f"device={choice} has no GPU count for submitit (known: {allowed}); "
            "set hydra.launcher.gpus_per_node"
        ) from None


def hidden_gpu_warning(launcher: Any, device: str) -> str | None:
    """Why ``device=cuda`` will find no GPU in a submitit job that asked for none (the plugin's
    bare ``submitit_slurm``, or ``gpus_per_node=0`` set by hand); None otherwise."""
    if device != "cuda" or launcher is None or "gpus_per_node" not in launcher:
        return None
    if launcher.get("gpus_per_node"):
        return None
    local = str(launcher.get("_target_", "")).endswith("LocalLauncher")
    return (
        "device=cuda, but this job asked submitit for no GPU (hydra.launcher.gpus_per_node="
        f"{launcher.get('gpus_per_node')}), so it sees none: use hydra/launcher="
        f"{'slurm_local' if local else 'slurm'}, which asks for one, or set "
        "hydra.launcher.gpus_per_node=1"
    )


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, SLURM, containers) where
    the OS reports one, else every core."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parallel_jobs(n_jobs: int, cores: int) -> int:
    """joblib's reading of ``n_jobs``: -1 is every core, -2 all but one, and so on."""
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return max(1, n_jobs)


def jobs_at_once(n_jobs: int) -> int:
    """``n_jobs`` as a count of jobs on this machine (the ``jobs_at_once`` resolver)."""
    return parallel_jobs(int(n_jobs), usable_cores())


def default_threads(launcher: Any, cores: int | None = None) -> int | None:
    """Threads per job under the launcher config ``launcher`` (``hydra.launcher``), or None
    for torch's default."""
    cores = usable_cores() if cores is None else cores
    n_jobs = launcher.get("n_jobs") if launcher is not None else None
    if n_jobs is not None:
        return max(1, cores // parallel_jobs(int(n_jobs), cores))
    cpus = launcher.get("cpus_per_task") if launcher is not None else None
    if cpus is not None:
        return max(1, min(int(cpus), cores))
    return None
