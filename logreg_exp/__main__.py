"""``python -m logreg_exp``: see ``logreg_exp.cli``.

The task function lives in an importable module rather than here, so launchers that pickle
it (joblib, submitit) find it by reference and register the configs in their workers too.
"""

from logreg_exp.cli import run_cli

if __name__ == "__main__":
    run_cli()
