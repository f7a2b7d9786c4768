"""The project's Hydra launchers, named where Hydra looks for plugins: a launcher's class must
live in the ``hydra_plugins`` namespace. Each is defined in ``logreg_exp.sweeps``."""

from logreg_exp.sweeps.joblib_launcher import JoblibLauncher as _JoblibLauncher


class JoblibLauncher(_JoblibLauncher):
    """``hydra/launcher=joblib``: see ``logreg_exp.sweeps.joblib_launcher``."""
