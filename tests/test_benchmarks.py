"""``python -m benchmarks.bench`` runs end to end (tiny sizes; its timings are not checked), and
its ablation flags reach the launcher's switches."""

import re
import subprocess
import sys

import pytest
import torch
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.types import HydraContext, RunMode

from benchmarks import bench
from benchmarks.bench import PIECES, main
from logreg_exp.cli import register_configs
from logreg_exp.hydra_compat import VERSION_BASE, instantiate


@pytest.mark.slow
def test_bench_quick_prints_every_comparison(capsys):
    main(["--quick", "--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    headings = (
        "training loop, exercise", "training loop, scale", "whole process", "peak memory",
        "sweep of 4 learning rates", "vectorized launcher by K", "stacked model, exercise size",
    )  # fmt: skip
    for heading in headings:
        assert heading in out
    assert re.search(r"framework: [\d.]+x the eager floor, [\d.]+x the slicing loop", out)
    assert re.search(r"python -m logreg_exp loss=bce .* [\d.]+ +[\d.]+ +[\d.]+\n", out)
    assert re.search(r"is -?[\d.]+x the dataset", out)  # tiny sizes: the difference is noise
    assert re.search(r"vectorized: [\d.]+x one run, [\d.]+x faster than the basic launcher", out)
    assert re.search(r"\n +10 +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +-?[\d.]+ +[\d.]+\n", out)
    assert re.search(r"\n +cpu +10 +[\d.]+ +[\d,]+ +[\d.]+\n", out)  # the stacked model
    assert re.search(r"tracker=mlflow: [\d.]+x the sweep without it", out)


@pytest.mark.slow
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bench_on_a_gpu_compares_graphs_eager_and_the_cpu(capsys):
    main(["--device", "cuda", "--quick", "--repeats", "1", "--only", "loops", "--only",
          "process", "--only", "stacked"])  # fmt: skip
    out = capsys.readouterr().out
    assert "framework, CUDA graphs replayed" in out
    assert re.search(r"CUDA graphs: [\d.]+x faster than the eager framework loop", out)
    assert re.search(r"device=cuda: [\d.]+x the wall time of device=cpu", out)
    assert re.search(r"\n +cuda +10 +[\d.]+ +[\d,]+ +[\d.]+\n", out)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.parametrize("piece", list(PIECES))
def test_each_ablation_flag_turns_its_piece_off_in_the_launcher(piece, monkeypatch, tmp_path):
    """``--ablate PIECE`` asks the ablation for PIECE alone, and the override it runs the sweep
    with reaches the launcher: its switch off there, on without the override."""
    asked = []
    monkeypatch.setattr(bench, "bench_ablation", lambda *args: asked.append(args[-1]))
    main(["--quick", "--only", "ablation", "--ablate", piece])
    assert asked == [[piece]]
    switch = PIECES[piece][1]
    name = switch.split("=")[0].rsplit(".", 1)[-1]
    register_configs()
    with initialize_config_module(config_module="logreg_exp.conf", **VERSION_BASE):
        loader = GlobalHydra.instance().config_loader()
        launchers = {}
        # off first: the config loader's stand-in is made by the first launcher set up
        for way, extra in (("off", [switch]), ("on", [])):
            overrides = [f"hydra.sweep.dir={tmp_path}", "hydra/launcher=vectorized", *extra]
            cfg = loader.load_configuration("config", overrides, RunMode.MULTIRUN)
            launchers[way] = launcher = instantiate(cfg.hydra.launcher)
            context = HydraContext(config_loader=loader, callbacks=None)  # set-up reads none
            launcher.setup(hydra_context=context, task_function=lambda task: None, config=cfg)
        assert getattr(launchers["on"], name) is True and getattr(launchers["off"], name) is False
        if piece == "derived-configs":  # the config loader's stand-in composes every job
            assert launchers["off"].configs.derive_configs is False


def test_every_piece_is_ablated_unless_some_are_named(monkeypatch):
    asked = []
    monkeypatch.setattr(bench, "bench_ablation", lambda *args: asked.append(args[-1]))
    main(["--quick", "--only", "ablation"])
    main(["--quick", "--only", "ablation", "--ablate", "all"])
    assert asked == [list(PIECES), list(PIECES)]


def test_the_loaded_mode_stops_its_busy_processes_however_the_block_ends():
    with bench.busy_cores(2, limit_s=60) as procs:
        assert len(procs) == 2 and all(proc.poll() is None for proc in procs)  # spinning
    assert all(proc.poll() is not None for proc in procs)
    with pytest.raises(KeyboardInterrupt), bench.busy_cores(1, limit_s=60) as procs:
        raise KeyboardInterrupt  # a benchmark stopped midway
    assert all(proc.poll() is not None for proc in procs)


@pytest.mark.slow
def test_bench_loaded_prints_quiet_and_loaded_side_by_side(capsys):
    main(["--quick", "--repeats", "1", "--only", "loaded"])
    out = capsys.readouterr().out
    assert "loaded machine, exercise size" in out
    assert re.search(r"\(threads chosen for the problem\) +[\d.]+ +[\d.]+ +[\d.]+\n", out)
    assert re.search(r"threads=\d+ +\(a thread per core\) +[\d.]+ +[\d.]+ +[\d.]+\n", out)
