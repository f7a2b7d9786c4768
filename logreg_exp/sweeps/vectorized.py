"""``hydra/launcher=vectorized``: the jobs of a sweep that differ only in elementwise updater
hyperparameters (a learning-rate sweep), their seed, their fold or their batch size train
together as one stacked model.

The launcher composes every job's config, groups the jobs whose configs are the same but for
the values that act column by column (``updater.lr``, ``updater.momentum``,
``updater.weight_decay`` and the optimizer's other elementwise arguments, for the optimizers
in ``training.stacked.ELEMENTWISE``), and then, in job order, sets up each job as Hydra's
``run_job`` does for the basic launcher (its dir, ``.hydra/``, its log file, the callbacks;
``sweeps.job_setup``) and checks its config: a job that fits no group runs then, exactly as
the basic launcher runs it; a job with a bad value fails alone. Each group then trains as one
(``group_run.run_job_group``), and every job gets its own files and its value for the sweeper.

Hydra composes each job's config from scratch (about 80 ms a job). A job whose overrides set
the same keys as an earlier job's to plain values, and choose the same config group options,
gets that job's composed config with its own values applied, by the same function Hydra
applies overrides with (``tests/sweeps/test_vectorized.py`` checks the two are identical).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType, ValueType
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_class
from omegaconf import Container, DictConfig, OmegaConf, open_dict, read_write

from logreg_exp.config import flatten, validated, without_hydra
from logreg_exp.errors import ConfigError
from logreg_exp.hydra_compat import apply_overrides, child_container, set_override_dirname
from logreg_exp.outcomes import EndProcess
from logreg_exp.output_dirs import DirLock, lock_dir
from logreg_exp.results import Status
from logreg_exp.startup import import_heavy_modules
from logreg_exp.sweeps.job_setup import JobSetUp, log_file_of
from logreg_exp.sweeps.launchers import default_threads
from logreg_exp.sweeps.swept import keys_the_sweep_varies
from logreg_exp.training.pruning import SuccessiveHalving

log = logging.getLogger(__name__)

UPDATER_COLUMNS = ("lr", "momentum", "weight_decay")
# Keys whose jobs train on data of their own, each column on its own (``group_run.data_key``)
DATA_COLUMNS = ("seed", "dataset.fold")
# Each column steps at its own minibatch boundaries on one pass (``stacked.BatchSizes``)
BATCH_COLUMNS = ("batch_size",)
MANUAL_COLUMNS = UPDATER_COLUMNS
PENALTY_COLUMNS = ("penalty", "alpha", "l1_ratio")
# Losses known to be a mean of per-sample losses that take reduction="none".
PER_SAMPLE_LOSSES = ("torch.nn.BCEWithLogitsLoss", "logreg_exp.training.model.SigmoidBCELoss")


def column_keys(task: dict[str, Any], batch_sizes: bool = True) -> tuple[list[str] | None, str]:
    """The dotted keys of ``task`` (a job's config, resolved) whose values may differ within a
    group, or None and why the job cannot be grouped. ``batch_sizes``: False keeps each batch
    size a group of its own (a benchmarking switch)."""
    updater = task["updater"]
    loss = task["loss"]["_target_"]
    if loss not in PER_SAMPLE_LOSSES:
        return None, f"loss._target_={loss} is not known to be a mean of per-sample losses"
    if updater["name"] == "lbfgs":
        return None, "updater=lbfgs trains full batch, one model at a time"
    if task.get("patience") is not None:
        return None, "patience (early stopping) ends each job at an epoch of its own"
    keys = [f"updater.{k}" for k in UPDATER_COLUMNS] + list(DATA_COLUMNS)
    keys += list(BATCH_COLUMNS) if batch_sizes else []
    # each column has its own schedule (training.schedules) and penalty (training.penalties)
    keys += [f"scheduler.{key}" for key in flatten(task.get("scheduler", {}))]
    keys += list(PENALTY_COLUMNS)
    if updater["name"] == "manual":
        return keys, ""
    from logreg_exp.training.stacked import ELEMENTWISE  # torch: after start-up

    target = updater["optimizer"]["_target_"]
    try:
        optimizer_cls = get_class(target)
    except Exception:
        return None, f"updater.optimizer._target_={target} cannot be imported"
    if optimizer_cls not in ELEMENTWISE:
        return None, f"updater.optimizer._target_={target} is not known to update elementwise"
    per_column = ELEMENTWISE[optimizer_cls][1]
    return keys + [f"updater.optimizer.{k}" for k in per_column], ""


@dataclass
class Group:
    """Jobs (by their index in the batch) that train as one, and the keys they differ in."""

    key: str
    jobs: list[int] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)


def group_jobs(
    tasks: Sequence[dict[str, Any]], batch_sizes: bool = True
) -> tuple[list[Group], dict[int, str]]:
    """Groups of two or more jobs of ``tasks`` (resolved configs), in order of their first job;
    and each job that trains alone, with why (one that shares its config with no other job
    has no reason). ``batch_sizes``: as ``column_keys``."""
    groups: dict[str, Group] = {}
    alone: dict[int, str] = {}
    flat = [flatten(task) for task in tasks]
    for i, task in enumerate(tasks):
        keys, reason = column_keys(task, batch_sizes)
        if keys is None:
            alone[i] = reason
            continue
        shared = {k: v for k, v in flat[i].items() if k not in keys}
        key = json.dumps(shared, sort_keys=True, default=str)
        groups.setdefault(key, Group(key)).jobs.append(i)
    split = []
    for group in groups.values():
        sizes = batch_size_sets({tasks[i]["batch_size"] for i in group.jobs})
        for n, same_pass in enumerate(sizes):
            jobs = [i for i in group.jobs if tasks[i]["batch_size"] in same_pass]
            split.append(Group(f"{group.key}#{n}", jobs))
    found = []
    for group in sorted(split, key=lambda g: g.jobs[0]):
        if len(group.jobs) < 2:
            alone[group.jobs[0]] = ""
            continue
        keys = sorted({k for i in group.jobs for k in flat[i]})
        group.differ = [
            k for k in keys if len({json.dumps(flat[i].get(k)) for i in group.jobs}) > 1
        ]
        found.append(group)
    return found, alone


def batch_size_sets(sizes: set[int]) -> list[set[int]]:
    """A group's batch sizes in sets that each train on one pass over the data, in chunks of
    their greatest common divisor g (``stacked.BatchSizes``): n / g forward passes an epoch
    against the sum of n / b that a group a batch size makes. From the smallest, a size
    joins the first set with which g * sum(1 / b) stays at least 1/2 (up to twice the
    forward passes: one pass saves a group's set-up, validation and files), so 8-128 (g 8)
    is one set, 8 and 9 (g 1) two. A size that is no positive int is a set of its own (its
    jobs fail their config check alone)."""
    valid = sorted(s for s in sizes if isinstance(s, int) and s > 0)
    sets: list[set[int]] = []
    for size in valid:
        for n, same_pass in enumerate(sets):
            joined = same_pass | {size}
            if math.gcd(*joined) * sum(1 / b for b in joined) >= 0.5:
                sets[n] = joined
                break
        else:
            sets.append({size})
    return sets + [{size} for size in sizes if size not in valid]


def grouping_lines(
    groups: Sequence[Group], alone: dict[int, str], first: int, total: int
) -> list[str]:
    """How ``group_jobs`` grouped ``total`` jobs numbered from ``first``: a line for all, then
    one a group and one for each reason jobs train alone (the launch logs them, a dry run
    prints them)."""
    lines = [
        f"{total} jobs: {sum(len(g.jobs) for g in groups)} in {len(groups)} "
        f"group{'' if len(groups) == 1 else 's'} trained as one, {len(alone)} alone"
    ]
    for n, group in enumerate(groups, start=1):
        nums = ",".join(str(first + i) for i in group.jobs)
        differ = ", ".join(group.differ) or "nothing"
        lines.append(f"  group {n}: {len(group.jobs)} jobs (#{nums}), differing in {differ}")
    for reason in sorted({r for r in alone.values() if r}):
        jobs = ",".join(str(first + i) for i, r in alone.items() if r == reason)
        lines.append(f"  alone, one at a time (#{jobs}): {reason}")
    return lines


TemplateKey = tuple[tuple[str, str | None], ...]  # each override's key, and a group's choice


class ConfigDeriver:
    """Hydra's ``load_sweep_config``, composing only the first job of each set of override
    keys and config group choices, and deriving the others from it with Hydra's own function
    for applying overrides: jobs that set the same keys to other plain values, and choose the
    same options of the groups they name (``device=cpu``, ``updater=manual``).

    It stands in for the config loader's method, so the sweeper's check of the batch (Hydra's
    sweepers compose every job once before they launch it) and the launch both use it.
    """

    def __init__(self, compose: Any, derive: bool = True) -> None:
        """``derive``: False composes every job with ``compose`` (a benchmarking switch,
        ``hydra.launcher.derive_configs``); the templates are still kept for the set-up."""
        self.compose = compose  # the config loader's own load_sweep_config
        self.derive_configs = derive
        self.parser = OverridesParser.create()
        self.parsed: dict[tuple[str, ...], list[Override]] = {}  # each job's, asked thrice
        # for each tuple of override keys, those that choose a config group (None: the jobs
        # of those keys are not derived)
        self.groups: dict[tuple[str, ...], frozenset[str] | None] = {}
        self.templates: dict[TemplateKey, DictConfig] = {}
        self.checked: dict[tuple[str, ...], DictConfig] = {}
        self.task_templates: dict[TemplateKey, DictConfig] = {}

    def __call__(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """The job's config. The sweeper asks for every job of a batch to check it (Hydra's
        sweepers read nothing of the answer), then the launch asks again: the first answer
        is kept and handed out once more."""
        cfg = self.derive(master_config, sweep_overrides)
        self.checked[tuple(sweep_overrides)] = cfg
        return cfg

    def for_launch(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """The job's config for its launch: the one made for the sweeper's check, if any."""
        checked = self.checked.pop(tuple(sweep_overrides), None)
        return checked if checked is not None else self.derive(master_config, sweep_overrides)

    def derive(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        parsed = self.parse(sweep_overrides)
        key = self.template_key(parsed)
        template = self.templates.get(key) if key and self.derive_configs else None
        if template is None:
            cfg = self.compose(master_config, list(sweep_overrides))
            self.learn(cfg, parsed)
            return cfg
        cfg = copy_config(template)
        apply_overrides(self.values(parsed, key), cfg)
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in parsed]
        set_override_dirname(cfg, parsed)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg

    def parse(self, overrides: Sequence[str]) -> list[Override]:
        """Hydra's parse of a job's overrides, made once (the sweeper's check, the launch,
        the set-up and the task's config each ask)."""
        key = tuple(overrides)
        if key not in self.parsed:
            self.parsed[key] = self.parser.parse_overrides(list(key))
        return self.parsed[key]

    def learn(self, cfg: DictConfig, parsed: Sequence[Override]) -> None:
        """Keep ``cfg``, composed by Hydra, as the template of the jobs of its override keys
        and group choices, where they can be derived from it."""
        keys = self.signature(parsed)
        if keys is None or (keys in self.groups and self.groups[keys] is None):
            return
        groups = self.group_keys(cfg, parsed)
        if groups is None or self.groups.setdefault(keys, groups) != groups:
            self.groups[keys] = None  # a key that is a group in one config, a value in another
            return
        key = self.template_key(parsed)
        assert key is not None
        if key not in self.templates:
            self.templates[key] = copy_config(cfg)

    def template_key(self, parsed: Sequence[Override]) -> TemplateKey | None:
        """The override keys, each group's with its choice: jobs of one key share a template.
        None where the overrides' jobs are not derived (or not known to be yet)."""
        keys = self.signature(parsed)
        groups = self.groups.get(keys) if keys is not None else None
        if groups is None:
            return None
        return tuple(
            (o.key_or_group, str(o.value()) if o.key_or_group in groups else None) for o in parsed
        )

    @staticmethod
    def values(parsed: Sequence[Override], key: TemplateKey) -> list[Override]:
        """The overrides that set values, not group choices (the template has made those)."""
        return [o for o, (_, choice) in zip(parsed, key, strict=True) if choice is None]

    def template_of(self, cfg: DictConfig) -> TemplateKey | None:
        """The key of the template ``cfg`` is derived from (or is), if it has one."""
        key = self.template_key(self.parse(cfg.hydra.overrides.task))
        return key if key in self.templates else None

    @staticmethod
    def signature(parsed: Sequence[Override]) -> tuple[str, ...] | None:
        """The override keys, when every override sets a plain value or chooses a group
        option (no +, ~ or ++, no sweep, no hydra key); else None."""
        for o in parsed:
            plain = o.type == OverrideType.CHANGE and o.value_type == ValueType.ELEMENT
            if not plain or o.is_hydra_override() or o.package is not None:
                return None
            value = o.value()
            if isinstance(value, dict | list) or (isinstance(value, str) and "${" in value):
                return None
        return tuple(o.key_or_group for o in parsed)

    def task_config(self, cfg: DictConfig) -> DictConfig:
        """``cfg`` without its ``hydra`` node, as Hydra's ``run_job`` hands it to the task
        function (a copy). For a derived job, the task part of its template with its own
        values applied: the hydra node, most of the config, is not copied."""
        parsed = self.parse(cfg.hydra.overrides.task)
        key = self.template_key(parsed)
        template = self.templates.get(key) if key and self.derive_configs else None
        if template is None or key is None:
            task = copy.deepcopy(cfg)
        else:
            if key not in self.task_templates:
                self.task_templates[key] = without_hydra(template)
            task = copy_config(self.task_templates[key])
            apply_overrides(self.values(parsed, key), task)
            OmegaConf.copy_cache(from_config=cfg, to_config=task)
        with read_write(task), open_dict(task):
            task.pop("hydra", None)
        return task

    @staticmethod
    def group_keys(cfg: DictConfig, parsed: Sequence[Override]) -> frozenset[str] | None:
        """The override keys that choose a config group in ``cfg``; None unless every other
        key is a leaf of the config."""
        choices = cfg.hydra.runtime.choices
        groups = set()
        for o in parsed:
            key = o.key_or_group
            if key in choices:
                groups.add(key)
                continue
            value = OmegaConf.select(cfg, key, default=None)
            if value is None or isinstance(value, Container):
                return None
        return frozenset(groups)


class VectorizedSweep:
    """What ``hydra/launcher=vectorized`` does; the Hydra plugin class only hands over."""

    def __init__(
        self,
        derive_configs: bool = True,
        lean_setup: bool = True,
        prune: Any = None,
        group_batch_sizes: bool = True,
    ) -> None:
        """Benchmarking switches, each turning one piece of the speed machinery off
        (``python -m benchmarks.bench --ablate``):
        ``derive_configs`` (``ConfigDeriver``), ``lean_setup`` (``JobSetUp``; off: Hydra's
        ``run_job``), ``group_batch_sizes`` (``stacked.BatchSizes``; off: a group a batch
        size). The run dirs' files are the same either way (without ``group_batch_sizes``,
        their numbers to rounding: a minibatch's gradient is summed chunk by chunk).
        ``prune``: successive halving of each group's columns (``training.pruning``)."""
        self.derive_configs = derive_configs
        self.lean_setup = lean_setup
        self.group_batch_sizes = group_batch_sizes
        # checked before the sweep begins (``callback.launcher_problem``)
        self.prune = SuccessiveHalving.from_config(prune)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.set_up: JobSetUp | None = None  # while it sets up a job
        self.locks: dict[int, DirLock] = {}  # grouped jobs' dirs, locked until their group ends

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        loader = hydra_context.config_loader
        if not isinstance(loader.load_sweep_config, ConfigDeriver):
            loader.load_sweep_config = ConfigDeriver(  # type: ignore[method-assign]
                loader.load_sweep_config, derive=self.derive_configs
            )
        self.configs: ConfigDeriver = loader.load_sweep_config

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        files_for_locks(len(job_overrides))
        configs = []
        for i, overrides in enumerate(job_overrides):
            cfg = self.configs.for_launch(self.config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.num = initial_job_idx + i
                cfg.hydra.job.id = str(cfg.hydra.job.num)
            configs.append(cfg)
        tasks = [task_container(cfg) for cfg in configs]
        if tasks:
            import_heavy_modules(OmegaConf.create(tasks[0]), also=["logreg_exp.group_run"])
        groups, alone = group_jobs(tasks, self.group_batch_sizes)
        lines = grouping_lines(groups, alone, initial_job_idx, len(configs))
        log.info("Launching %s", lines[0])
        for line in lines[1:]:
            log.info("%s", line)

        swept = keys_the_sweep_varies(Path(self.config.hydra.sweep.dir), self.config.hydra.sweeper)

        returns: list[JobReturn | None] = [None] * len(configs)
        members: dict[int, Any] = {}
        stopped: EndProcess | None = None
        in_group = {i for g in groups for i in g.jobs}
        start = time.perf_counter()
        self.set_up = None
        for i, cfg in enumerate(configs):
            task = self.task_function
            if i in in_group:
                task = self.prepare(members, i, swept, tasks[i])
            template = self.configs.template_of(cfg)
            lean = self.lean_setup and i in in_group and template is not None
            if lean and JobSetUp.can_set_up(cfg):
                if self.set_up is None:  # the jobs' console lines as Hydra configures them
                    self.configure_console_logging()
                    handlers = logging.getLogger().handlers
                    self.set_up = JobSetUp(
                        self.hydra_context.callbacks, self.configs.task_config, handlers
                    )
                returns[i] = self.set_up(cfg, template, task)
                continue
            try:
                returns[i] = run_job(
                    hydra_context=self.hydra_context,
                    task_function=task,
                    config=cfg,
                    job_dir_key="hydra.sweep.dir",
                    job_subdir_key="hydra.sweep.subdir",
                )
            except EndProcess as end:  # a job alone was stopped (Ctrl-C): so is the sweep
                stopped = end
                break
            finally:
                self.set_up = None  # run_job configured logging anew
        self.set_up = None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        if groups:
            log.info(
                "set up %d grouped jobs in %.2f s (dirs, .hydra/, logs, config checks)",
                len(in_group), time.perf_counter() - start,
            )  # fmt: skip
        try:  # after a stop, the jobs set up stop at once, each with its files
            self.train_groups(groups, members, returns)
        finally:
            self.release(list(self.locks))
        if stopped is not None:
            raise stopped
        assert all(r is not None for r in returns)
        return returns  # type: ignore[return-value]

    def release(self, jobs: Sequence[int]) -> None:
        """Unlock the dirs of ``jobs`` (their group ended): runs may claim them again."""
        for i in jobs:
            lock = self.locks.pop(i, None)
            if lock is not None:
                lock.release()

    def prepare(
        self,
        members: dict[int, Any],
        i: int,
        swept: list[str] | None,
        resolved: dict[str, Any],
    ) -> TaskFunction:
        """The task function Hydra runs for a grouped job: check its config and keep it for
        its group (with the keys its sweep varies, and it resolved as plain data); a
        bad value fails the job alone, as in any sweep."""

        def prepare_job(task_cfg: DictConfig) -> float | None:
            from logreg_exp.group_run import GroupMember
            from logreg_exp.outcomes import failed  # the outcome rules of any job
            from logreg_exp.training.updaters import build_updater

            hydra_cfg = HydraConfig.get()
            job_dir = Path(hydra_cfg.runtime.output_dir)
            try:  # locked as a single run's dir, until the group has written its files
                self.locks[i] = lock_dir(job_dir, "job dir")
                settings = validated(task_cfg)
                updater = build_updater([dummy_parameter()], settings.updater)
            except ConfigError as err:
                self.release([i])
                return failed(err, task_cfg, job_dir, in_sweep=True, wall_s=0.0).value
            members[i] = GroupMember(
                task_cfg,
                settings,
                updater,
                job_dir,
                dict(hydra_cfg.runtime.choices),
                swept,
                *(self.set_up.log_file if self.set_up else log_file_of(hydra_cfg)),
                resolved,
                self.set_up.config_text if self.set_up else None,
            )
            return None

        return prepare_job

    def train_groups(
        self,
        groups: Sequence[Group],
        members: dict[int, Any],
        returns: list[JobReturn | None],
    ) -> None:
        """Train each group's valid jobs as one; fill in their values for the sweeper."""
        from logreg_exp.group_run import run_job_group
        from logreg_exp.outcomes import end_as

        assert self.config is not None
        threads = default_threads(self.config.hydra.launcher)
        interrupted = False
        for group in groups:
            jobs = [i for i in group.jobs if i in members]
            if not jobs:
                continue
            self.configure_console_logging()
            try:
                outcomes = run_job_group([members[i] for i in jobs], threads, self.prune)
            finally:
                self.release(jobs)
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            for i, outcome in zip(jobs, outcomes, strict=True):
                ret = returns[i]
                assert ret is not None
                ret.status = JobStatus.COMPLETED
                ret.return_value = outcome.value
                interrupted |= outcome.status is Status.INTERRUPTED
            if interrupted:
                end_as(outcomes[0], in_sweep=True)  # exit code 130, as the basic launcher

    def configure_console_logging(self) -> None:
        """The jobs' console format for the group's own lines, without any job's log file."""
        assert self.config is not None
        job_logging = OmegaConf.to_container(self.config.hydra.job_logging, resolve=False)
        assert isinstance(job_logging, dict)
        job_logging["handlers"].pop("file", None)
        root = job_logging.get("root", {})
        root["handlers"] = [h for h in root.get("handlers", []) if h != "file"]
        configure_log(OmegaConf.create(job_logging), self.config.hydra.verbose)


def files_for_locks(jobs: int) -> None:
    """Let the process hold a lock file open for each of ``jobs`` (the grouped jobs' dirs
    stay locked while their group runs), raising its soft open-file limit up to the hard one
    where it is lower."""
    try:
        import resource
    except ImportError:  # not on POSIX: no locks held
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = jobs + 256  # and what torch, logging and TensorBoard hold
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def copy_config(cfg: DictConfig) -> DictConfig:
    """A deep copy of ``cfg``: through pickle, which OmegaConf supports and which copies a
    config about three times faster than its ``__deepcopy__``; by ``deepcopy`` where
    something in it does not pickle."""
    try:
        return pickle.loads(pickle.dumps(cfg, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        return copy.deepcopy(cfg)


def task_container(cfg: DictConfig) -> dict[str, Any]:
    """A job's own config (no hydra node), resolved, as plain data, for grouping: each key's
    node converted where it is, not a copy of the config less ``hydra``."""
    container: dict[str, Any] = {}
    for key in cfg:
        if key == "hydra":
            continue
        node = child_container(cfg, key)
        value = node if node is not None else cfg[key]
        if isinstance(value, Container):
            container[str(key)] = OmegaConf.to_container(value, resolve=True, enum_to_str=True)
        else:
            container[str(key)] = value.name if isinstance(value, Enum) else value
    return container


def dummy_parameter() -> Any:
    import torch

    return torch.zeros(1, requires_grad=True)
