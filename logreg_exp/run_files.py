"""The name of every file a run dir or a sweep dir holds, each named here once: the modules
that write and read a file import its name from here and keep how it is written and read
(the owner is named beside each). ``output_dirs`` reads these names to tell what a dir holds."""

from __future__ import annotations

# A run's dir: its results, in the order a run writes them (metrics.json last).
PROVENANCE_FILE = "provenance.json"  # which code made the run, at its start and end (provenance)
PROGRESS_FILE = "last.pt"  # what an unfinished run resumes from (training.checkpoints)
PREPROCESSING_FILE = "preprocessing.json"  # how to prepare new data (data.preprocessing)
CHECKPOINT_FILE = "best.pt"  # the best epoch's model (training.checkpoints)
DECISION_BOUNDARY_FILE = "decision_boundary.png"  # the picture (tracking.plots)
METRICS_FILE = "metrics.json"  # how the run ended and its best epoch (results)
EVALUATION_FILE = "evaluation.json"  # python -m logreg_exp.evaluate's (results)
# its pictures, beside that JSON (evaluate): evaluation_confusion_matrix_test.png ...
EVALUATION_PICTURE = "{stem}_{picture}_{split}.png"
# TensorBoard's event files: events.out.tfevents.<seconds>.<host>.<pid>.<n>[suffix]
EVENTS_PREFIX = "events.out.tfevents."  # (tracking.events)
PICTURE_EVENTS_SUFFIX = ".picture"  # an event file that holds one picture (tracking.images)

# What Hydra writes into a run's dir (``hydra.output_subdir``) and how it names the log file.
HYDRA_DIR = ".hydra"
CONFIG_YAML = "config.yaml"  # the run's config
HYDRA_YAML = "hydra.yaml"  # Hydra's own config for the run
OVERRIDES_YAML = "overrides.yaml"  # the command line's overrides
HYDRA_FILES = (CONFIG_YAML, HYDRA_YAML, OVERRIDES_YAML)  # in the order Hydra writes them
# hydra.job_logging.handlers.file.filename, as Hydra's default job logging sets it
DEFAULT_LOG_FILE = "${hydra.runtime.output_dir}/${hydra.job.name}.log"


def log_file_name(job_name: str) -> str:
    """The run's log file in its dir, as Hydra's default job logging names it."""
    return f"{job_name}.log"


# A sweep's dir, besides its job dirs.
MULTIRUN_YAML = "multirun.yaml"  # Hydra's record of the sweep
PLAN_FILE = "sweep_plan.json"  # the overrides of every job, in job order (sweeps.callback)
SUMMARY_CSV = "summary.csv"  # (sweeps.summary)
SUMMARY_MD = "summary.md"  # (sweeps.summary)
SETTINGS_CSV = "summary_settings.csv"  # each setting over its seeds and folds (sweeps.summary)
SWEEP_PNG = "sweep.png"  # (sweeps.plots)
SETTINGS_DIR = "by_setting"  # each setting's HParams row, a dir each (sweeps.setting_rows)
SEARCH_FILE = "optimization_results.yaml"  # a search's verdict (hydra-optuna-sweeper's)
SUBMITIT_DIR = ".submitit"  # submitit's logs of a cluster sweep

# A run's or a sweep's dir, while a run or sweep holds it (output_dirs).
LOCK_FILE = ".logreg_exp.lock"
