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
