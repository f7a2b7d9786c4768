"""A non-editable ``pip install .`` carries the YAML and runs from any working directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (whl,) = out.glob("logreg_exp-*.whl")
    return whl


def test_wheel_holds_every_config_file(wheel):
    in_repo = {
        f"logreg_exp/conf/{p.relative_to(REPO / 'conf')}" for p in REPO.glob("conf/**/*.yaml")
    }
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = {n for n in zf.namelist() if n.endswith(".yaml")}
    assert in_repo and in_wheel == in_repo


def test_installed_package_runs_from_another_directory(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import logreg_exp; print(logreg_exp.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(site))
    proc = subprocess.run(
        [sys.executable, "-m", "logreg_exp", "epochs=1", "updater=manual"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "outputs").glob("*/*/metrics.json"))) == 1
