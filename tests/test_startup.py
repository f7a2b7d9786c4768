"""Freezing what start-up built must not keep a finished job's data alive."""

import gc
import sys
import weakref

import pytest

from logreg_exp import single_run
from logreg_exp.startup import import_heavy_modules, long_lived_objects, modules_for
from logreg_exp.training import build
from tests.helpers import compose_config


def test_a_finished_run_frees_its_experiment_without_a_collection(tmp_path, monkeypatch):
    # a multirun runs jobs one after another in one process: each job's dataset, model and
    # optimizer must go when it ends, though the build ran under long_lived_objects(). The
    # entrypoint imports what a run needs first: a module imported for the first time inside
    # a job (this test first in its process, as under pytest-xdist) can leave an exception's
    # traceback in a cycle that holds the job's frames until the next collection.
    cfg = compose_config("epochs=1", "dataset.n_samples=400")
    import_heavy_modules(cfg)
    built = []

    def spy(cfg, device):
        exp = build.build_pipeline(cfg, device)
        built.append([weakref.ref(o) for o in (exp, exp.model, exp.updater, exp.train_loader)])
        built[-1].append(weakref.ref(exp.train_set.tensors[0]))
        return exp

    monkeypatch.setattr(single_run, "build_pipeline", spy)
    for num in range(2):
        single_run.run_job(cfg.copy(), tmp_path / str(num))
        assert [ref() for ref in built[-1]] == [None] * 5, num


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
    assert "logreg_exp.single_run" in modules
    assert expected <= modules and not left_out & modules
