"""What each layer imports, checked in a fresh interpreter: the loop no Hydra, the entrypoint
and the sweep callbacks no torch (start-up imports it, with the collector paused), a run no
matplotlib until it draws."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def imported_after(*modules: str) -> set[str]:
    """The top-level packages loaded by importing ``modules`` in a new interpreter."""
    code = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(proc.stdout))


def test_the_training_loop_imports_no_hydra():
    loaded = imported_after("logreg_exp.training.loop", "logreg_exp.training.model")
    assert "torch" in loaded
    assert not {"hydra", "omegaconf"} & loaded


def test_the_entrypoint_and_the_sweep_callbacks_import_no_torch():
    loaded = imported_after(
        "logreg_exp.__main__", "logreg_exp.sweeps.callback", "logreg_exp.sweeps.summary"
    )
    assert "hydra" in loaded
    assert not {"torch", "tensorboard", "matplotlib"} & loaded


def test_a_job_imports_matplotlib_only_to_draw():
    assert "matplotlib" not in imported_after("logreg_exp.single_run", "logreg_exp.training.loop")


def test_the_entrypoint_module_that_main_imports_imports_no_torch():
    """``python -m logreg_exp`` imports ``logreg_exp.cli`` once it catches the stop signals."""
    loaded = imported_after("logreg_exp.cli")
    assert "hydra" in loaded
    assert not {"torch", "tensorboard", "matplotlib"} & loaded
