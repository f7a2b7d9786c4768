"""``python -m benchmarks.bench`` runs end to end (tiny sizes; its timings are not checked)."""

import re
import subprocess
import sys

import pytest
import torch

from benchmarks.bench import main

pytestmark = pytest.mark.slow


def test_bench_quick_prints_every_comparison(capsys):
    main(["--quick", "--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    headings = (
        "training loop, exercise", "training loop, scale", "whole process", "peak memory",
        "sweep of 4 learning rates", "vectorized launcher by K",
    )  # fmt: skip
    for heading in headings:
        assert heading in out
    assert re.search(r"framework: [\d.]+x the eager floor, [\d.]+x the slicing loop", out)
    assert re.search(r"python -m logreg_exp loss=bce .* [\d.]+ +[\d.]+ +[\d.]+\n", out)
    assert re.search(r"is -?[\d.]+x the dataset", out)  # tiny sizes: the difference is noise
    assert re.search(r"vectorized: [\d.]+x one run, [\d.]+x faster than the basic launcher", out)
    assert re.search(r"\n +10 +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +-?[\d.]+ +[\d.]+\n", out)


def test_plain_script_trains_and_saves_the_best_state(tmp_path):
    from benchmarks.bench import PLAIN_SCRIPT

    out = tmp_path / "best.pt"
    proc = subprocess.run(
        [sys.executable, str(PLAIN_SCRIPT), "--epochs=2", f"--out={out}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"epoch 2: .* val_acc 0\.7\d+", proc.stdout)
    assert set(torch.load(out, weights_only=True)) == {"w", "bias"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line_and_exit_status_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--device", "cuda", "--quick"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "python -m benchmarks.bench: error: device=cuda: CUDA is not available on this "
        "machine; use device=cpu or device=auto"
    )
    assert "Traceback" not in err
