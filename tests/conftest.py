"""Fixtures shared by the test modules (the helpers they import are in ``helpers.py``)."""

import pytest
import torch

from tests.helpers import compose_config

# The in-process tests train on tensors of a few thousand numbers, where torch's intra-op
# threads only add a hand-over at every operation; on a busy 2-core machine the threads wait
# for each other and the tests take several times as long. One thread, set before any job
# reads torch's default (devices.torch_default_threads); the CLI in a subprocess is untouched.
torch.set_num_threads(1)


@pytest.fixture
def config():
    """``config(*overrides)``: the composed config, as ``python -m logreg_exp`` would run it."""
    return compose_config


@pytest.fixture(scope="session")
def csv_run(tmp_path_factory):
    """A completed run of experiment=csv on 120 rows labelled 'neg' and 'pos' (so that the
    classes overlap a little), started in ``launch_dir`` with the relative dataset.path
    data.csv, and kept in ``launch_dir/run``: (run dir, CSV path)."""
    import os

    from tests.helpers import finished_run, write_csv

    launch_dir = tmp_path_factory.mktemp("launch")
    data = write_csv(launch_dir / "data.csv", n=120, separation=1.5)
    before = os.getcwd()
    os.chdir(launch_dir)
    try:
        run = finished_run(
            launch_dir / "run",
            "experiment=csv", "dataset.path=data.csv", "dataset.target=kind", "epochs=3",
            "tensorboard=false",
            launched_in=launch_dir,
        )  # fmt: skip
    finally:
        os.chdir(before)
    return run, data


@pytest.fixture(scope="session")
def cli_csv_run(tmp_path_factory):
    """A run of the real ``python -m logreg_exp experiment=csv`` on 200 rows of data.csv,
    started in ``launch_dir``, in ``launch_dir/run``: (run dir, CSV path). For the slow
    tier."""
    from tests.helpers import run_cli, write_csv

    launch_dir = tmp_path_factory.mktemp("cli_launch")
    data = write_csv(launch_dir / "data.csv", n=200, separation=1.5)
    proc = run_cli(
        "experiment=csv", "dataset.path=data.csv", "dataset.target=kind", "epochs=5",
        "hydra.run.dir=run", cwd=launch_dir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return launch_dir / "run", data
