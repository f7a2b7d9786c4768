"""How a job's outcome becomes a sweeper's value, a one-line error or an exit status."""

import pickle

import pytest

from logreg_exp.outcomes import EndProcess, RunFailed, end_as
from logreg_exp.results import Monitor, Outcome, Status


def test_a_completed_job_is_its_best_value_for_the_sweeper():
    assert end_as(Outcome(Status.COMPLETED, 0.25), in_sweep=False) == 0.25
    assert end_as(Outcome(Status.COMPLETED, 0.25), in_sweep=True) == 0.25


def test_a_diverged_job_fails_a_single_run_and_ranks_last_in_a_sweep():
    diverged = Outcome(Status.DIVERGED, Monitor.val_loss.worst, "training diverged: ...")
    with pytest.raises(RunFailed, match=r"^error: training diverged"):
        end_as(diverged, in_sweep=False)
    assert end_as(diverged, in_sweep=True) == Monitor.val_loss.worst


@pytest.mark.parametrize("in_sweep", [False, True])
def test_an_interrupted_job_ends_the_process_with_130_as_a_shell_reports_ctrl_c(in_sweep, capsys):
    with pytest.raises(EndProcess) as end:
        end_as(Outcome(Status.INTERRUPTED, Monitor.val_loss.worst, "interrupted"), in_sweep)
    assert end.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_the_end_of_a_worker_process_job_reaches_the_sweep_with_its_status():
    end = pickle.loads(pickle.dumps(EndProcess(130)))  # as joblib hands it back
    assert isinstance(end, EndProcess) and end.code == 130
    assert not isinstance(end, Exception)  # Hydra's callbacks and run_job let it through
