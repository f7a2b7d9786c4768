"""Each setting of a sweep repeated over seeds or folds (``aggregate``) as a row of
TensorBoard's HParams table, beside its jobs' rows: an event file of its own in
``by_setting/NNNN_<setting>/`` of the sweep dir, holding the setting's swept values and
``runs`` (how many completed) as hparams, and as metrics each result's mean under the tag
its jobs use (``hparams/best_val_loss``), its standard deviation (``..._std``) and the half
width of its 95% interval (``..._ci95``).

Written from the same files as the summary, and written again whole each time (the dir of an
earlier summary is replaced), so the rows always match ``summary_settings.csv``. TensorBoard
is imported only when there is a row to write: the sweep's process starts without it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from logreg_exp.run_files import SETTINGS_DIR
from logreg_exp.sweeps.aggregate import AGGREGATED_KEYS, Setting
from logreg_exp.sweeps.swept import number, override_values

MAX_NAME = 120  # a setting's dir name, cut (a file name may have 255 bytes)


def setting_dir_name(index: int, setting: Setting) -> str:
    """``0003_updater.lr=0.1,batch_size=8``: its place among the settings by first job, then
    its overrides, with what a dir name cannot hold replaced."""
    text = ",".join(setting.varied) or "all_runs"
    return f"{index:04d}_" + re.sub(r"[/\\\x00]", "_", text)[:MAX_NAME]


def setting_hparams(setting: Setting, repeats: Sequence[str]) -> dict[str, float | str]:
    """The setting's values of the keys the settings differ in as hparams (numbers where they
    are), as its jobs' rows have them, and how many completed runs its row averages over
    which keys."""
    values: dict[str, float | str] = {}
    for key, text in override_values(setting.varied).items():
        value = number(text)
        values[key] = text if value is None else value
    values["runs"] = float(setting.completed)
    values["over"] = " and ".join(repeats)
    return values


def write_setting_rows(sweep_dir: Path, settings: Sequence[Setting], repeats: Sequence[str]) -> int:
    """Replace ``by_setting/`` in ``sweep_dir`` with a row per setting of ``settings``; none
    (and the dir removed) for a sweep without repeats. The number of rows written."""
    root = Path(sweep_dir) / SETTINGS_DIR
    shutil.rmtree(root, ignore_errors=True)
    if not settings:
        return 0
    from logreg_exp.tracking.events import EventFile, scalar_summary, session_end, session_start

    order = sorted(
        settings, key=lambda s: min((j.num for j in s.jobs if j.num is not None), default=0)
    )
    for index, setting in enumerate(order):
        events = EventFile(root / setting_dir_name(index, setting))
        try:
            events.add_summary(session_start(setting_hparams(setting, repeats)))
            for key in AGGREGATED_KEYS:
                stats = setting.stats.get(key)
                if stats is None:
                    continue
                events.add_summary(scalar_summary(f"hparams/{key}", stats.mean), 0)
                if stats.std is not None and stats.half_width is not None:
                    events.add_summary(scalar_summary(f"hparams/{key}_std", stats.std), 0)
                    events.add_summary(scalar_summary(f"hparams/{key}_ci95", stats.half_width), 0)
            events.add_summary(session_end(setting.completed > 0))
        finally:
            events.close()
    return len(order)
