"""Start-up cost that a run does not need to pay: the garbage collector walking the imports.

Importing torch, and torch._dynamo (which the first ``torch.optim`` optimizer imports), makes
millions of objects that live as long as the process. Python's cyclic garbage collector walks
all of them again and again while they load, and once more at interpreter exit, finding
nothing: about a second of a three-second run on a 2-core CPU (``python -m logreg_exp.bench``
shows the whole process). ``gc.freeze()`` is the standard library's way to exempt such
objects from collection; its documentation gives the same pattern (disable, then freeze).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_objects() -> Iterator[None]:
    """Pause the cyclic collector for a block that only builds long-lived objects (imports,
    set-up), then freeze everything alive so that later collections and exit skip it.

    Garbage already there is collected first: a multirun runs many jobs in one process, and
    what an earlier job left must be freed, not frozen. Reference counting frees frozen
    objects as usual; freezing only keeps the cycle collector from walking them.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
