"""What a job leaves behind, for a single run and for each job of a group alike: where it
runs (device, threads, seed), its lines and curves as it trains, and at the end best.pt,
preprocessing.json, the picture, metrics.json and the line that says how it ended."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from logreg_exp.data.preprocessing import save_preprocessing
from logreg_exp.files import display_path, settle, writing
from logreg_exp.provenance import (
    code_provenance,
    ended,
    now,
    provenance_text,
    read_provenance,
    start_provenance,
    write_provenance,
)
from logreg_exp.results import Outcome, Status, divergence, fit_metrics, write_metrics
from logreg_exp.run_files import (
    CHECKPOINT_FILE,
    DECISION_BOUNDARY_FILE,
    METRICS_FILE,
    PREPROCESSING_FILE,
    PROVENANCE_FILE,
)
from logreg_exp.tracking.images import Picture
from logreg_exp.tracking.loggers import ConsoleLogger, TensorBoardLogger, run_hparams
from logreg_exp.tracking.metric_plots import metric_pictures
from logreg_exp.tracking.plots import log_decision_boundary
from logreg_exp.training.build import Pipeline
from logreg_exp.training.checkpoints import save_checkpoint
from logreg_exp.training.devices import (
    describe,
    resolve_device,
    set_torch_threads,
    threads_for_problem,
)
from logreg_exp.training.loop import EpochMetrics, FitResult, improvements

JOB_LOGGER = "logreg_exp.job"  # the name a job's lines have always been logged under
log = logging.getLogger(JOB_LOGGER)


def run_provenance(device: torch.device, threads: int, started: str | None = None) -> dict:
    """The provenance of a job on ``device`` with ``threads``, started at ``started`` (ISO
    8601; default now)."""
    return start_provenance(describe(device), threads, started or now())


def place(settings: Any, default_threads: int | None) -> tuple[torch.device, int]:
    """The device, the torch threads in force, and the global seed, as the job's config says
    (the threads before the problem's size is known: ``training_threads`` settles them)."""
    device = resolve_device(settings.device.name)
    threads = set_torch_threads(settings.threads, default_threads)
    torch.manual_seed(settings.seed)
    return device, threads


def training_threads(
    settings: Any, default_threads: int | None, pipeline: Pipeline, k: int = 1
) -> int:
    """The torch threads ``k`` models of ``pipeline`` train on, once its size is known: the
    config's, the launcher's, else one for a problem below torch's grain size
    (``devices.threads_for_problem``), else torch's own."""
    batch_sizes = (settings.batch_size, settings.val_batch_size)
    n_features = pipeline.model.n_features
    return threads_for_problem(settings.threads, default_threads, k, n_features, batch_sizes)


def log_what_trains(pipeline: Pipeline, settings: Any, device: torch.device, threads: int) -> None:
    test_samples = f" / {pipeline.n_test} test" if pipeline.n_test else ""
    n_classes = pipeline.model.n_classes
    classes = f" ({n_classes} classes: multinomial)" if n_classes > 2 else ""
    penalty = ""
    if settings.penalty != "none":
        ratio = f", l1_ratio {settings.l1_ratio:g}" if settings.penalty == "elasticnet" else ""
        penalty = f", penalty {settings.penalty} (alpha {settings.alpha:g}{ratio})"
    log.info(
        "%d train / %d val%s samples, %d features%s, device %s, %d torch thread%s, updater %s "
        "(lr %g)%s",
        pipeline.n_train,
        pipeline.n_val,
        test_samples,
        pipeline.model.n_features,
        classes,
        describe(device),
        threads,
        "" if threads == 1 else "s",
        settings.updater.name,
        settings.updater.lr,
        penalty,
    )


class JobReport:
    """Everything a job reports, in its dir and on the console: each epoch's line and curves,
    and at the end best.pt, metrics.json, the HParams results, the picture and the last line.
    The TensorBoard file is open from the start (the config and the HParams session first),
    so a job that never ends still has its row. A file that cannot be written is an
    OutputError naming it."""

    def __init__(
        self,
        cfg: DictConfig,
        settings: Any,
        job_dir: Path,
        choices: Mapping[str, Any] | None = None,
        swept: Sequence[str] | None = None,
        done: FitResult | None = None,
        writes_progress: bool = False,
        resolved: dict[str, Any] | None = None,
        config_text: str | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        """``done``: the epochs a resumed run finished before, and ``replace``: whether the
        dir holds an earlier attempt's event files; the new file starts with what those
        epochs logged, and takes their place (``TensorBoardLogger``). ``resolved`` and
        ``config_text``: ``cfg`` resolved as plain data and as YAML, where they are known
        already. ``provenance``: the run's (``provenance.start_provenance``); a run that
        ``writes_progress`` (it may stop mid-way) writes it now, and every run at its end."""
        self.settings, self.job_dir = settings, job_dir
        self.provenance = provenance
        if provenance is not None and done is not None:  # the first attempt's start stays
            earlier = read_provenance(job_dir) or {}
            resumed = [*earlier.get("resumed", []), provenance["started"]]
            started = earlier.get("started") or provenance["started"]
            self.provenance = {**provenance, "started": started, "resumed": resumed}
        if self.provenance is not None and writes_progress:
            with writing(job_dir / PROVENANCE_FILE):
                write_provenance(job_dir, self.provenance)
        self.console = ConsoleLogger(settings.epochs)
        self.tensorboard: TensorBoardLogger | None = None
        self.events: str | Path = f"a TensorBoard event file in {display_path(job_dir)}"
        self.writes_progress = writes_progress
        if settings.tensorboard:
            with writing(self.events):
                self.tensorboard = TensorBoardLogger(job_dir, replace=done is not None)
            self.events = display_path(self.tensorboard.path)
            with writing(self.events):
                self.tensorboard.log_config(config_text or OmegaConf.to_yaml(cfg, resolve=True))
                if self.provenance is not None:
                    code = code_provenance(self.provenance)
                    self.tensorboard.log_provenance(provenance_text(code))
                self.tensorboard.start_session(run_hparams(resolved or cfg, choices, swept))
                if done is not None:
                    for metrics, is_best in zip(
                        done.history, improvements(done.history, done.monitor), strict=True
                    ):
                        self.tensorboard.log_epoch(metrics, is_best)
                    self.tensorboard.drop_replaced()

    def log_epoch(self, metrics: EpochMetrics, is_best: bool) -> None:
        self.console.log_epoch(metrics, is_best)
        if self.tensorboard is not None:
            with writing(self.events):
                self.tensorboard.log_epoch(metrics, is_best)

    def finish(
        self,
        result: FitResult,
        pipeline: Pipeline,
        wall_s: float,
        picture: Picture | None = None,
        stopped_by: str | None = None,
    ) -> Outcome:
        """Evaluate the best model on the test split and write what the job leaves behind;
        ``pipeline`` gives the splits and a model to draw the best state with (``picture``:
        the picture, where it was painted already). ``wall_s``: the job's time until now;
        ``stopped_by``: the signal that interrupted it."""
        start = time.perf_counter()
        test = threshold = None
        if result.status in (Status.COMPLETED, Status.PRUNED) and result.best_epoch:
            threshold = pipeline.threshold(self.settings, result.best_state)
            test = {**pipeline.test(result.best_state), **pipeline.test_metrics(threshold)}
        wall_s += time.perf_counter() - start
        metrics = fit_metrics(result, wall_s, pipeline.n_train, test, stopped_by)
        if threshold is not None:  # what predict and evaluate apply (binary data)
            metrics["threshold"] = threshold
        if test is not None and pipeline.epoch_metrics and self.tensorboard is not None:
            classes = pipeline.preprocessing.classes
            with writing(self.events):
                for tag, image in metric_pictures(test, classes).items():
                    self.tensorboard.log_picture(tag, image, result.best_epoch)
        has_events = self.tensorboard is not None
        tensorboard, self.tensorboard = self.tensorboard, None  # write_results closes it
        record = None if self.provenance is None else ended(self.provenance)
        write_results(
            result, metrics, pipeline, self.job_dir, tensorboard, self.events, picture, record
        )
        return outcome(
            result, self.settings, self.job_dir, has_events, metrics, self.writes_progress
        )

    def close(self) -> None:
        if self.tensorboard is not None:
            with suppress(OSError):
                self.tensorboard.close()
            self.tensorboard = None


def write_results(
    result: FitResult,
    metrics: dict[str, Any],
    pipeline: Pipeline,
    job_dir: Path,
    tensorboard: TensorBoardLogger | None,
    events: str | Path,
    picture: Picture | None = None,
    provenance: dict[str, Any] | None = None,
) -> None:
    """``preprocessing.json`` and ``best.pt`` (where an epoch finished), the picture, the end
    of the TensorBoard session, ``provenance.json`` with its end time, and ``metrics.json``
    last: it says how the run ended only once every other file is written, so a run that
    could not write them all never claims success, and one that says completed has the
    others from the same run."""
    if result.best_epoch:
        with writing(job_dir / PREPROCESSING_FILE):
            save_preprocessing(job_dir, pipeline.preprocessing)
        with writing(job_dir / CHECKPOINT_FILE):
            save_checkpoint(job_dir, result.best_state, result.best_epoch, *best_of(result))
    if result.status is Status.COMPLETED:
        with writing(job_dir / DECISION_BOUNDARY_FILE):
            log_decision_boundary(pipeline, result, job_dir, tensorboard, picture)
    if tensorboard is not None:
        with writing(events):
            tensorboard.end_session(metrics, step=len(result.history))
            tensorboard.close()
    if provenance is not None:
        with writing(job_dir / PROVENANCE_FILE):
            write_provenance(job_dir, provenance)
    settle()  # the files above are durable (where synced_together left them to a pool)
    with writing(job_dir / METRICS_FILE):
        write_metrics(job_dir, metrics)


def best_of(result: FitResult) -> tuple[str, float]:
    assert result.best_value is not None
    return result.monitor.value, result.best_value


def outcome(
    result: FitResult,
    settings: Any,
    job_dir: Path,
    has_events: bool,
    metrics: Mapping[str, Any] | None = None,
    resumable: bool = False,
) -> Outcome:
    """How the job ended, told in the log: its best epoch, or why it stopped (and, for a
    ``resumable`` run, which writes last.pt, how to go on with it)."""
    monitor = result.monitor
    metrics = metrics or {}
    if result.status is Status.INTERRUPTED:
        by = metrics.get("interrupted_by")
        if resumable:
            where = (
                f"last.pt the {len(result.history)} finished: run again in "
                f"{display_path(job_dir)} with the same config to resume"
            )
        else:
            where = f"({display_path(job_dir)})"
        log.warning(
            "interrupted%s in epoch %d; metrics.json and best.pt hold the best epoch so far%s%s",
            f" by {by}" if by else "",
            result.stopped_at[0],
            ", " if resumable else " ",
            where,
        )
        return Outcome(Status.INTERRUPTED, monitor.worst, "interrupted")
    if result.status is Status.DIVERGED:
        epoch, step = result.stopped_at
        knobs = f"updater.lr={settings.updater.lr:g}"
        if settings.updater.weight_decay:
            knobs += f" and updater.weight_decay={settings.updater.weight_decay:g}"
        where = divergence(result.non_finite, epoch, step)
        message = f"training diverged: {where} with {knobs}; try a smaller updater.lr"
        log.error("%s (run dir %s)", message, display_path(job_dir))
        return Outcome(Status.DIVERGED, monitor.worst, message)
    if result.status is Status.PRUNED:
        message = (
            f"pruned after epoch {result.stopped_at[0]}: its {monitor.value} among the worst "
            "of its group (hydra.launcher.prune)"
        )
        log.info("%s; best epoch %d so far; run dir %s", message, result.best_epoch,
                 display_path(job_dir))  # fmt: skip
        best_value = result.best_value
        return Outcome(Status.PRUNED, monitor.worst if best_value is None else best_value, message)

    best = result.best
    test = ""
    if metrics.get("test_loss") is not None:
        test = f"  test_loss {metrics['test_loss']:.4f}  test_acc {metrics['test_acc']:.4f}"
    log.info(
        "best epoch %d by %s: val_loss %.4f  val_acc %.4f%s; run dir %s",
        result.best_epoch,
        monitor.value,
        best.val_loss,
        best.val_acc,
        test,
        display_path(job_dir),
    )
    if result.stopped_early is not None:
        log.info(
            "stopped early after epoch %d: %s did not improve by more than min_delta=%g "
            "for patience=%d epochs",
            result.stopped_early, monitor.value, settings.min_delta, settings.patience,
        )  # fmt: skip
    if has_events:
        log.info("view it: tensorboard --logdir %s", display_path(job_dir))
    return Outcome(Status.COMPLETED, result.best_value)
