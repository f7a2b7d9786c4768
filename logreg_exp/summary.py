"""``python -m logreg_exp.summary SWEEP_DIR [--monitor val_loss|val_acc] [--mlflow [URI]]``:
write (again) the summary and the picture of any sweep dir, whatever launcher ran it, from the
files its jobs left; with ``--mlflow``, log the sweep (or a single run's dir) to MLflow too.
The work is in ``sweeps.summary``, ``sweeps.plots`` and ``tracking.mlflow_store``."""

from __future__ import annotations

from logreg_exp.training.interrupts import catch_stop_signals_early

if __name__ == "__main__":  # before the imports below: a Ctrl-C in them is one line
    catch_stop_signals_early()

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from logreg_exp.errors import ConfigError, run_command
from logreg_exp.files import display_path, writing
from logreg_exp.output_dirs import RUN_RESULTS, has_any
from logreg_exp.results import Monitor
from logreg_exp.run_files import CONFIG_YAML, HYDRA_DIR, HYDRA_YAML, SUMMARY_CSV, SUMMARY_MD
from logreg_exp.sweeps.plots import draw_sweep
from logreg_exp.sweeps.summary import (
    MONITORS,
    collect_jobs,
    load_yaml,
    sweep_monitor,
    write_summary,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m logreg_exp.summary",
        description=(
            "Write summary.csv and summary.md, and draw sweep.png, for a finished (or "
            "interrupted) sweep."
        ),
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep's dir (hydra.sweep.dir)")
    parser.add_argument(
        "--monitor",
        type=Monitor,
        choices=list(Monitor),
        metavar="{" + ",".join(MONITORS) + "}",
        help="metric to sort and draw by (default: the one the jobs monitored)",
    )
    parser.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="also log it to MLflow: to URI, else where its runs' tracker.tracking_uri says, "
        "else $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db; a run dir is logged "
        "as one run",
    )
    args = parser.parse_args(argv)
    sweep_dir: Path = args.sweep_dir
    if args.mlflow is not None:  # what the tracker says of the store, on stderr
        logging.basicConfig(level=logging.INFO, format="%(message)s")

    def body() -> int:
        if not sweep_dir.is_dir():
            raise ConfigError(f"{sweep_dir}: no such directory")
        is_run = (sweep_dir / HYDRA_DIR / HYDRA_YAML).is_file() or has_any(sweep_dir, RUN_RESULTS)
        if is_run and args.mlflow is not None:
            from logreg_exp.tracking.mlflow_store import track_run

            return 0 if track_run(sweep_dir, tracker_node([sweep_dir], args.mlflow)) else 1
        if is_run:
            raise ConfigError(
                f"{sweep_dir} is a run's dir, not a sweep's: summary reads a sweep dir "
                f"(hydra.sweep.dir); for one run, python -m logreg_exp.evaluate {sweep_dir}"
            )
        jobs = collect_jobs(sweep_dir)
        if not jobs:
            raise ConfigError(f"{sweep_dir}: no sweep jobs in it (no */.hydra/hydra.yaml below it)")
        for job in jobs:
            for damage in job.damaged:
                print(f"warning: {damage}; the job's row goes without it", file=sys.stderr)
        monitor = args.monitor or sweep_monitor(jobs)
        with writing(f"the summary in {display_path(sweep_dir)}"):
            text = write_summary(sweep_dir, monitor, jobs)
        print(text, end="")
        print(f"wrote {display_path(sweep_dir / SUMMARY_CSV)} and {SUMMARY_MD}")
        print(draw_sweep(sweep_dir, jobs, monitor))
        if args.mlflow is not None:
            from logreg_exp.tracking.mlflow_store import track_sweep  # imports tensorboard's

            node = tracker_node([job.dir for job in jobs if job.dir is not None], args.mlflow)
            return 0 if track_sweep(sweep_dir, jobs, node) else 1
        return 0

    return run_command(body)


def tracker_node(run_dirs: list[Path], uri: str) -> dict[str, Any]:
    """The ``tracker`` settings to log with: the first run's, where it had ``tracker=mlflow``
    (its URI replaced by ``uri`` where given), else MLflow's defaults with ``uri``."""
    for run_dir in run_dirs[:1]:
        saved = load_yaml(run_dir / HYDRA_DIR / CONFIG_YAML)
        node = saved.get("tracker") if isinstance(saved, dict) else None
        if isinstance(node, dict) and node.get("name") == "mlflow":
            return {**node, "tracking_uri": uri or node.get("tracking_uri")}
    return {"name": "mlflow", "tracking_uri": uri or None}


if __name__ == "__main__":
    sys.exit(main())
