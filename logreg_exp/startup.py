"""Start-up: the heavy imports, done once with the garbage collector paused, then frozen.

Importing torch (and torch._dynamo, which the first ``torch.optim`` optimizer imports) makes
hundreds of thousands of objects that live as long as the process. Python's cyclic garbage
collector walks all of them again and again while they load, then in every full collection
after, and once more at exit, finding nothing. ``gc.freeze()`` is the standard library's way
to exempt such objects; its documentation gives the pattern used here: disable the collector
early, freeze, enable. ``python -m benchmarks.bench`` measures the whole process.

The entrypoint calls ``import_heavy_modules(cfg)`` before anything else it does; everything
the run imports is imported there, by the table in ``modules_for``, so the other modules
import at their tops as usual.
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from logreg_exp.data.datasets import dataset_for
from logreg_exp.results import Monitor
from logreg_exp.sweeps.launchers import is_installed


def modules_for(cfg: Any) -> list[str]:
    """What a run of ``cfg`` will import, the table of the early imports."""
    dataset = dataset_for(cfg.dataset)
    modules = ["logreg_exp.single_run"]  # torch, numpy, the TensorBoard writer: every run
    if cfg.updater.name in ("optim", "lbfgs") or cfg.scheduler.name != "none":
        # torch.optim.Optimizer.__init__ imports it (a schedule's stand-in is an optimizer)
        modules.append("torch._dynamo")
    modules += dataset.imports  # scikit-learn for breast_cancer
    draws_metrics = cfg.val_metrics or Monitor(cfg.monitor).needs_metrics
    # may draw the decision boundary, or the metrics' pictures
    if dataset.n_features() in (2, None) or draws_metrics:
        modules += ["matplotlib.figure", "matplotlib.backends.backend_agg"]
    # an optional extra that is missing is reported by the code that needs it
    return [name for name in modules if is_installed(name)]


def import_heavy_modules(cfg: Any, also: Sequence[str] = ()) -> None:
    """Import what a run of ``cfg`` needs, and the modules ``also`` (a launcher's), with the
    collector paused, then freeze it."""
    with long_lived_objects():
        for name in [*modules_for(cfg), *also]:
            importlib.import_module(name)


@contextmanager
def long_lived_objects() -> Iterator[None]:
    """Pause the cyclic collector for a block that imports modules, then freeze what is alive,
    so that later collections, and the one at exit, skip the imports' objects.

    What is garbage already is collected first, cheaply (frozen objects are not walked):
    frozen, a reference cycle would never be freed. That matters in a multirun, whose jobs
    run one after another in one process: a caught exception's traceback holds the frames on
    the stack, a finished job's data among them, in a cycle. Only a block that imported
    something freezes: a later job's block, whose imports are done, leaves its objects to the
    collector. Reference counting frees frozen objects as usual; only the cycle collector
    skips them.
    """
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    modules = len(sys.modules)
    try:
        yield
    finally:
        if len(sys.modules) > modules:
            gc.freeze()
        if was_enabled:
            gc.enable()
