"""The Hydra entrypoint: ``python -m logreg_exp [overrides]`` (or ``logreg-exp``).

It knows the config, the output dir and how a job ends, not tensors: the work is in
``runner.run``. A user's mistake ends a single run with one line on stderr and exit code 1
(``HYDRA_FULL_ERROR=1`` shows the traceback); in a sweep it fails that job alone.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig

from logreg_exp.config import register_configs
from logreg_exp.errors import ConfigError
from logreg_exp.launchers import hidden_gpu_warning, missing_plugin
from logreg_exp.results import Monitor, Status, failure_metrics, write_metrics
from logreg_exp.startup import long_lived_objects
from logreg_exp.threads import default_threads

log = logging.getLogger("logreg_exp")

register_configs()


class RunFailed(CompactHydraException):
    """Hydra prints this exception's message alone, without a traceback."""


def record_failure(run_dir: Path, cfg: DictConfig, reason: str, start: float) -> float:
    """Mark a sweep job failed in its ``metrics.json``; return the value that ranks it last."""
    monitor = Monitor(cfg.monitor)
    write_metrics(run_dir, failure_metrics(monitor, reason, time.perf_counter() - start))
    return monitor.worst


@hydra.main(version_base="1.3", config_path="pkg://logreg_exp.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one job in its Hydra output dir; return the best monitored value for sweepers."""
    start = time.perf_counter()
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    # The heavy imports, with the collector paused, here where no data are on the stack.
    with long_lived_objects():
        from logreg_exp.datasets import features_before_loading, import_what_loading_imports
        from logreg_exp.plots import DrawingProcess, import_matplotlib, matplotlib_installed

        # A single run draws its picture in a process started now, which imports matplotlib
        # while this one imports torch. A sweep's jobs draw in the process that runs them,
        # which imports it once for all of them (joblib's workers cannot spawn processes).
        drawing = DrawingProcess()
        if features_before_loading(cfg.dataset) in (2, None) and matplotlib_installed():
            if in_sweep:
                import_matplotlib()
            else:
                drawing.start()

        from logreg_exp.runner import run
        from logreg_exp.updaters import import_what_building_imports

        import_what_building_imports(cfg.updater)
        import_what_loading_imports(cfg.dataset)

    warning = hidden_gpu_warning(hydra_cfg.launcher, cfg.device.name)
    if warning:
        log.warning(warning)
    try:
        outcome = run(cfg, run_dir, default_threads(hydra_cfg.launcher), drawing)
    except ConfigError as err:
        if not in_sweep:
            raise RunFailed(f"error: {err}") from None
        log.error("error: %s", err)
        return record_failure(run_dir, cfg, str(err), start)
    except Exception as err:
        if not in_sweep or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.exception("job failed")
        return record_failure(run_dir, cfg, f"{type(err).__name__}: {err}", start)
    finally:
        drawing.close()
    if outcome.status is Status.INTERRUPTED:
        raise KeyboardInterrupt  # stops a sweep too; run_cli turns it into exit code 130
    if outcome.status is Status.DIVERGED and not in_sweep:
        raise RunFailed(f"error: {outcome.message}")
    return outcome.value


def run_cli() -> None:
    """``main`` with Ctrl-C turned into a one-line note and the shell's exit code 130, after
    checking that the launcher or sweeper the command line chooses is installed."""
    problem = missing_plugin(sys.argv[1:])
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(1)
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
