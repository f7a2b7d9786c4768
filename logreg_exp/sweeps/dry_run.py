"""``dry_run=true``: what a command would run, printed before any dir is claimed or written,
under any launcher and sweeper. For a sweep: each job's number and overrides as the basic
sweeper will launch them (``callback.planned_jobs``), under ``hydra/launcher=vectorized`` how
the launcher groups them (its own ``group_jobs``) and why a job runs alone, the estimated
memory of the largest job (``training.memory``), and the count. A search sweeper (Optuna)
decides its jobs as it goes: its search space and trial count are all there is to show.
``OutputDirGuard``, the first callback, prints it and ends the process with status 0."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from logreg_exp.config import validated, without_hydra
from logreg_exp.data.datasets import dataset_for
from logreg_exp.errors import ConfigError
from logreg_exp.files import display_path
from logreg_exp.hydra_compat import BASIC_SWEEPER
from logreg_exp.sweeps.callback import job_line, planned_jobs
from logreg_exp.training.memory import available_memory, memory_needed, size_text

DRY_RUN_KEY = "dry_run"
VECTORIZED = "hydra_plugins.logreg_exp.launchers.VectorizedLauncher"


def shown_overrides(overrides: Sequence[str]) -> list[str]:
    """A job's overrides without ``dry_run=...``, which only the dry run has."""
    return [o for o in overrides if o.lstrip("+~").split("=")[0] != DRY_RUN_KEY]


def run_plan(config: DictConfig) -> str:
    """A single run's plan: its overrides, its dir, its memory."""
    overrides = shown_overrides(list(config.hydra.overrides.task))
    lines = [
        f"dry run: one run, {' '.join(overrides) or '(no overrides)'}",
        f"  into {display_path(str(config.hydra.run.dir))} (resolved when it runs)",
        memory_line([without_hydra(config)], [None]),
        "nothing was run or written; drop dry_run=true to run it",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def sweep_plan(config: DictConfig) -> str:
    """A sweep's plan, as the module docstring says."""
    launcher = str(config.hydra.launcher.get("_target_", "")).rsplit(".", 1)[-1]
    sweeper = config.hydra.sweeper
    jobs = planned_jobs(config)
    sweep_dir = display_path(str(config.hydra.sweep.dir))
    if jobs is None and sweeper.get("_target_") == BASIC_SWEEPER:
        raise ConfigError("the sweep's overrides do not expand into jobs: run it to see why")
    if jobs is None:
        target = sweeper.get("_target_", "?")
        node = sweeper.get("params")
        params = OmegaConf.to_container(node, resolve=False) if node is not None else {}
        assert isinstance(params, dict)
        trials = sweeper.get("n_trials")
        space = " ".join(f"{k}={v}" for k, v in params.items())
        lines = [
            f"dry run: the sweeper {target} is a search: it decides its jobs as it goes, from "
            "the results of the jobs before, so they cannot be listed ahead",
            f"  {trials if trials is not None else 'its'} trials over: {space or '(no params)'}",
            f"  launcher {launcher}, into {sweep_dir}",
        ]
        return "\n".join([*lines, "nothing was run or written; drop dry_run=true to run it"]) + "\n"
    shown = [shown_overrides(job) for job in jobs]
    lines = [f"dry run: {len(jobs)} jobs, launcher {launcher}, into {sweep_dir}"]
    lines += [f"  {job_line(num, len(jobs), job)}" for num, job in enumerate(shown)]
    configs = job_configs(config, jobs)
    if str(config.hydra.launcher.get("_target_")) == VECTORIZED:
        lines += grouping(configs)
    lines.append(memory_line([without_hydra(cfg) for cfg in configs], list(range(len(jobs)))))
    lines.append(f"{len(jobs)} jobs; nothing was run or written; drop dry_run=true to run them")
    return "\n".join(line for line in lines if line) + "\n"


def job_configs(config: DictConfig, jobs: Sequence[Sequence[str]]) -> list[DictConfig]:
    """Each job's composed config, as the vectorized launcher composes them (the first of
    each set of override keys by Hydra, the others derived from it)."""
    from logreg_exp.sweeps.vectorized import ConfigDeriver

    loader = GlobalHydra.instance().config_loader()
    derive = ConfigDeriver(loader.load_sweep_config)
    return [derive(config, list(job)) for job in jobs]


def grouping(configs: Sequence[DictConfig]) -> list[str]:
    """The vectorized launcher's grouping of the jobs, as its launch logs it."""
    from logreg_exp.sweeps.vectorized import group_jobs, grouping_lines, task_container

    tasks = [task_container(cfg) for cfg in configs]
    groups, alone = group_jobs(tasks)
    return ["hydra/launcher=vectorized would train " + line if n == 0 else line
            for n, line in enumerate(grouping_lines(groups, alone, 0, len(tasks)))]  # fmt: skip


def memory_line(configs: Sequence[DictConfig], nums: Sequence[int | None]) -> str:
    """The estimated peak memory of the largest job, against what the machine has."""
    largest: tuple[int, int | None] | None = None
    problems = []
    seen: dict[str, int] = {}
    for cfg, num in zip(configs, nums, strict=True):
        key = OmegaConf.to_yaml(cfg.dataset) + str(cfg.dtype)  # the memory is the data's
        if key in seen:
            needed = seen[key]
        else:
            try:
                settings = validated(cfg)
                needed = memory_needed(settings, dataset_for(settings.dataset))
            except (ConfigError, OSError) as err:
                problems.append(f"job #{num}: {err}" if num is not None else str(err))
                continue
            seen[key] = needed
        if largest is None or needed > largest[0]:
            largest = (needed, num)
    available = available_memory()
    room = f"; {size_text(available)} available" if available is not None else ""
    lines = []
    if largest is not None:
        which = f" (job #{largest[1]})" if largest[1] is not None else ""
        lines.append(f"estimated memory: {size_text(largest[0])} at most a job{which}{room}")
    lines += [f"would fail: {problem}" for problem in problems]
    return "\n".join(lines)


def plan_of(config: DictConfig, sweep: bool) -> str | None:
    """The plan to print where the config asks for a dry run; None otherwise."""
    if not bool(config.get(DRY_RUN_KEY, False)):
        return None
    return sweep_plan(config) if sweep else run_plan(config)
