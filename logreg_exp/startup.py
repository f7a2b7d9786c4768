"""Start-up cost that a run does not need to pay: the garbage collector walking the imports.

Importing torch, and torch._dynamo (which the first ``torch.optim`` optimizer imports), makes
about 450,000 objects that live as long as the process. Python's cyclic garbage collector walks
all of them again and again while they load, then in every full collection after, and once
more at interpreter exit, finding nothing: a full collection over them alone takes 0.2 s on a
2-core CPU (``python -m logreg_exp.bench`` shows the whole process). ``gc.freeze()`` is the
standard library's way to exempt such objects from collection; its documentation gives the
same pattern: disable the collector early, freeze, enable.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_objects() -> Iterator[None]:
    """Pause the cyclic collector for a block that imports modules, then freeze what is alive,
    so that later collections, and the one at exit, skip the imports' objects.

    What is garbage already is collected first, cheaply (frozen objects are not walked):
    frozen, a reference cycle would never be freed. That matters in a multirun, whose jobs
    run one after another in one process: OmegaConf, like other libraries, raises and catches
    exceptions internally, and a caught exception's traceback holds the frames on the stack,
    a finished job's data among them, in a cycle. Only a block that imported something
    freezes: a later job's block, whose imports are done, leaves its objects to the collector.
    Reference counting frees frozen objects as usual; only the cycle collector skips them. The
    few cycles the imports themselves leave (about 9,000 objects for torch and torch._dynamo)
    stay for the life of the process.
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
