"""Where the data live (on the device once when they fit, else on the host batch by batch),
and torch's CPU threads."""

import pytest
import torch

from logreg_exp.training import devices
from logreg_exp.training.devices import (
    data_device,
    one_thread_is_enough,
    set_torch_threads,
    threads_for_problem,
    torch_default_threads,
)

GIB = 2**30


@pytest.fixture
def free_gpu_memory(monkeypatch):
    """Pretend a GPU with 4 GiB free: only the placement decision is tested, no GPU needed."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (4 * GIB, 8 * GIB))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a GPU")


def test_cpu_data_stay_on_the_cpu():
    assert data_device(torch.device("cpu"), True, 10 * GIB) == torch.device("cpu")
    assert data_device(torch.device("cpu"), False, 1) == torch.device("cpu")


def test_gpu_data_move_once_when_they_fit(free_gpu_memory):
    cuda = torch.device("cuda")
    assert data_device(cuda, True, 1 * GIB) == cuda
    assert data_device(cuda, True, 3 * GIB) == torch.device("cpu")  # over half the free memory
    assert data_device(cuda, False, 1) == torch.device("cpu")  # data_on_device=false


def test_data_on_device_is_in_the_config(config):
    assert config().device.data_on_device is True
    assert config("device=cuda", "device.data_on_device=false").device.data_on_device is False


def test_set_torch_threads_prefers_the_key_then_the_launcher_then_torch():
    before = torch.get_num_threads()
    other = torch_default_threads() + 1  # a count that is not torch's own, on any machine
    try:
        assert set_torch_threads(1, 2) == 1 == torch.get_num_threads()
        assert set_torch_threads(None, other) == other
        # a later job that asks for the default gets torch's own, not the job before it's
        assert set_torch_threads(None, None) == torch_default_threads()
    finally:
        torch.set_num_threads(before)


def test_one_thread_for_the_exercise_torchs_own_for_a_large_problem(config, monkeypatch):
    """One rule for single runs (K = 1) and stacked groups: one thread while every tensor of a
    step is below torch's grain size, unless the config or the launcher says otherwise."""
    before = torch.get_num_threads()
    # the tests run on one thread (conftest): torch's own stands for a count that is not 1
    monkeypatch.setattr(devices, "torch_default_threads", lambda: 3)
    exercise = config()
    sizes = (exercise.batch_size, exercise.val_batch_size)
    features = exercise.dataset.n_features
    try:
        assert one_thread_is_enough(1, features, sizes)  # the exercise: 8 x 2 batches
        assert one_thread_is_enough(100, features, sizes)  # its 100-lr vectorized sweep
        assert threads_for_problem(None, None, 1, features, sizes) == 1
        assert threads_for_problem(2, None, 1, features, sizes) == 2  # threads=2 wins
        assert threads_for_problem(None, 4, 1, features, sizes) == 4  # so does the launcher's
        # the bench's scale: batches of 4096 x 64 = 262,144 numbers, split across threads
        assert not one_thread_is_enough(1, 64, (4096, 32))
        assert threads_for_problem(None, None, 1, 64, (4096, 32)) == 3
        assert not one_thread_is_enough(2000, features, sizes)  # scores of 2000 x 32
    finally:
        torch.set_num_threads(before)
