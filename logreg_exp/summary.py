"""``python -m logreg_exp.summary SWEEP_DIR [--monitor val_loss|val_acc]``: write (again) the
summary of any sweep dir, whatever launcher ran it. The work is in ``sweeps.summary``."""

import sys

from logreg_exp.sweeps.summary import main

if __name__ == "__main__":
    sys.exit(main())
