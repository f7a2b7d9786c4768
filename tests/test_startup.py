"""Freezing what start-up built must not keep a finished job's data alive."""

import gc
import subprocess
import sys
import weakref

import pytest

from logreg_exp import builders, runner
from logreg_exp.startup import long_lived_objects, modules_for

from .conftest import compose_config


def test_a_finished_run_frees_its_experiment_without_a_collection(tmp_path, monkeypatch):
    # a multirun runs jobs one after another in one process: each job's dataset, model and
    # optimizer must go when it ends, though the build ran under long_lived_objects()
    built = []

    def spy(cfg, device):
        exp = builders.build_experiment(cfg, device)
        built.append([weakref.ref(o) for o in (exp, exp.model, exp.updater, exp.train_loader)])
        built[-1].append(weakref.ref(exp.train_set.tensors[0]))
        return exp

    monkeypatch.setattr(runner, "build_experiment", spy)
    for job in range(2):
        runner.run(compose_config("epochs=1"), tmp_path / str(job))
        assert [ref() for ref in built[-1]] == [None] * 5, job


class Node:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_block_that_imports_freezes_what_lives_but_not_earlier_garbage(tmp_path, monkeypatch):
    (tmp_path / "freshly_imported.py").write_text("TABLE = [{'row': i} for i in range(1000)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    garbage = weakref.ref(Node())  # unreachable already, waiting for a collection
    alive = Node()
    frozen_before = gc.get_freeze_count()
    try:
        assert gc.isenabled()
        with long_lived_objects():
            assert not gc.isenabled()
            import freshly_imported  # noqa: F401
        assert gc.isenabled()
        assert garbage() is None  # collected before the freeze, not kept for good
        assert gc.get_freeze_count() > frozen_before + 1000  # the module's objects, and others
        assert gc.is_tracked(alive)
    finally:
        gc.unfreeze()
        sys.modules.pop("freshly_imported", None)


def test_a_block_that_imports_nothing_leaves_its_objects_to_the_collector():
    frozen_before = gc.get_freeze_count()
    with long_lived_objects():
        made_inside = weakref.ref(Node())
    assert gc.get_freeze_count() == frozen_before
    gc.collect()
    assert made_inside() is None


def test_entrypoint_and_sweep_callbacks_do_not_import_torch():
    """torch is imported inside the task function, where the collector is paused for it;
    Hydra instantiates the callbacks before that, so they must not pull it in."""
    code = (
        "import sys, logreg_exp.cli, logreg_exp.sweep, logreg_exp.summary;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("overrides", "expected", "left_out"),
    [
        ([], {"torch._dynamo", "matplotlib.figure"}, {"sklearn.datasets"}),
        (
            ["updater=manual", "dataset=breast_cancer"],
            {"sklearn.datasets"},
            {"torch._dynamo", "matplotlib.figure"},
        ),
        (["dataset.n_features=3"], {"torch._dynamo"}, {"matplotlib.figure"}),
    ],
)
def test_start_up_imports_what_the_run_will_import_and_nothing_else(overrides, expected, left_out):
    modules = set(modules_for(compose_config(*overrides)))
    assert "logreg_exp.runner" in modules
    assert expected <= modules and not left_out & modules
