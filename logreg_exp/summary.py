"""``python -m logreg_exp.summary SWEEP_DIR [--monitor val_loss|val_acc]``: write (again) the
summary and the picture of any sweep dir, whatever launcher ran it, from the files its jobs
left. The work is in ``sweeps.summary`` and ``sweeps.plots``."""

from __future__ import annotations

from logreg_exp.training.interrupts import catch_stop_signals_early

if __name__ == "__main__":  # before the imports below: a Ctrl-C in them is one line
    catch_stop_signals_early()

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from logreg_exp.errors import ConfigError, run_command
from logreg_exp.files import display_path, writing
from logreg_exp.output_dirs import RUN_RESULTS, has_any
from logreg_exp.results import Monitor
from logreg_exp.run_files import HYDRA_DIR, HYDRA_YAML, SUMMARY_CSV, SUMMARY_MD
from logreg_exp.sweeps.plots import draw_sweep
from logreg_exp.sweeps.summary import MONITORS, collect_jobs, sweep_monitor, write_summary


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
    args = parser.parse_args(argv)
    sweep_dir: Path = args.sweep_dir

    def body() -> int:
        if not sweep_dir.is_dir():
            raise ConfigError(f"{sweep_dir}: no such directory")
        if (sweep_dir / HYDRA_DIR / HYDRA_YAML).is_file() or has_any(sweep_dir, RUN_RESULTS):
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
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
