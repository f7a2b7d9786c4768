"""The project's Hydra launchers, named where Hydra looks for plugins: a launcher's class must
live in the ``hydra_plugins`` namespace. Each is defined in ``logreg_exp.sweeps``; the submitit
ones (``hydra/launcher=slurm`` and ``slurm_local``) build on hydra-submitit-launcher's, so they
exist where that extra is installed."""

from hydra.plugins.launcher import Launcher

from logreg_exp.sweeps.joblib_launcher import JoblibLauncher as _JoblibLauncher
from logreg_exp.sweeps.launchers import SUBMITIT, is_installed
from logreg_exp.sweeps.vectorized import VectorizedSweep


class JoblibLauncher(_JoblibLauncher):
    """``hydra/launcher=joblib``: see ``logreg_exp.sweeps.joblib_launcher``."""


class VectorizedLauncher(VectorizedSweep, Launcher):
    """``hydra/launcher=vectorized``: see ``logreg_exp.sweeps.vectorized``."""


if is_installed(SUBMITIT.package):  # pip install 'logreg-exp[launchers]'
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher

    from logreg_exp.sweeps.cluster import WaitingForEveryJob

    class SlurmLauncher(WaitingForEveryJob, submitit_launcher.SlurmLauncher):
        """``hydra/launcher=slurm``: a SLURM job per sweep job (a job array); see
        ``logreg_exp.sweeps.cluster``."""

    class LocalLauncher(WaitingForEveryJob, submitit_launcher.LocalLauncher):
        """``hydra/launcher=slurm_local``: submitit's local executor, every job a process of
        its own on this machine."""
