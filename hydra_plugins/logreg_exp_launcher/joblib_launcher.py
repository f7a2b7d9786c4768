"""The Hydra plugin class of ``hydra/launcher=joblib`` (stored in Hydra's ConfigStore under the
hydra-joblib-launcher plugin's name, with its keys); the work is in
``logreg_exp.sweeps.joblib_launcher``. Hydra instantiates launchers only from the
``hydra_plugins`` package, so the class lives here."""

from logreg_exp.sweeps.joblib_launcher import JoblibLauncher as SlotLauncher


class JoblibLauncher(SlotLauncher):
    """The jobs of a sweep in worker processes, a worker's death failing its own job alone."""
