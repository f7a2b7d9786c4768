import os
import signal

import pytest

from logreg_exp.training.interrupts import GracefulInterrupt


def test_first_sigint_asks_to_stop_second_interrupts_and_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    with GracefulInterrupt() as interrupt:
        assert not interrupt()
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2])
def test_what_a_cluster_sends_stops_like_ctrl_c(sig):
    before = signal.getsignal(sig)
    with GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), sig)
        assert interrupt() and interrupt.received is sig
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(sig) is before


def test_an_inner_one_takes_over_an_earlier_request_and_hands_its_own_back():
    with GracefulInterrupt() as outer:
        os.kill(os.getpid(), signal.SIGTERM)  # while the process started up
        with GracefulInterrupt() as inner:
            assert inner.received is signal.SIGTERM
        with GracefulInterrupt() as later:
            assert later.received is signal.SIGTERM
            with pytest.raises(KeyboardInterrupt):  # the second signal of the process
                os.kill(os.getpid(), signal.SIGUSR1)
    with GracefulInterrupt() as outer:
        with GracefulInterrupt() as inner:
            os.kill(os.getpid(), signal.SIGUSR2)
        assert outer.received is signal.SIGUSR2 and inner.received is signal.SIGUSR2


def test_the_signal_goes_on_to_the_handler_it_displaced_once_the_block_ends():
    """As submitit's: it gets SIGUSR2 when the job's files are written, and requeues it."""
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        with GracefulInterrupt():
            os.kill(os.getpid(), signal.SIGUSR2)
            assert calls == []  # not while the job runs
        assert calls == [signal.SIGUSR2]
        with pytest.raises(RuntimeError), GracefulInterrupt():  # not when the block failed
            os.kill(os.getpid(), signal.SIGUSR2)
            raise RuntimeError
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_ctrl_c_is_not_handed_on_to_pythons_default_handler():
    with GracefulInterrupt():
        os.kill(os.getpid(), signal.SIGINT)
    # no KeyboardInterrupt: the run that stopped says so itself


def test_a_closed_terminal_stops_like_ctrl_c():
    before = signal.getsignal(signal.SIGHUP)
    with GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGHUP)
        assert interrupt.received is signal.SIGHUP
    assert signal.getsignal(signal.SIGHUP) is before


def test_while_a_command_imports_a_second_signal_is_recorded_not_raised():
    with GracefulInterrupt(repeat_raises=False) as early:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt inside an import
        with GracefulInterrupt() as own:  # the command's own, once imported, takes it over
            assert own.received is signal.SIGINT
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
    assert early.received is signal.SIGINT


def test_outside_a_command_process_its_body_leaves_the_handlers_alone():
    from logreg_exp.training import interrupts

    assert not interrupts.in_command()  # the tests catch nothing early
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.interrupting_command():
        assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGTERM) is before
