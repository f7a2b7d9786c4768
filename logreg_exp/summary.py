"""``python -m logreg_exp.summary SWEEP_DIR [--monitor val_loss|val_acc]``: write (again) the
summary and the picture of any sweep dir, whatever launcher ran it, from the files its jobs
left. The work is in ``sweeps.summary`` and ``sweeps.plots``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from logreg_exp.files import display_path
from logreg_exp.results import Monitor
from logreg_exp.run_files import SUMMARY_CSV, SUMMARY_MD
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
    if not sweep_dir.is_dir():
        print(f"error: {sweep_dir}: no such directory", file=sys.stderr)
        return 1
    jobs = collect_jobs(sweep_dir)
    if not jobs:
        print(
            f"error: {sweep_dir}: no sweep jobs in it (no */.hydra/hydra.yaml below it)",
            file=sys.stderr,
        )
        return 1
    monitor = args.monitor or sweep_monitor(jobs)
    try:
        text = write_summary(sweep_dir, monitor, jobs)
        print(text, end="")
        print(f"wrote {display_path(sweep_dir / SUMMARY_CSV)} and {SUMMARY_MD}")
        print(draw_sweep(sweep_dir, jobs, monitor))
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
