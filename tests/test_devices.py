"""Where the data live: on the device once when they fit, else on the host batch by batch."""

import pytest
import torch

from logreg_exp.devices import data_device

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
