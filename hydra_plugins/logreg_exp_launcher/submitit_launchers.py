"""The Hydra plugin classes of ``hydra/launcher=slurm`` and ``slurm_local``
(conf/hydra/launcher/): hydra-submitit-launcher's, waiting for every job of a sweep to its
end and reporting each however it ended; the work is in ``logreg_exp.sweeps.cluster``."""

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher import submitit_launcher

from logreg_exp.sweeps.cluster import launch_and_wait


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """One SLURM job per sweep job (a job array); a requeued job resumes in its dir."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        return launch_and_wait(self, job_overrides, initial_job_idx)


class LocalLauncher(submitit_launcher.LocalLauncher):
    """submitit's local executor: every job a process of its own on this machine."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        return launch_and_wait(self, job_overrides, initial_job_idx)
