"""Start-up cost that a run does not need to pay: the garbage collector walking the imports.

Importing torch, and torch._dynamo (which the first ``torch.optim`` optimizer imports), makes
about 300,000 objects that live as long as the process. Python's cyclic garbage collector walks
all of them again and again while they load, and once more at interpreter exit, finding
nothing: most of a second of a three-second run on a 2-core CPU (``python -m logreg_exp.bench``
shows the whole process). ``gc.freeze()`` is the standard library's way to exempt such
objects from collection; its documentation gives the same pattern (disable, then freeze).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_objects() -> Iterator[None]:
    """Pause the cyclic collector for a block that builds long-lived objects (imports, the
    experiment), then collect once and freeze everything still alive, so that later
    collections and the one at exit skip it.

    The collection before the freeze is not optional: OmegaConf (and other libraries) raise
    and catch exceptions internally, and each caught exception's traceback holds the frames
    on the stack in a reference cycle, including ``build_experiment``'s with the data in it.
    Frozen, such a cycle would never be freed, and a multirun would keep every job's dataset.
    Reference counting frees frozen objects as usual; only the cycle collector skips them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.freeze()
        if was_enabled:
            gc.enable()
