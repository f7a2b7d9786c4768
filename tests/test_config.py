"""The composed config: defaults, types, unknown keys, and every out-of-range value rejected
before anything is built, with key, value and what is allowed."""

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from logreg_exp.config import validated
from logreg_exp.errors import ConfigError
from tests.helpers import EXERCISE_DATASET, compose_config


def test_defaults_reproduce_the_exercise():
    cfg = compose_config()
    assert (cfg.batch_size, cfg.val_batch_size, cfg.epochs, cfg.seed) == (8, 32, 12, 0)
    assert cfg.dtype.value == "float32" and cfg.monitor.value == "val_loss"
    assert cfg.updater.name == "optim" and cfg.updater.lr == 0.01
    assert cfg.updater.optimizer._target_ == "torch.optim.SGD"
    assert cfg.updater.momentum == 0 and cfg.updater.weight_decay == 0
    assert cfg.device.name == "cpu"
    assert cfg.loss._target_ == "torch.nn.BCEWithLogitsLoss"
    assert dict(cfg.dataset) == EXERCISE_DATASET
    assert cfg.threads is None and cfg.tensorboard is True


def test_a_sweep_job_dir_is_named_by_its_zero_padded_number_and_its_overrides():
    """The one place that names job dirs (a launcher that names them itself reads it too):
    names sort in job order as text, and a path in a value does not nest directories."""
    cfg = compose_config(with_hydra=True)
    OmegaConf.update(cfg, "hydra.job.override_dirname", "dataset.path=data/x.csv,seed=1")
    names = []
    for num in (0, 7, 10, 123, 12345):
        OmegaConf.update(cfg, "hydra.job.num", num)
        names.append(cfg.hydra.sweep.subdir)
    assert names == [
        "0000_dataset.path=data_x.csv,seed=1",
        "0007_dataset.path=data_x.csv,seed=1",
        "0010_dataset.path=data_x.csv,seed=1",
        "0123_dataset.path=data_x.csv,seed=1",
        "12345_dataset.path=data_x.csv,seed=1",
    ]
    assert sorted(names[:4]) == names[:4]


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        (["updater=manual"], lambda c: c.updater.name == "manual" and c.updater.lr == 0.01),
        (["loss=bce"], lambda c: c.loss._target_ == "logreg_exp.training.model.SigmoidBCELoss"),
        (["device=auto"], lambda c: c.device.name == "auto"),
        (["dtype=float64", "monitor=val_acc"], lambda c: c.dtype.value == "float64"),
    ],
)
def test_groups_and_keys_can_be_chosen(overrides, check):
    assert check(compose_config(*overrides))


@pytest.mark.parametrize(
    "override",
    ["epochs=abc", "batch_size=1.5", "updater.lr=fast", "dtype=float16", "monitor=train_loss"],
)
def test_wrong_types_are_rejected_before_training(override):
    with pytest.raises((ValidationError, ConfigCompositionException)):
        compose_config(override)


@pytest.mark.parametrize("override", ["epoch=3", "updater.learning_rate=0.1", "dataset.n=3"])
def test_unknown_keys_are_rejected(override):
    with pytest.raises(ConfigCompositionException):
        compose_config(override)


def test_unknown_group_option_is_rejected():
    with pytest.raises(ConfigCompositionException, match="updater"):
        compose_config("updater=foo")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=0", "batch_size must be a positive integer, got 0"),
        ("val_batch_size=-3", "val_batch_size must be a positive integer, got -3"),
        ("epochs=0", "epochs must be an integer >= 1, got 0"),
        ("updater.lr=0", "updater.lr must be a number > 0 and <= 3.4e+38 (float32), got 0.0"),
        ("updater.lr=-0.1", "updater.lr must be a number > 0"),
        ("updater.lr=nan", "updater.lr must be a number > 0"),
        ("updater.lr=inf", "updater.lr must be a number > 0"),
        ("updater.lr=1e300", "updater.lr must be a number > 0 and <= 3.4e+38 (float32)"),
        ("updater.momentum=-0.5", "updater.momentum must be a number >= 0"),
        ("updater.weight_decay=-1", "updater.weight_decay must be a number >= 0"),
        ("dataset.label_flip=0.5", "dataset.label_flip must be in [0, 0.5), got 0.5"),
        ("dataset.label_flip=-0.1", "dataset.label_flip must be in [0, 0.5), got -0.1"),
        ("dataset.val_fraction=0", "dataset.val_fraction must be in the open interval (0, 1)"),
        ("dataset.val_fraction=1", "dataset.val_fraction must be in the open interval (0, 1)"),
        ("dataset.n_samples=3", "dataset.n_samples must be large enough for 2 points in each"),
        ("dataset.test_fraction=-0.1", "dataset.test_fraction must be in [0, 0.5) (at dataset."),
        (
            "dataset.test_fraction=0.5",
            "dataset.test_fraction must be in [0, 0.5) (at dataset.val_fraction=0.5; some "
            "points must be left for training), got 0.5",
        ),
        (
            "dataset.test_fraction=0.0001",
            "dataset.n_samples must be large enough for 2 points in each split at "
            "val_fraction=0.5, test_fraction=0.0001, got 5000",
        ),
        ("dataset.n_features=1", "dataset.n_features must be an integer >= 2, got 1"),
        ("threads=0", "threads must be a positive integer below 2**31, or null, got 0"),
        ("threads=2147483648", "threads must be a positive integer below 2**31, or null"),
        ("seed=-1", "seed must be an integer from 0 to 2**63 - 1, got -1"),
        ("seed=9223372036854775808", "seed must fit in 64 bits (below 2**63)"),
        ("epochs=9223372036854775808", "epochs must fit in 64 bits (below 2**63)"),
        ("dataset.n_features=-9223372036854775809", "dataset.n_features must fit in 64 bits"),
        ("allow_targets=[Loss]", "allow_targets must be a list of dotted names"),
        ("dataset.max_samples=3", "dataset.max_samples must be an integer >= 4 or null, got 3"),
    ],
)
def test_out_of_range_values_are_named(override, message):
    with pytest.raises(ConfigError) as info:
        validated(compose_config(override))
    assert str(info.value).startswith(message)


def test_float64_allows_a_larger_lr():
    validated(compose_config("dtype=float64", "updater.lr=1e300"))


@pytest.mark.parametrize("missing", ["dataset.path", "dataset.target"])
def test_csv_needs_path_and_target(missing):
    other = {"dataset.path": "dataset.target=y", "dataset.target": "dataset.path=a.csv"}[missing]
    with pytest.raises(ConfigError, match=f"{missing} is required for dataset=csv"):
        validated(compose_config("dataset=csv", other))


def test_defaults_are_valid():
    for dataset in ("gaussian2d", "breast_cancer"):
        validated(compose_config(f"dataset={dataset}"))


def test_a_test_split_is_held_out_by_default_where_no_exact_number_exists():
    assert compose_config().dataset.test_fraction == 0  # gaussian2d: the population accuracy
    for dataset in ("breast_cancer", "csv"):
        assert compose_config(f"dataset={dataset}").dataset.test_fraction == 0.2
    assert compose_config("experiment=breast_cancer").dataset.test_fraction == 0.2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["loss._target_=builtins.print"],
            "loss._target_=builtins.print is not allowed; allowed: torch.nn.BCEWithLogitsLoss, "
            "logreg_exp.training.model.SigmoidBCELoss, or a class you list in allow_targets",
        ),
        (
            ["updater.optimizer._target_=torch.optim.SparseAdam"],
            "updater.optimizer._target_=torch.optim.SparseAdam is not allowed (it takes sparse "
            "gradients only); allowed: torch.optim.ASGD,",
        ),
        (
            ["+updater.optimizer.foo._target_=os.system", "+updater.optimizer.foo.command=ls"],
            "updater.optimizer.foo._target_: a _target_ is not allowed here",
        ),
        (
            ["+updater.optimizer.betas._target_=builtins.tuple"],
            "updater.optimizer.betas._target_: a _target_ is not allowed here",
        ),
    ],
)
def test_targets_outside_the_allowlist_are_named_with_the_choices(overrides, message):
    with pytest.raises(ConfigError) as info:
        validated(compose_config(*overrides))
    assert str(info.value).startswith(message)


def test_allow_targets_extends_the_allowlist():
    cfg = validated(
        compose_config("allow_targets=[torch.nn.MSELoss]", "loss._target_=torch.nn.MSELoss")
    )
    assert cfg.loss._target_ == "torch.nn.MSELoss"


def test_a_key_added_with_a_plus_must_be_one_a_schema_declares():
    cfg = compose_config("+epoch=3", "+dataset.val_fractio=0.9", "+updater.zzz=1")
    with pytest.raises(ConfigError) as err:
        validated(cfg)
    assert str(err.value) == (  # each, in one line
        "Key 'dataset.val_fractio' not in 'Gaussian2dConfig' (dataset=gaussian2d); did you mean "
        "dataset.val_fraction or dataset.test_fraction; Key 'updater.zzz' not in "
        "'OptimUpdaterConfig' (updater=optim); its keys: updater.name, updater.lr, "
        "updater.momentum, updater.weight_decay, updater.optimizer; Key 'epoch' not in "
        "'JobConfig'; did you mean epochs"
    )


def test_the_optimizers_own_arguments_take_any_key():
    cfg = compose_config("updater.momentum=0.9", "+updater.optimizer.nesterov=true")
    assert validated(cfg).updater.optimizer["nesterov"] is True


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["-m", "epoch=3"], "error: Key 'epoch' not in 'JobConfig'; did you mean epochs"),
        (["seeed=1"], "error: Key 'seeed' not in 'JobConfig'; did you mean seed"),
        (["dataset=csv", "updater.lr=0.1", "hydra.run.dir=x", "+foo=1", "hydra/launcher=x"], None),
    ],
)
def test_a_top_level_key_of_no_schema_or_group_is_one_line_before_hydra(arguments, error):
    from logreg_exp.registry import unknown_key

    assert unknown_key(arguments) == error
