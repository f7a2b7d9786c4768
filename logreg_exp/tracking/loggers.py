"""Where a run's numbers go: TensorBoard event files (curves, HParams, config, pictures) and
one console line per epoch.

A run's hyperparameters for the HParams tab are named by the override that sets them
(``updater.lr``, ``batch_size``, ``loss._target_``, and config group choices such as
``loss``), so a row of the table can be rerun by typing its names and values. A single run
records its whole config there; a sweep's job, only what its sweep varies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams as hparams_summaries
from torch.utils.tensorboard.summary import scalar, text

from logreg_exp.config import flatten
from logreg_exp.output_dirs import DIR_KEYS
from logreg_exp.results import Status
from logreg_exp.run_files import EVENTS_PREFIX
from logreg_exp.tracking.events import EventFile, session_end
from logreg_exp.tracking.images import Picture, image_summary
from logreg_exp.training.loop import EpochMetrics

log = logging.getLogger(__name__)

HParamValue = int | float | str | bool

# Keys that say how hydra.utils.instantiate calls a _target_, not what the run is.
INSTANTIATE_KEYS = frozenset({"_partial_", "_recursive_", "_convert_"})
# Top-level keys that say how the run treats its dir, what its config may call, where it is
# tracked and whether it only shows its plan, not what the run is: no HParams column.
NOT_HPARAMS = frozenset({*DIR_KEYS, "allow_targets", "tracker", "dry_run"})


def hparam_value(value: Any) -> HParamValue:
    """``value`` as one of the types TensorBoard's HParams accept, spelt as in an override.

    Booleans become ``"true"``/``"false"``: ``torch.utils.tensorboard.summary.hparams`` would
    otherwise store them as the numbers 1.0 and 0.0. ``None`` becomes ``"null"`` (it would be
    dropped), lists and the like their JSON text.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float | str):
        return value
    return json.dumps(value)


def flat_hparams(node: dict[str, Any]) -> dict[str, HParamValue]:
    """Leaves of a nested dict under dotted keys as HParams values, instantiate plumbing
    left out."""
    return {key: hparam_value(v) for key, v in flatten(node, omit=INSTANTIATE_KEYS).items()}


def run_hparams(
    cfg: DictConfig | dict[str, Any],
    choices: Mapping[str, Any] | None = None,
    swept: Collection[str] | None = None,
) -> dict[str, HParamValue]:
    """The resolved config (``cfg``, or it resolved as plain data) flattened, sorted by
    name, plus each config group option it was composed from (Hydra's ``runtime.choices``)
    that its ``<group>.name`` does not already say (``loss: bce_logits``, not ``updater:
    optim``). Hydra's own groups (``hydra/...``) and the schemas each option pulls in
    (``schema/updater@updater``) are left out: they follow from the options.

    In a sweep, ``swept`` holds the override keys it varies, and only those hparams are kept:
    each swept key, and for a swept config group its choice (``loss``, or ``updater.name``).
    The rest has one value in every job of the sweep, and TensorBoard's HParams table shows
    the first five hparams it knows as columns, those that differ between runs first, then
    constant ones by name; a sweep of one or two keys would fill the rest with those. Each
    run's whole config stays in its Text tab (``config``) and ``.hydra/config.yaml``. Where
    no swept key is an hparam (a sweep over ``hydra/launcher``), all are kept."""
    container = cfg
    if not isinstance(container, dict):  # as OmegaConf.to_yaml(cfg, resolve=True) has it
        container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(container, dict)
    hparams = flat_hparams({k: v for k, v in container.items() if k not in NOT_HPARAMS})
    for group, choice in (choices or {}).items():
        if group.startswith(("hydra/", "schema")) or group in NOT_HPARAMS:
            continue
        if hparams.get(f"{group}.name") != hparam_value(choice):
            hparams[group] = hparam_value(choice)
    if swept:
        varied = {
            name: value
            for name, value in hparams.items()
            if name in swept or name.removesuffix(".name") in swept
        }
        hparams = varied or hparams
    return dict(sorted(hparams.items()))


SCALAR_TAGS = {
    "train/loss": "train_loss",
    "train/acc": "train_acc",
    "val/loss": "val_loss",
    "val/acc": "val_acc",
}

# The HParams tab's result columns: scalar tags written once, at the end of a run, from the
# keys of metrics.json, each where the run has a value: the first five in every run that
# finished an epoch; the test split's where it has one (test_loss, test_acc), and the exact
# population accuracy of the best model for gaussian2d, in a run that completed.
HPARAM_METRIC_TAGS = {
    "hparams/best_val_loss": "best_val_loss",
    "hparams/best_val_acc": "best_val_acc",
    "hparams/final_val_loss": "final_val_loss",
    "hparams/final_val_acc": "final_val_acc",
    "hparams/best_epoch": "best_epoch",
    "hparams/test_loss": "test_loss",
    "hparams/test_acc": "test_acc",
    "hparams/test_population_acc": "test_population_acc",
}


class TensorBoardLogger:
    """Scalars ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc`` at steps 1..epochs,
    the run's hparams and result metrics, the config as text, and pictures.

    Everything goes into one event file directly in the job's output dir, so TensorBoard's
    run list names the run by that dir and the HParams row of a run links to its curves.

    ``replace``: the dir holds the event files of a resumed run's earlier attempts, which this
    file takes the place of. The caller logs again what the run keeps of
    that attempt, then calls ``drop_replaced``, and the dir holds one file, as if the run had
    never stopped: TensorBoard would otherwise show each step the attempts share twice, and
    the first attempt's HParams session as well.
    """

    def __init__(self, log_dir: Path, replace: bool = False) -> None:
        self.replaced = sorted(Path(log_dir).glob(f"{EVENTS_PREFIX}*")) if replace else []
        self.events = EventFile(log_dir)
        self.path = self.events.path

    def drop_replaced(self) -> None:
        """Delete the earlier attempt's event files, once this one holds what they should."""
        self.events.flush()
        for path in self.replaced:
            path.unlink(missing_ok=True)
        self.replaced = []

    def log_epoch(self, metrics: EpochMetrics, is_best: bool) -> None:
        for tag, attr in SCALAR_TAGS.items():
            self.events.add_summary(scalar(tag, getattr(metrics, attr)), metrics.epoch)
        for name, value in metrics.extra.items():
            self.events.add_summary(scalar(f"val/{name}", value), metrics.epoch)
        self.events.flush()  # TensorBoard shows the run as it trains

    def log_config(self, yaml_text: str) -> None:
        """The resolved config under the Text tab's ``config`` tag, as a YAML code block."""
        self.events.add_summary(text("config", f"```yaml\n{yaml_text}```"))

    def log_provenance(self, json_text: str) -> None:
        """Which code made the run (``provenance.code_provenance``) under ``provenance``."""
        self.events.add_summary(text("provenance", f"```json\n{json_text}```"))

    def start_session(self, hparams: Mapping[str, int | float | str | bool]) -> None:
        """Register the run with the HParams plugin before training, so that a run that never
        ends still has its row.

        ``SummaryWriter.add_hparams`` would write into a new subdirectory, a second run with
        no curves; the session-start summary of ``torch.utils.tensorboard.summary.hparams``
        goes into this run's own file instead, as in PyTorch Lightning's TensorBoardLogger.

        Its experiment summary is left out on purpose. With one, TensorBoard takes the
        columns from whichever run it reads first, blind to hparams the other runs have (an
        ``updater=manual,optim`` sweep, other sweeps under the same logdir) and with every
        ``differs`` false, so the default columns are the first five by name. Without one, it
        builds the experiment from all runs: the union of their hparams, those that differ
        first, and every scalar tag of the runs as a metric (the HPARAM_METRIC_TAGS, and the
        curves' last values).
        """
        _, session_start, _ = hparams_summaries(dict(hparams), {})
        self.events.add_summary(session_start)
        self.events.flush()

    def end_session(self, results: Mapping[str, Any], step: int) -> None:
        """The HParams metric columns from ``results`` (the contents of metrics.json) at
        ``step``, then the end of the session: success if its status is ``completed``."""
        for tag, key in HPARAM_METRIC_TAGS.items():
            if results.get(key) is not None:
                self.events.add_summary(scalar(tag, results[key]), step)
        self.events.add_summary(session_end(results.get("status") == Status.COMPLETED))

    def log_picture(self, tag: str, picture: Picture, step: int) -> None:
        """An already encoded PNG under the Images tab: the same bytes as the file on disk."""
        self.events.add_summary(image_summary(tag, picture), step)

    def close(self) -> None:
        self.events.close()


class ConsoleLogger:
    """``epoch  3/12  train_loss 0.4821  ...  val_acc 0.7856  population_acc 0.7830  *best``"""

    def __init__(self, epochs: int) -> None:
        self.width = len(str(epochs))
        self.epochs = epochs

    def log_epoch(self, metrics: EpochMetrics, is_best: bool) -> None:
        extra = "".join(f"  {name} {value:.4f}" for name, value in metrics.extra.items())
        log.info(
            "epoch %*d/%d  train_loss %.4f  train_acc %.4f  val_loss %.4f  val_acc %.4f%s%s",
            self.width,
            metrics.epoch,
            self.epochs,
            metrics.train_loss,
            metrics.train_acc,
            metrics.val_loss,
            metrics.val_acc,
            extra,
            "  *best" if is_best else "",
        )
