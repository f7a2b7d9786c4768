"""The config's schema: a type for every key and, beside each field, the values it allows.

Hydra checks the types while it composes (the schemas sit in its ConfigStore, see
``cli.register_configs``); ``validated`` checks the values with one generic walk over the
fields' ``Allowed`` rules and returns the config as these dataclasses. Each message names
the key, what is allowed and the value: ``batch_size must be a positive integer, got 0``.
``reference()`` lists every rule, for the README. ``check_targets`` says which ``_target_``s a
config may name: a config is code (``hydra.utils.instantiate`` calls what it names), and the
project allows only what it documents, plus what ``allow_targets`` adds.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf, open_dict

from logreg_exp.errors import ConfigError
from logreg_exp.hydra_compat import child_container
from logreg_exp.results import Monitor


class DType(Enum):
    """Floating-point type of the data and the parameters."""

    float32 = "float32"
    float64 = "float64"


FLOAT_MAX = {"float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}


@dataclass(frozen=True)
class Allowed:
    """The values a field allows: ``test(value, root)`` with the whole config as ``root`` (for
    a bound that depends on another key), and the words for them, likewise (``doc`` says
    them in the reference, where there is no config)."""

    test: Callable[[Any, Any], bool]
    words: str | Callable[[Any], str]
    doc: str = ""

    def describe(self, root: Any) -> str:
        return self.words if isinstance(self.words, str) else self.words(root)


def allowed(default: Any, rule: Allowed) -> Any:
    """A dataclass field with a default (``list``: an empty list) and the values it allows."""
    if default is list:
        return field(default_factory=list, metadata={"allowed": rule})
    return field(default=default, metadata={"allowed": rule})


def required(example: str) -> Any:
    """A field that has no default (``???`` in YAML); ``example`` shows one setting."""
    return field(default=MISSING, metadata={"example": example})


def between(low: float, high: float, words: str) -> Allowed:
    """``low <= value < high``."""
    return Allowed(lambda v, _: low <= v < high, words)


def largest_float(root: Any) -> float:
    return FLOAT_MAX[DType(root.dtype).value]


POSITIVE_INT = Allowed(lambda v, _: v > 0, "a positive integer")
# torch takes a C int for its thread count
THREADS = Allowed(
    lambda v, _: v is None or 1 <= v < 2**31, "a positive integer below 2**31, or null"
)
SEED = Allowed(lambda v, _: v >= 0, "an integer from 0 to 2**63 - 1")
FRACTION = Allowed(lambda v, _: 0 < v < 1, "in the open interval (0, 1)")
TEST_FRACTION = Allowed(
    lambda v, root: 0 <= v < 1 - root.dataset.val_fraction,
    lambda root: (
        f"in [0, {1 - root.dataset.val_fraction:g}) (at dataset.val_fraction="
        f"{root.dataset.val_fraction:g}; some points must be left for training)"
    ),
    doc="in [0, 1 - val_fraction): some points must be left for training",
)
FOLD = Allowed(
    lambda v, root: v == 0 if root.dataset.folds is None else 0 <= v < root.dataset.folds,
    lambda root: (
        "0 (dataset.folds is null: no cross-validation)"
        if root.dataset.folds is None
        else f"in [0, {root.dataset.folds}) (at dataset.folds={root.dataset.folds})"
    ),
    doc="in [0, folds); 0 where folds is null",
)
LEARNING_RATE = Allowed(
    lambda v, root: 0 < v <= largest_float(root),
    lambda root: f"a number > 0 and <= {largest_float(root):.3g} ({DType(root.dtype).value})",
    doc="a number > 0 and <= the largest float of dtype",
)
DOTTED_NAMES = Allowed(
    lambda v, _: all(re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", name) for name in v),
    "a list of dotted names, such as [mypackage.losses.FocalLoss]",
)
RESUME = Allowed(lambda v, _: str(v).lower() in ("auto", "true", "false"), "auto, true or false")
NON_NEGATIVE = Allowed(
    lambda v, root: 0 <= v <= largest_float(root),
    lambda root: f"a number >= 0 and <= {largest_float(root):.3g}",
    doc="a number >= 0 and <= the largest float of dtype",
)


def is_weight(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")
    )


CLASS_WEIGHT = Allowed(
    lambda v, _: (
        v is None
        or v == "balanced"
        or (isinstance(v, dict) and bool(v) and all(is_weight(w) for w in v.values()))
    ),
    "null, balanced, or a mapping of class label to a positive weight, such as {1: 5.0}",
)
PATIENCE = Allowed(
    lambda v, root: v is None or 1 <= v <= root.epochs,
    lambda root: f"an integer from 1 to epochs ({root.epochs}), or null (no early stopping)",
    doc="an integer from 1 to epochs, or null (no early stopping)",
)


@dataclass
class DatasetConfig:
    """Keys every dataset has: the held-out shares, their split, and feature scaling. Each
    dataset's own schema (in ``datasets.py``) adds its keys."""

    name: str = MISSING
    val_fraction: float = allowed(0.5, FRACTION)
    # the share held out for the test split, which the best model meets once, at the end;
    # both fractions are shares of all the points
    test_fraction: float = allowed(0.2, TEST_FRACTION)
    stratify: bool = True
    standardize: bool = True
    # a random subset of at most this many samples (debug=fast)
    max_samples: Optional[int] = allowed(  # noqa: UP045 (OmegaConf needs Optional here)
        None, Allowed(lambda v, _: v is None or v >= 4, "an integer >= 4 or null")
    )
    # k-fold cross-validation: what the test split leaves, in this many folds; fold ``fold``
    # validates (val_fraction unused). A sweep dimension: dataset.fold=range(K)
    folds: Optional[int] = allowed(  # noqa: UP045 (OmegaConf needs Optional here)
        None, Allowed(lambda v, _: v is None or v >= 2, "an integer >= 2 or null")
    )
    fold: int = allowed(0, FOLD)


@dataclass
class UpdaterConfig:
    """Keys both updaters have; they act elementwise on each parameter."""

    name: str = MISSING
    lr: float = allowed(0.01, LEARNING_RATE)
    momentum: float = allowed(0.0, NON_NEGATIVE)
    weight_decay: float = allowed(0.0, NON_NEGATIVE)


@dataclass
class OptimUpdaterConfig(UpdaterConfig):
    name: str = "optim"
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "torch.optim.SGD", "_partial_": True}
    )


@dataclass
class ManualUpdaterConfig(UpdaterConfig):
    name: str = "manual"


NOT_FOR_LBFGS = Allowed(lambda v, _: v == 0, "0 for updater=lbfgs (penalty=l2 alpha=... instead)")


@dataclass
class LBFGSUpdaterConfig(UpdaterConfig):
    """Full-batch torch.optim.LBFGS (training/lbfgs.py): an epoch is one step of up to
    ``max_iter`` iterations; the other keys are torch's arguments."""

    name: str = "lbfgs"
    lr: float = allowed(1.0, LEARNING_RATE)
    momentum: float = allowed(0.0, NOT_FOR_LBFGS)
    weight_decay: float = allowed(0.0, NOT_FOR_LBFGS)
    max_iter: int = allowed(20, POSITIVE_INT)
    history_size: int = allowed(100, POSITIVE_INT)
    tolerance_grad: float = allowed(1e-7, NON_NEGATIVE)
    tolerance_change: float = allowed(1e-9, NON_NEGATIVE)
    line_search_fn: Optional[str] = allowed(  # noqa: UP045
        "strong_wolfe",
        Allowed(lambda v, _: v in (None, "strong_wolfe"), "strong_wolfe or null (a fixed lr)"),
    )


UPDATER_SCHEMAS: dict[str, type[UpdaterConfig]] = {
    "optim": OptimUpdaterConfig,
    "manual": ManualUpdaterConfig,
    "lbfgs": LBFGSUpdaterConfig,
}


def is_threshold(value: Any) -> bool:
    """``tuned``, or a number in (0, 1)."""
    if value == "tuned":
        return True
    try:
        return 0 < float(value) < 1
    except ValueError:
        return False


THRESHOLD = Allowed(lambda v, _: is_threshold(v), "a number in (0, 1) or tuned")
THRESHOLD_METRICS = ("f1", "acc", "balanced_acc")
PENALTIES = ("none", "l2", "l1", "elasticnet")
PENALTY = Allowed(lambda v, _: v in PENALTIES, "none, l2, l1 or elasticnet")
NON_NEGATIVE_INT = Allowed(lambda v, _: v >= 0, "an integer >= 0")
SCHEDULE_PERIOD = Allowed(
    lambda v, _: v is None or v > 0, "a positive integer, or null (the run's epochs)"
)


@dataclass
class SchedulerConfig:
    """A learning-rate schedule: torch's scheduler of that name, stepped after each epoch's
    validation (see ``training/schedules.py``); its keys are torch's arguments."""

    name: str = MISSING


@dataclass
class NoSchedulerConfig(SchedulerConfig):
    name: str = "none"


@dataclass
class StepSchedulerConfig(SchedulerConfig):
    name: str = "step"
    step_size: int = allowed(4, POSITIVE_INT)  # epochs between two decays
    gamma: float = allowed(0.1, Allowed(lambda v, _: 0 < v <= 1, "a number in (0, 1]"))


@dataclass
class CosineSchedulerConfig(SchedulerConfig):
    name: str = "cosine"
    T_max: Optional[int] = allowed(None, SCHEDULE_PERIOD)  # noqa: UP045
    eta_min: float = allowed(0.0, NON_NEGATIVE)


@dataclass
class PlateauSchedulerConfig(SchedulerConfig):
    """Watches the metric ``monitor`` names, in its direction (val_loss: min, val_acc: max)."""

    name: str = "plateau"
    factor: float = allowed(0.1, FRACTION)
    patience: int = allowed(2, NON_NEGATIVE_INT)
    threshold: float = allowed(1e-4, NON_NEGATIVE)
    threshold_mode: str = allowed("rel", Allowed(lambda v, _: v in ("rel", "abs"), "rel or abs"))
    cooldown: int = allowed(0, NON_NEGATIVE_INT)
    min_lr: float = allowed(0.0, NON_NEGATIVE)
    eps: float = allowed(1e-8, NON_NEGATIVE)


SCHEDULER_SCHEMAS: dict[str, type[SchedulerConfig]] = {
    "none": NoSchedulerConfig,
    "step": StepSchedulerConfig,
    "cosine": CosineSchedulerConfig,
    "plateau": PlateauSchedulerConfig,
}


@dataclass
class DeviceConfig:
    name: str = "cpu"
    data_on_device: bool = True  # move the dataset to the device once, when it fits
    # on a GPU, replay the training steps as CUDA graphs (see training/graphs.py)
    cuda_graphs: bool = True


@dataclass
class LossConfig:
    _target_: str = "torch.nn.BCEWithLogitsLoss"


@dataclass
class TrackerConfig:
    """Where a run is tracked besides its dir (``tracking/mlflow_store.py``)."""

    name: str = MISSING


@dataclass
class NoTrackerConfig(TrackerConfig):
    name: str = "none"


@dataclass
class MlflowTrackerConfig(TrackerConfig):
    name: str = "mlflow"
    # null: $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db
    tracking_uri: Optional[str] = None  # noqa: UP045
    experiment: str = "logreg_exp"
    artifacts: bool = True


TRACKER_SCHEMAS: dict[str, type[TrackerConfig]] = {
    "none": NoTrackerConfig,
    "mlflow": MlflowTrackerConfig,
}


@dataclass
class JobConfig:
    dataset: Any = MISSING  # one of the schemas in datasets.py
    updater: Any = MISSING  # OptimUpdaterConfig or ManualUpdaterConfig
    scheduler: Any = MISSING  # one of SCHEDULER_SCHEMAS
    device: DeviceConfig = MISSING
    loss: LossConfig = MISSING
    batch_size: int = allowed(8, POSITIVE_INT)
    val_batch_size: int = allowed(32, POSITIVE_INT)
    epochs: int = allowed(12, Allowed(lambda v, _: v >= 1, "an integer >= 1"))
    seed: int = allowed(0, SEED)
    dtype: DType = DType.float32
    monitor: Monitor = Monitor.val_loss
    # the weights' penalty in the objective, scikit-learn's: alpha * (l1_ratio * |w|_1 +
    # (1 - l1_ratio) / 2 * |w|^2), l2 = l1_ratio 0, l1 = 1 (see training/penalties.py)
    penalty: str = allowed("none", PENALTY)
    alpha: float = allowed(0.0001, NON_NEGATIVE)
    l1_ratio: float = allowed(0.15, Allowed(lambda v, _: 0 <= v <= 1, "a number in [0, 1]"))
    # binary data: class 1 where its probability is above this; tuned: the threshold that
    # maximizes threshold_metric on the validation split (see training/metrics.py)
    threshold: str = allowed("0.5", THRESHOLD)
    threshold_metric: str = allowed(
        "f1", Allowed(lambda v, _: v in THRESHOLD_METRICS, "f1, acc or balanced_acc")
    )
    # every metric of training/metrics.py on the validation split each epoch, not only
    # val_loss and val_acc (on whenever monitor names one of them)
    val_metrics: bool = False
    # torch's CPU threads per job; null: see launchers.default_threads
    threads: Optional[int] = allowed(None, THREADS)  # noqa: UP045
    tensorboard: bool = True
    # _target_s this config may name beyond the ones the project allows (see check_targets)
    allow_targets: list[str] = allowed(list, DOTTED_NAMES)  # noqa: RUF009 (a field())
    # clear the output dir first when it holds another run's results (see output_dirs.py)
    overwrite: bool = allowed(False, Allowed(lambda v, _: isinstance(v, bool), "true or false"))
    # in a dir holding an unfinished run of this config: auto goes on with it, true requires
    # one, false starts over (see output_dirs.py)
    resume: str = allowed("auto", RESUME)
    # each class's weight in the loss, as scikit-learn's class_weight: null (all 1),
    # balanced (n / (K * n_k) on the training split), or {label: weight}
    class_weight: Any = allowed(None, CLASS_WEIGHT)  # noqa: RUF009 (a field())
    # early stopping: end training after this many epochs without the monitored metric
    # improving on its best by more than min_delta (null: train every epoch)
    patience: Optional[int] = allowed(None, PATIENCE)  # noqa: UP045
    min_delta: float = allowed(0.0, NON_NEGATIVE)
    tracker: Any = MISSING  # one of TRACKER_SCHEMAS
    # true: print the sweep's (or run's) plan and exit, claiming no dir (see sweeps/dry_run.py)
    dry_run: bool = False


def rules(node: Any, prefix: str = "") -> Iterator[tuple[str, Any, Allowed]]:
    """Each constrained field below the dataclass instance ``node``: its dotted key, value
    and rule, in declaration order."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if "allowed" in f.metadata:
            yield key, value, f.metadata["allowed"]
        if dataclasses.is_dataclass(value):
            yield from rules(value, f"{key}.")


def check_required(cfg: DictConfig, prefix: str = "") -> None:
    """A ``???`` key left unset: one line naming it, with an example of each required key."""
    for key in cfg:
        node = child_container(cfg, key)
        if OmegaConf.is_missing(cfg, key):
            schema = OmegaConf.get_type(cfg)
            examples = [
                f.metadata["example"]
                for f in dataclasses.fields(schema)
                if "example" in f.metadata and dataclasses.is_dataclass(schema)
            ]
            owner = f"{prefix.rstrip('.')}={cfg.name}" if "name" in cfg else "this run"
            hint = f" (e.g. {' '.join(examples)})" if examples else ""
            raise ConfigError(f"{prefix}{key} is required for {owner}{hint}")
        if isinstance(node, DictConfig) and OmegaConf.get_type(node) is not dict:
            check_required(node, f"{prefix}{key}.")


def check_known_keys(cfg: DictConfig) -> None:
    """Keys that no schema declares (added with ``+``: ``+epoch=3``, which OmegaConf would
    keep and ignore): one line naming each and the keys it may have meant. Below a dict (the
    optimizer's arguments) any key goes; a config's ``hydra`` node is Hydra's."""
    unknown = list(unknown_keys(cfg))
    if unknown:
        raise ConfigError("; ".join(unknown))


def unknown_keys(cfg: DictConfig, prefix: str = "") -> Iterator[str]:
    schema = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(schema):
        return
    known = [f.name for f in dataclasses.fields(schema)]
    for key in cfg:
        if key == "hydra" and not prefix:
            continue
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=3)
            if close:
                hint = "did you mean " + " or ".join(prefix + k for k in close)
            else:
                hint = "its keys: " + ", ".join(prefix + k for k in known)
            yield f"Key '{prefix}{key}' not in '{schema.__name__}'{where(cfg, prefix)}; {hint}"
            continue
        node = child_container(cfg, key)
        if isinstance(node, DictConfig):
            yield from unknown_keys(node, f"{prefix}{key}.")


def where(cfg: DictConfig, prefix: str) -> str:
    """`` (dataset=csv)``: the option of the config group a node comes from, if it names one."""
    name = cfg.get("name") if prefix and "name" in cfg else None
    return f" ({prefix.rstrip('.')}={name})" if isinstance(name, str) else ""


INT64 = 2**63


def integers(node: Any, prefix: str = "") -> Iterator[tuple[str, int]]:
    """Each integer field below the dataclass instance ``node``: its dotted key and value."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, int) and not isinstance(value, bool):
            yield f"{prefix}{f.name}", value
        if dataclasses.is_dataclass(value):
            yield from integers(value, f"{prefix}{f.name}.")


def validated(cfg: DictConfig) -> JobConfig:
    """The composed config as ``JobConfig``; ConfigError on a key no schema declares, on
    the first value that its field does not allow, on an integer that 64 bits cannot hold
    (numpy and torch take no larger), and on a ``_target_`` that the config may not name."""
    check_known_keys(cfg)
    check_required(cfg)
    settings = OmegaConf.to_object(cfg)
    assert isinstance(settings, JobConfig)
    for key, value in integers(settings):
        if not -INT64 <= value < INT64:
            raise ConfigError(f"{key} must fit in 64 bits (below 2**63), got {value}")
    for key, value, rule in rules(settings):
        if not rule.test(value, settings):
            raise ConfigError(f"{key} must be {rule.describe(settings)}, got {value!r}")
    check_targets(settings)
    return settings


def without_hydra(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` without its ``hydra`` node: what Hydra hands the task function."""
    task = copy.deepcopy(cfg)
    with open_dict(task):
        del task["hydra"]
    return task


def flatten(node: Mapping[str, Any], omit: Collection[str] = ()) -> dict[str, Any]:
    """The leaves of a config as plain data under their dotted keys, as an override names
    them (an empty dict is a leaf); the keys ``omit`` left out, with what is below them."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        if key in omit:
            continue
        if isinstance(value, dict) and value:
            flat.update({f"{key}.{sub}": leaf for sub, leaf in flatten(value, omit).items()})
        else:
            flat[str(key)] = value
    return flat


OPTIMIZERS = [
    "ASGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
]
# What hydra.utils.instantiate may build: the key of each _target_ the project uses, and the
# classes it allows there. The optimizers are torch.optim's but three: LBFGS (its step()
# needs a closure), SparseAdam (sparse gradients only), Muon (2-D parameters only).
TARGETS: dict[str, tuple[str, ...]] = {
    "loss._target_": (
        "torch.nn.BCEWithLogitsLoss",  # loss=bce_logits
        "logreg_exp.training.model.SigmoidBCELoss",  # loss=bce
    ),
    "updater.optimizer._target_": tuple(f"torch.optim.{name}" for name in OPTIMIZERS),
}

# Why a class someone may well try is not among them.
UNSUITABLE = {
    "torch.nn.BCELoss": "it expects probabilities and the model gives logits; loss=bce "
    "applies the sigmoid first",
    "torch.nn.CrossEntropyLoss": "data of three classes or more get the softmax "
    "cross-entropy from either loss the project allows; two classes have one logit",
    "torch.nn.NLLLoss": "it expects log-probabilities per class; this model gives one logit",
    "torch.optim.LBFGS": "its step() needs a closure, which this training loop does not pass; "
    "updater=lbfgs trains with it, full batch",
    "torch.optim.SparseAdam": "it takes sparse gradients only",
    "torch.optim.Muon": "it takes 2-D parameters only, and the bias is 1-D",
}


def targets(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Each ``_target_`` key below ``node`` (dataclasses, dicts, lists): its dotted key and
    value."""
    if dataclasses.is_dataclass(node):
        items: Any = ((f.name, getattr(node, f.name)) for f in dataclasses.fields(node))
    elif isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        if key == "_target_":
            yield f"{prefix}_target_", value
        else:
            yield from targets(value, f"{prefix}{key}.")


def check_targets(settings: JobConfig) -> None:
    """ConfigError for a ``_target_`` at a key the project does not instantiate (a nested
    one under ``updater.optimizer``), or one naming a class it does not allow there and
    ``allow_targets`` does not list."""
    extra = list(settings.allow_targets)
    for key, value in targets(settings):
        if key not in TARGETS:
            raise ConfigError(
                f"{key}: a _target_ is not allowed here; this project instantiates "
                f"{' and '.join(TARGETS)} only"
            )
        allowed_here = TARGETS[key]
        if value in allowed_here or value in extra:
            continue
        why = f" ({UNSUITABLE[value]})" if value in UNSUITABLE else ""
        raise ConfigError(
            f"{key}={value} is not allowed{why}; allowed: {', '.join(allowed_here)}, "
            "or a class you list in allow_targets"
        )


def reference(schemas: list[tuple[str, type, str]]) -> str:
    """A markdown table of every constrained field of ``schemas`` ((key prefix, schema, where
    it applies) each): key, default and allowed values, generated for the README. A key that
    several schemas declare alike is one row."""
    rows: dict[tuple[str, str, str], list[str]] = {}
    for prefix, schema, where in schemas:
        for f in dataclasses.fields(schema):
            if "allowed" in f.metadata:
                rule: Allowed = f.metadata["allowed"]
                if f.default_factory is not dataclasses.MISSING:
                    default = str(f.default_factory())
                elif isinstance(f.default, bool):
                    default = "true" if f.default else "false"
                else:
                    default = "null" if f.default is None else str(f.default)
                key = (f"`{prefix}{f.name}`", f"`{default}`", rule.doc or rule.describe(None))
                rows.setdefault(key, []).append(where)
    lines = ["| key | default | allowed | for |", "| --- | --- | --- | --- |"]
    lines += [f"| {k} | {d} | {a} | {', '.join(w)} |" for (k, d, a), w in rows.items()]
    return "\n".join(lines) + "\n"
