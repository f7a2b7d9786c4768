"""Freezing what start-up built must not keep a finished job's data alive."""

import gc
import json
import subprocess
import sys
import weakref

import pytest

from logreg_exp import builders, runner
from logreg_exp.startup import long_lived_objects

from .conftest import REPO, compose_config


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
    "overrides, expected",
    [
        ([], {"torch._dynamo": True, "sklearn.datasets": False}),
        (
            ["updater=manual", "dataset=breast_cancer"],
            {"torch._dynamo": False, "sklearn.datasets": True},
        ),
    ],
)
def test_the_entrypoint_imports_up_front_what_the_run_will_import(overrides, expected):
    """What building the updater and loading the data import, imported by the entrypoint where
    the collector is paused; and nothing a run of that config does not need."""
    code = f"""
import json, sys
from logreg_exp.datasets import import_what_loading_imports
from logreg_exp.updaters import import_what_building_imports
from tests.conftest import compose_config
cfg = compose_config(*{overrides!r})
import_what_building_imports(cfg.updater)
import_what_loading_imports(cfg.dataset)
print(json.dumps({{name: name in sys.modules for name in {sorted(expected)!r}}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == expected
