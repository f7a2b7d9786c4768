"""The project's Hydra launchers, named where Hydra looks for plugins: a launcher's class must
live in the ``hydra_plugins`` namespace. Each is defined in ``logreg_exp.sweeps``."""

from hydra.plugins.launcher import Launcher

from logreg_exp.sweeps.joblib_launcher import JoblibLauncher as _JoblibLauncher
from logreg_exp.sweeps.vectorized import VectorizedSweep


class JoblibLauncher(_JoblibLauncher):
    """``hydra/launcher=joblib``: see ``logreg_exp.sweeps.joblib_launcher``."""


class VectorizedLauncher(VectorizedSweep, Launcher):
    """``hydra/launcher=vectorized``: see ``logreg_exp.sweeps.vectorized``."""
