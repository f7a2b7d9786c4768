"""The Hydra plugin class of ``hydra/launcher=vectorized`` (conf/hydra/launcher/vectorized.yaml);
the work is in ``logreg_exp.sweeps.vectorized``. Hydra instantiates launchers only from the
``hydra_plugins`` package, so the class lives here."""

from hydra.plugins.launcher import Launcher

from logreg_exp.sweeps.vectorized import VectorizedSweep


class VectorizedLauncher(VectorizedSweep, Launcher):
    """Trains the jobs of a sweep that differ only in elementwise updater hyperparameters as
    one stacked model; every other job runs as the basic launcher runs it."""
