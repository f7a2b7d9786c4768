"""Hydra's ``run_job`` for the jobs of a group (``hydra/launcher=vectorized``), without what
costs most there when a sweep has hundreds of jobs.

A job gets what Hydra's ``run_job`` gives it, in the same order: its dir
(``hydra.sweep.dir``/``hydra.sweep.subdir``) as ``hydra.runtime.output_dir``, ``HydraConfig``
set to its config, ``.hydra/`` (config.yaml, hydra.yaml, overrides.yaml, by
``OmegaConf.to_yaml`` as Hydra writes them), its log file, ``hydra.job.env_set``, the
callbacks' ``on_job_start``, the task function called with its config less the ``hydra``
node, and ``on_job_end``. What differs is how: the task's config is derived from its template
(``ConfigDeriver.task_config``) rather than copied whole, ``HydraConfig`` shows the job's own
hydra node rather than a copy of it (``set_hydra_config``), and the log file is a handler
beside the console's rather than logging configured anew. A job without a template (its
overrides add or delete keys, or set hydra's), or that sets ``hydra.job.chdir``, goes through
Hydra's ``run_job``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, env_override
from hydra.types import TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from logreg_exp.hydra_compat import show_hydra_config
from logreg_exp.run_files import DEFAULT_LOG_FILE, HYDRA_FILES, log_file_name


def log_file_of(hydra_cfg: Any) -> tuple[Path, str]:
    """The job's log file and its line format, as ``hydra.job_logging`` configures them."""
    logging_cfg = hydra_cfg.job_logging
    file_handler = logging_cfg.handlers.get("file", {})
    default = Path(hydra_cfg.runtime.output_dir) / log_file_name(hydra_cfg.job.name)
    line_format = logging_cfg.formatters[file_handler.get("formatter", "simple")].format
    return Path(file_handler.get("filename", default)), line_format


def resolved_text(config_yaml: str) -> str | None:
    """``OmegaConf.to_yaml(task_cfg, resolve=True)``, known from the job's config.yaml text
    (``to_yaml(task_cfg)``) where that interpolates nothing: the two are then the same text,
    and the group's jobs do not dump their configs twice (TensorBoard's config text)."""
    return None if "${" in config_yaml else config_yaml


def set_hydra_config(cfg: DictConfig) -> None:
    """``HydraConfig.instance().set_config(cfg)``, without its deep copy of ``cfg.hydra``
    (a third of a grouped job's set-up; ``hydra_compat.show_hydra_config``). Each job's
    ``cfg`` is a config of its own (``ConfigDeriver``), so nothing else holds the node."""
    show_hydra_config(cfg)


class JobSetUp:
    """Sets up and runs (with a task function that only checks and keeps its config) the
    jobs of a group, one at a time, as Hydra's ``run_job`` would."""

    def __init__(
        self,
        callbacks: Any,
        task_config: Callable[[DictConfig], DictConfig],
        console: Sequence[logging.Handler],
    ) -> None:
        self.callbacks = callbacks
        self.task_config = task_config
        self.console = list(console)
        self.log_file: tuple[Path, str] | None = None  # the job's, and its line format
        self.config_text: str | None = None  # the job's config resolved, as YAML, if known
        # by template: the line format, where the file is Hydra's default (else None)
        self.log_formats: dict[Any, str | None] = {}

    @staticmethod
    def can_set_up(cfg: DictConfig) -> bool:
        """Whether this set-up mirrors Hydra's for ``cfg`` (a config derived from a template,
        ``ConfigDeriver``): run in the launching process's working dir, its subdir naming no
        ``${hydra:...}`` (it is read from the job's own config)."""
        subdir = OmegaConf.to_container(cfg.hydra.sweep)["subdir"]  # type: ignore[index]
        return not cfg.hydra.job.chdir and "${hydra:" not in str(subdir)

    def __call__(self, cfg: DictConfig, template: Any, task_function: TaskFunction) -> JobReturn:
        """Set up and run the job ``cfg``, derived from the template ``template`` (its key:
        the jobs of one template share their log file's format)."""
        output_dir = Path(str(cfg.hydra.sweep.dir)) / str(
            OmegaConf.select(cfg, "hydra.sweep.subdir")
        )
        with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
            cfg.hydra.runtime.output_dir = os.path.abspath(output_dir)
        hydra_config = HydraConfig.instance()
        previous = hydra_config.cfg
        set_hydra_config(cfg)
        try:
            hydra_cfg = hydra_config.cfg
            assert isinstance(hydra_cfg, DictConfig)
            self.config_text = None
            task_cfg = self.task_config(cfg)
            ret = JobReturn(
                overrides=list(cfg.hydra.overrides.task),
                cfg=task_cfg,
                hydra_cfg=hydra_cfg,
                working_dir=os.getcwd(),
            )
            self.write_hydra_files(cfg, hydra_cfg, task_cfg, output_dir)
            from logreg_exp.group_run import logging_only_to  # torch: imported by now

            self.log_file = self.log_file_for(cfg, template)
            with logging_only_to(*self.log_file, also=self.console):
                with env_override(dict(cfg.hydra.job.env_set)):
                    self.callbacks.on_job_start(config=cfg, task_function=task_function)
                    try:
                        ret.return_value = task_function(task_cfg)
                        ret.status = JobStatus.COMPLETED
                    except Exception as e:
                        ret.return_value = e
                        ret.status = JobStatus.FAILED
                ret.task_name = JobRuntime.instance().get("name")
                self.callbacks.on_job_end(config=cfg, job_return=ret)
            return ret
        finally:
            hydra_config.cfg = previous

    def log_file_for(self, cfg: DictConfig, template: Any) -> tuple[Path, str]:
        """``log_file_of(cfg.hydra)``; where the template's ``job_logging`` names the file as
        Hydra's default does, with a format that interpolates nothing, read once for all
        the template's jobs (resolving it took a tenth of a job's set-up)."""
        if template not in self.log_formats:
            raw = OmegaConf.to_container(cfg.hydra.job_logging, resolve=False)
            assert isinstance(raw, dict)
            handler = (raw.get("handlers") or {}).get("file") or {}
            formatter = (raw.get("formatters") or {}).get(handler.get("formatter", "simple"))
            line_format = (formatter or {}).get("format")
            plain = handler.get("filename", DEFAULT_LOG_FILE) == DEFAULT_LOG_FILE
            if plain and isinstance(line_format, str) and "${" not in line_format:
                self.log_formats[template] = line_format
            else:
                self.log_formats[template] = None
        line_format = self.log_formats[template]
        if line_format is None:
            return log_file_of(cfg.hydra)
        runtime, job = cfg.hydra.runtime, cfg.hydra.job
        return Path(str(runtime.output_dir)) / log_file_name(job.name), line_format

    def write_hydra_files(
        self,
        cfg: DictConfig,
        hydra_cfg: DictConfig,
        task_cfg: DictConfig,
        output_dir: Path,
    ) -> None:
        """``.hydra/`` (``hydra.output_subdir``) as Hydra writes it, where it is set."""
        output_dir.mkdir(parents=True, exist_ok=True)
        if cfg.hydra.output_subdir is None:
            return
        texts = [OmegaConf.to_yaml(n) for n in (task_cfg, hydra_cfg, cfg.hydra.overrides.task)]
        self.config_text = resolved_text(texts[0])
        hydra_dir = output_dir / str(cfg.hydra.output_subdir)
        hydra_dir.mkdir(parents=True, exist_ok=True)
        for name, text in zip(HYDRA_FILES, texts, strict=True):
            with open(hydra_dir / name, "w", encoding="utf-8") as file:
                file.write(text)
