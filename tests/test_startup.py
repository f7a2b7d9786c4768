"""Freezing what start-up built must not keep a finished job's data alive."""

import gc
import weakref

from logreg_exp import builders, runner
from logreg_exp.startup import long_lived_objects

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


def test_long_lived_objects_restores_the_collector_and_frees_cycles_made_inside():
    class Node:
        pass

    assert gc.isenabled()
    with long_lived_objects():
        assert not gc.isenabled()
        a, b = Node(), Node()
        a.other, b.other = b, a  # a reference cycle, garbage when the block ends
        ref = weakref.ref(a)
        del a, b
    assert gc.isenabled()
    assert ref() is None


def test_entrypoint_and_sweep_callbacks_do_not_import_torch():
    """torch is imported inside the task function, where the collector is paused for it;
    Hydra instantiates the callbacks before that, so they must not pull it in."""
    import subprocess
    import sys

    code = (
        "import sys, logreg_exp.cli, logreg_exp.sweep, logreg_exp.callbacks, logreg_exp.summary;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
