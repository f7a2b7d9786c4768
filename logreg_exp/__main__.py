"""``python -m logreg_exp``: see ``logreg_exp.cli``.

The task function lives in an importable module rather than here, so launchers that pickle
it (joblib, submitit) find it by reference and register the configs in their workers too.
The stop signals are caught before that module's imports (Hydra, OmegaConf) begin.
"""

from logreg_exp.training.interrupts import catch_stop_signals_early


def main() -> None:
    catch_stop_signals_early()
    from logreg_exp.cli import run_cli  # a second or so of imports

    run_cli()


if __name__ == "__main__":
    main()
