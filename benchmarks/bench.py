"""``python -m benchmarks.bench``: the framework's speed, side by side with what it replaces.

Five comparisons, each run interleaved (every repeat runs every variant, in a rotated order,
so a noisy neighbour slows all of them alike) and reported as medians and ratios:

1. The training loop, in this process, at exercise size and at scale. The framework's real
   ``build_pipeline`` and ``train_one_epoch`` against three reference loops written out
   below on the same tensors, model, loss and optimizer: the eager floor (forward, backward
   and step on batches sliced beforehand: what the steps cost alone), a slicing loop (one
   ``randperm`` an epoch, one indexed read a batch) and the exercise's
   ``DataLoader(TensorDataset, batch_size, shuffle=True)`` with its per-sample fetch.
2. The whole process: ``python -m logreg_exp`` (Hydra, TensorBoard, checkpoint) against the
   exercise as a plain script (``plain.py``), each a fresh subprocess.
3. Peak memory of a run at scale, against the same run at exercise size.
4. A sweep of 100 learning rates with ``hydra/launcher=vectorized``, against one single run
   and against the basic launcher; then the vectorized launcher's phases for K = 1 to 1000.
5. K learning rates as one stacked model, in this process, for K = 1, 100 and 10,000.
6. The ablation of the vectorized launcher's speed machinery: the 100-learning-rate sweep
   with each piece turned off in turn (``--ablate``), against the sweep with all of them on.
   Then the same sweep with ``tracker=mlflow`` (``--only tracker``) against it without, and
   with each piece of the tracker's speed machinery off in turn.
7. ``--loaded``: the exercise run on a machine whose every core another process keeps busy,
   against the same run on the quiet machine: its training seconds (metrics.json's train_s +
   val_s), with the threads it chooses and with a thread per core.
8. ``--only sklearn`` (not a timing, run only when named): ``updater=lbfgs`` and each
   dataset preset's SGD run against scikit-learn's ``LogisticRegression``
   (``sklearn_reference``).

With ``--device cuda`` the loops include the CUDA-graph train phase (``device.cuda_graphs``)
beside the eager one, the scale is 4M samples, and the whole-process and stacked comparisons
run the same commands on this machine's CPU too.

There are no timed assertions anywhere: this prints numbers, a person reads them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from logreg_exp.cli import compose
from logreg_exp.errors import ConfigError
from logreg_exp.results import Monitor
from logreg_exp.training.build import Pipeline, build_loss, build_pipeline
from logreg_exp.training.devices import describe, resolve_device
from logreg_exp.training.graphs import CapturedTraining
from logreg_exp.training.loop import train_one_epoch
from logreg_exp.training.stacked import (
    ColumnLosses,
    StackedLogisticRegression,
    fit_stacked,
    stacked_updater,
)

PLAIN_SCRIPT = Path(__file__).with_name("plain.py")


@dataclass
class Size:
    """A problem size: the CLI overrides that make it, and how many epochs each loop times."""

    name: str
    overrides: list[str]
    epochs: int
    exercise_loop_epochs: int  # per-sample fetch is slow at scale: fewer epochs, same s/epoch


SCALE = ["dataset.n_features=64", "batch_size=4096"]  # with 1M samples (4M on a GPU)


def sizes(quick: bool, device_name: str = "cpu") -> list[Size]:
    if quick:  # only that everything runs: tiny, so the numbers mean nothing
        return [
            Size("exercise", ["dataset.n_samples=400"], epochs=2, exercise_loop_epochs=1),
            Size("scale", [*SCALE, "dataset.n_samples=20000"], epochs=2, exercise_loop_epochs=1),
        ]
    if device_name == "cuda":  # the exercise's per-sample fetch of 3.2M points: left out
        scale = Size("scale", ["dataset.n_samples=4000000", *SCALE], 5, exercise_loop_epochs=0)
    else:
        scale = Size("scale", ["dataset.n_samples=1000000", *SCALE], 3, exercise_loop_epochs=1)
    return [Size("exercise", [], epochs=12, exercise_loop_epochs=12), scale]


# --- reference loops: what the framework is measured against, not part of it --------------


def steps(exp: Pipeline, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """The exercise's four lines a minibatch, and nothing else."""
    model, loss_fn, updater = exp.model, exp.loss_fn, exp.updater
    for xb, yb in batches:
        updater.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        updater.step()


def eager_floor(exp: Pipeline, epochs: int) -> float:
    """Forward, backward and step on batches sliced beforehand: the steps' cost alone."""
    x, y = exp.train_set.tensors
    order = torch.randperm(len(y), device=x.device)
    batches = [(x[i], y[i]) for i in order.split(exp.train_loader.dataset.batch_size)]
    return timed(exp.device, lambda: [steps(exp, batches) for _ in range(epochs)])


def slicing_loop(exp: Pipeline, epochs: int) -> float:
    """One ``randperm`` an epoch and one indexed read a batch, with no DataLoader."""
    x, y = exp.train_set.tensors
    batch_size = exp.train_loader.dataset.batch_size

    def epoch() -> None:
        order = torch.randperm(len(y), device=x.device)
        steps(exp, ((x[i], y[i]) for i in order.split(batch_size)))

    return timed(exp.device, lambda: [epoch() for _ in range(epochs)])


def exercise_loop(exp: Pipeline, epochs: int) -> float:
    """The exercise's loop: ``DataLoader(TensorDataset, batch_size, shuffle=True)``, with its
    per-sample fetch and collate, each batch moved to the device and its loss read with
    ``.item()``."""
    x, y = (t.cpu() for t in exp.train_set.tensors)
    loader = DataLoader(
        TensorDataset(x, y), batch_size=exp.train_loader.dataset.batch_size, shuffle=True
    )
    model, loss_fn, updater, device = exp.model, exp.loss_fn, exp.updater, exp.device

    def epoch() -> None:
        running_loss = 0.0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            updater.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            updater.step()
            running_loss += loss.item() * len(yb)

    return timed(device, lambda: [epoch() for _ in range(epochs)])


# --- the framework, through its real code ---------------------------------------------------


def framework_loop(exp: Pipeline, epochs: int) -> float:
    """The framework's ``train_one_epoch`` over its own DataLoader, as ``fit`` calls it."""

    def epoch() -> None:
        train_one_epoch(exp.model, exp.loss_fn, exp.updater, exp.train_loader, exp.device)

    return timed(exp.device, lambda: [epoch() for _ in range(epochs)])


CAPTURED: dict[int, CapturedTraining] = {}  # one per pipeline, so its graphs are kept


def captured_loop(exp: Pipeline, epochs: int) -> float:
    """The framework's CUDA-graph train phase (``device.cuda_graphs``, on a GPU only): its
    first epoch is the eager warm-up, its second captures, later ones replay."""
    captured = CAPTURED.setdefault(
        id(exp), CapturedTraining(exp.model, exp.loss_fn, exp.updater, exp.train_loader)
    )
    return timed(exp.device, lambda: [captured.train_one_epoch() for _ in range(epochs)])


LOOPS: dict[str, tuple[str, Callable[[Pipeline, int], float]]] = {
    "floor": ("eager floor (batches sliced beforehand)", eager_floor),
    "slicing": ("slicing loop (randperm + x[idx])", slicing_loop),
    "framework": ("framework train_one_epoch", framework_loop),
    "captured": ("framework, CUDA graphs replayed", captured_loop),
    "exercise": ("exercise DataLoader(shuffle=True) loop", exercise_loop),
}


def timed(device: torch.device, body: Callable[[], object]) -> float:
    """Wall seconds of ``body()``, with the GPU's queue drained before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    body()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def interleaved(
    names: list[str], rounds: int, once: Callable[[str], float], limit: Callable[[str], int]
) -> dict[str, list[float]]:
    """``once(name)`` for every name in every round, the order rotated each round; a name
    sits out the rounds past ``limit(name)``."""
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if r < limit(name):
                gc.collect()
                times[name].append(once(name))
    return times


def bench_loops(size: Size, device_name: str, repeats: int) -> None:
    cfg = compose(*size.overrides, f"device={device_name}")
    device = resolve_device(cfg.device.name)
    exp = build_pipeline(cfg, device)
    n, steps = exp.n_train, len(exp.train_loader)

    def epochs_of(name: str) -> int:
        return size.exercise_loop_epochs if name == "exercise" else size.epochs

    # One epoch a sample, the loops taking turns epoch by epoch: a burst of load from
    # elsewhere then lands on all of them alike, and the median leaves it out.
    names = [
        name
        for name in LOOPS
        if (name != "captured" or device.type == "cuda")
        and (name != "exercise" or size.exercise_loop_epochs)
    ]
    for name in names:  # warm-up: first calls, allocator, caches; the graphs' capture
        LOOPS[name][1](exp, 2 if name == "captured" else 1)
    times = interleaved(
        names,
        repeats * size.epochs,
        lambda name: LOOPS[name][1](exp, 1),
        lambda name: repeats * epochs_of(name),
    )
    per_epoch = {name: statistics.median(t) for name, t in times.items()}

    print(
        f"\ntraining loop, {size.name}: {n} train points, {exp.model.n_features} features, "
        f"batch {cfg.batch_size} ({steps} steps an epoch); median of {repeats * size.epochs} "
        f"epochs each ({repeats * size.exercise_loop_epochs} for the exercise loop), taking turns"
    )
    header = f"{'s/epoch':>9}{'us/step':>9}{'samples/s':>12}{'/floor':>8}{'/slicing':>9}"
    print(f"  {'loop':<42}{header}")
    for name in names:
        s = per_epoch[name]
        print(
            f"  {LOOPS[name][0]:<42}{s:>9.4f}{s / steps * 1e6:>9.1f}{n / s:>12,.0f}"
            f"{s / per_epoch['floor']:>8.2f}{s / per_epoch['slicing']:>9.2f}"
        )
    fw = per_epoch["framework"]
    faster = (
        f", {per_epoch['exercise'] / fw:.2f}x faster than the exercise loop"
        if "exercise" in per_epoch
        else " (the exercise loop left out: its per-sample fetch at this size)"
    )
    print(
        f"  framework: {fw / per_epoch['floor']:.3f}x the eager floor, "
        f"{fw / per_epoch['slicing']:.3f}x the slicing loop{faster}"
    )
    if "captured" in per_epoch:
        graphed = per_epoch["captured"]
        print(
            f"  CUDA graphs: {fw / graphed:.2f}x faster than the eager framework loop, "
            f"{per_epoch['floor'] / graphed:.2f}x faster than the eager floor; "
            f"{n / graphed:,.0f} samples/s"
        )
        replay_alone(CAPTURED[id(exp)], exp, cfg.batch_size)


def replay_alone(captured: CapturedTraining, exp: Pipeline, batch_size: int) -> None:
    """The largest graph's replay alone, without the epoch around it (the reshuffle, the
    copies in and out, the tally): what a captured step costs the GPU."""
    steps = max(captured.graphs)
    graph = captured.graphs[steps].graph
    seconds = timed(exp.device, lambda: [graph.replay() for _ in range(10)]) / (10 * steps)
    print(
        f"  a replayed step alone: {seconds * 1e6:.1f} us ({batch_size / seconds:,.0f} "
        f"samples/s); the rest of an epoch is its reshuffle, copies and tally"
    )


# --- whole processes --------------------------------------------------------------------------


def run_process(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one fresh process (``env``: variables it gets besides this one's)."""
    start = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout.decode(errors='replace')}")
    return wall


# Runs ARGV as its child and writes the child's peak RSS (KiB) to PATH. A small process in
# between because Linux carries the exec-ing process's high-water mark into the child's
# ru_maxrss: run straight from this one (which holds the benchmark's data), every child
# would report at least this process's size.
PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code)"
)


def peak_rss(argv: list[str], cwd: Path) -> int:
    """Peak resident memory (bytes) of one fresh process."""
    out = cwd / "peak_rss_kib"
    run_process([sys.executable, "-c", PEAK_RSS, str(out), *argv], cwd)
    return int(out.read_text()) * 1024


def bench_processes(size: Size, device_name: str, repeats: int, tmp: Path) -> None:
    py = sys.executable
    plain_args = [f"--device={device_name}"]
    cli_args = [f"device={device_name}"]
    if size.overrides:  # --quick: the same tiny problem for both
        cfg = compose(*size.overrides)
        plain_args.append(f"--n-samples={cfg.dataset.n_samples}")
    epochs = f"epochs={size.epochs}"
    commands = {
        "plain": [py, str(PLAIN_SCRIPT), *plain_args, f"--epochs={size.epochs}"],
        "cli_bce": [py, "-m", "logreg_exp", "loss=bce", epochs, *cli_args, *size.overrides],
        "cli": [py, "-m", "logreg_exp", epochs, *cli_args, *size.overrides],
    }
    labels = {
        "plain": f"python benchmarks/plain.py --device={device_name}",
        "cli_bce": "python -m logreg_exp loss=bce   (the exercise's loss)",
        "cli": f"python -m logreg_exp device={device_name}",
    }
    if device_name == "cuda":  # the same run eagerly, and on this machine's CPU
        cli = [py, "-m", "logreg_exp", epochs, *size.overrides]
        commands["cli_eager"] = [*cli, *cli_args, "device.cuda_graphs=false"]
        commands["cli_cpu"] = [*cli, "device=cpu"]
        labels["cli_eager"] = "python -m logreg_exp device=cuda device.cuda_graphs=false"
        labels["cli_cpu"] = "python -m logreg_exp device=cpu"
    counter = itertools.count()

    def once(name: str) -> float:
        run_dir = tmp / f"{name}-{next(counter)}"
        run_dir.mkdir()
        where = f"--out={run_dir / 'best.pt'}" if name == "plain" else f"hydra.run.dir={run_dir}"
        return run_process([*commands[name], where], cwd=tmp)

    times = interleaved(list(commands), repeats, once, lambda name: repeats)
    base = statistics.median(times["plain"])
    print(f"\nwhole process, {size.name} size, {size.epochs} epochs: wall seconds, fresh processes")
    print(f"  {'command':<60}{'median':>8}{'min':>8}{'/plain':>8}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"  {labels[name]:<60}{med:>8.3f}{min(t):>8.3f}{med / base:>8.3f}")
    if "cli_cpu" in times:
        gpu, cpu = (statistics.median(times[n]) for n in ("cli", "cli_cpu"))
        print(f"  device=cuda: {gpu / cpu:.2f}x the wall time of device=cpu on this machine")


PHASES = {
    "set up": re.compile(r"set up \d+ grouped jobs in ([\d.]+) s"),
    "trained": re.compile(r"trained in ([\d.]+) s"),
    "files written": re.compile(r"their files written in ([\d.]+) s"),
}


def lr_values(k: int) -> str:
    """K learning rates from 0.01 to 1 (0.01 apart for K = 100), as a sweep override."""
    return ",".join(f"{0.01 + 0.99 * i / max(k - 1, 1):.6g}" for i in range(k))


def sweep_commands(quick: bool, device_name: str) -> tuple[int, dict[str, list[str]]]:
    """K, and the commands of one single run, the K-learning-rate vectorized sweep and the
    same sweep with the basic launcher (without the dir to write to)."""
    k = 4 if quick else 100
    cli = [sys.executable, "-m", "logreg_exp"]
    base = [f"device={device_name}", *(["epochs=2", "dataset.n_samples=400"] if quick else [])]
    sweep = [f"updater.lr={lr_values(k)}"]
    return k, {
        "single": [*cli, *base],
        "vectorized": [*cli, "-m", *base, *sweep, "hydra/launcher=vectorized"],
        "basic": [*cli, "-m", *base, *sweep],
    }


def run_in(tmp: Path, counter: Iterable[int], name: str) -> Callable[[list[str]], float]:
    """Wall seconds of a command (a run or a sweep) in a dir of its own under ``tmp``
    (``NAME-N``: each comparison names its own, so two in one ``tmp`` never meet)."""
    numbers = iter(counter)

    def once(argv: list[str]) -> float:
        where = "hydra.sweep.dir" if "-m" in argv[3:] else "hydra.run.dir"
        return run_process([*argv, f"{where}={tmp / f'{name}-{next(numbers)}'}"], tmp)

    return once


def bench_sweep(quick: bool, device_name: str, repeats: int, tmp: Path) -> None:
    """A 100-learning-rate sweep: the vectorized launcher against one single run and against
    the basic launcher, then the vectorized launcher's phases for K = 1, 10, 100, 1000."""
    k, commands = sweep_commands(quick, device_name)
    cli = commands["single"][:3]
    base = commands["single"][3:]
    labels = {
        "single": "python -m logreg_exp                      (one run)",
        "vectorized": f"  -m updater.lr=<{k} values> hydra/launcher=vectorized",
        "basic": f"  -m updater.lr=<{k} values>   (basic launcher)",
    }
    run = run_in(tmp, itertools.count(), "sweep")
    limit = {name: 1 if name == "basic" else repeats for name in commands}
    times = interleaved(list(commands), repeats, lambda n: run(commands[n]), limit.__getitem__)
    single = statistics.median(times["single"])
    print(f"\nsweep of {k} learning rates, with TensorBoard, best.pt and pictures: wall seconds")
    print(f"  {'command':<60}{'median':>8}{'runs':>6}{'/single':>9}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"  {labels[name]:<60}{med:>8.2f}{len(t):>6}{med / single:>9.2f}")
    vectorized, basic = (statistics.median(times[n]) for n in ("vectorized", "basic"))
    print(
        f"  vectorized: {vectorized / single:.2f}x one run, {basic / vectorized:.1f}x faster "
        "than the basic launcher"
    )
    print("\nvectorized launcher by K (one run each): wall seconds, and its phases")
    print(f"  {'K':>6}{'whole':>8}{'set up':>8}{'trained':>9}{'files':>8}{'rest':>7}{'/1 run':>9}")
    for size in (1, 10) if quick else (1, 10, 100, 1000):
        sweep_dir = tmp / f"by-k-{size}"
        argv = [*cli, "-m", *base, f"updater.lr={lr_values(size)}", "hydra/launcher=vectorized"]
        start = time.perf_counter()
        proc = subprocess.run(
            [*argv, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
        phases = {
            name: sum(float(v) for v in pattern.findall(proc.stdout + proc.stderr))
            for name, pattern in PHASES.items()
        }
        rest = wall - sum(phases.values())
        print(
            f"  {size:>6}{wall:>8.2f}{phases['set up']:>8.2f}{phases['trained']:>9.2f}"
            f"{phases['files written']:>8.2f}{rest:>7.2f}{wall / single:>9.2f}"
        )
    print(
        "  (set up: each job's dir, .hydra/, log and config check; files: each job's events, "
        "metrics.json, best.pt and picture; rest: start-up, composing, the summary)"
    )


# Each piece of the tracker's speed machinery, and the environment variable that turns it off
# (a benchmarking switch: the store holds the same runs either way).
TRACKER_PIECES = {
    "writer-process": ("writer process", "LOGREG_EXP_MLFLOW_IN_PROCESS"),
    "one-sync": ("one sync a sweep", "LOGREG_EXP_SQLITE_PLAIN_JOURNAL"),
}


def bench_tracker(quick: bool, device_name: str, repeats: int, tmp: Path) -> None:
    """The K-learning-rate vectorized sweep with ``tracker=mlflow`` (a SQLite store, made
    beforehand as a first sweep would have made it), against the same sweep without it, and
    with each piece of the tracker's speed machinery turned off in turn; interleaved."""
    from mlflow.tracking import MlflowClient

    k, sweep = sweep_commands(quick, device_name)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # creates the store's tables
    tracked = [*sweep["vectorized"], "tracker=mlflow", f"tracker.tracking_uri={uri}"]
    commands = {"without": sweep["vectorized"], "tracker=mlflow": tracked}
    envs: dict[str, dict[str, str] | None] = {"without": None, "tracker=mlflow": None}
    for piece, (_, variable) in TRACKER_PIECES.items():
        commands[f"{piece} off"], envs[f"{piece} off"] = tracked, {variable: "1"}
    numbers = itertools.count()
    cpu: dict[str, list[float]] = {name: [] for name in commands}

    def once(name: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        argv = [*commands[name], f"hydra.sweep.dir={tmp / f'tracker-{next(numbers)}'}"]
        wall = run_process(argv, tmp, envs[name])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        return wall

    times = interleaved(list(commands), repeats, once, lambda n: repeats)
    med = {name: statistics.median(t) for name, t in times.items()}
    cpu_med = {name: statistics.median(t) for name, t in cpu.items()}
    print(
        f"\nthe sweep of {k} learning rates with hydra/launcher=vectorized, logged to MLflow "
        f"(SQLite) at its end: medians of {repeats}, wall seconds and CPU seconds (user + "
        "system, the command's processes)"
    )
    for name, t in med.items():
        print(f"  {name:<24}{t:>8.2f}{cpu_med[name]:>8.2f}{t / med['without']:>7.2f}x")
    overhead = med["tracker=mlflow"] - med["without"]
    for piece, (label, variable) in TRACKER_PIECES.items():
        off = med[f"{piece} off"]
        saved = (off - med["tracker=mlflow"]) / max(off - med["without"], 1e-9)
        print(f"  {label} ({variable}=1 turns it off): saves {saved:.0%} of the overhead")
    print(
        f"  tracker=mlflow: {med['tracker=mlflow'] / med['without']:.2f}x the sweep without it "
        f"(+{overhead:.2f} s)"
    )


# The sweeps whose time issue 24 sets a goal for, as multiples of one single run: (name,
# overrides, goal), full size and --quick.
GOALS = (
    ("10 lrs x 5 batch sizes (8-128)", ["batch_size=8,16,32,64,128"], 10, 2.0),
    ("20 seeds x 5 lrs", ["seed=range(20)"], 5, 2.0),
    ("1,000 learning rates", [], 1000, 4.0),
)
QUICK_GOALS = (
    ("2 lrs x 2 batch sizes", ["batch_size=8,32"], 2, 2.0),
    ("2 seeds x 2 lrs", ["seed=range(2)"], 2, 2.0),
    ("10 learning rates", [], 10, 4.0),
)


SEPARATE = "  the same, a group a batch size"


def bench_goals(quick: bool, device_name: str, repeats: int, tmp: Path) -> None:
    """The vectorized launcher on the sweeps issue 24 sets goals for, against one single
    run in the same invocation: medians, the multiple of one run and the goal."""
    _, commands = sweep_commands(quick, device_name)
    single = commands["single"]
    named = {"single": single}
    goals = {}
    for label, overrides, k, goal in QUICK_GOALS if quick else GOALS:
        lrs = f"updater.lr={lr_values(k)}"
        vectorized = [lrs, *overrides, "hydra/launcher=vectorized"]
        named[label] = [*single[:3], "-m", *single[3:], *vectorized]
        goals[label] = goal
    # the batch-size grid again with a group a batch size, as before batch sizes were grouped
    grid = (QUICK_GOALS if quick else GOALS)[0][0]
    named[SEPARATE] = [*named[grid], "+hydra.launcher.group_batch_sizes=false"]
    run = run_in(tmp, itertools.count(), "goals")
    times = interleaved(list(named), repeats, lambda n: run(named[n]), lambda _: repeats)
    one = statistics.median(times["single"])
    print("\nthe vectorized launcher's goals (hydra/launcher=vectorized): wall seconds")
    print(f"  {'sweep':<36}{'median':>8}{'runs':>6}{'/single':>9}{'goal':>7}  met")
    for name, t in times.items():
        med = statistics.median(t)
        goal = goals.get(name)
        met = "" if goal is None else ("yes" if med / one <= goal else "no")
        shown = "one single run" if name == "single" else name
        goal_text = "" if goal is None else f"{goal:.1f}x"
        print(f"  {shown:<36}{med:>8.2f}{len(t):>6}{med / one:>9.2f}{goal_text:>7}  {met}")


# Each piece of the vectorized launcher's speed machinery, and the launcher option that turns
# it off (a benchmarking switch of ``VectorizedSweep``, added to the launcher's config for the
# measurement: the run dirs' files are the same either way).
PIECES = {
    "derived-configs": ("derived configs", "+hydra.launcher.derive_configs=false"),
    "lean-setup": ("lean job set-up", "+hydra.launcher.lean_setup=false"),
}


def bench_ablation(
    quick: bool, device_name: str, repeats: int, tmp: Path, pieces: Sequence[str]
) -> None:
    """The 100-learning-rate vectorized sweep with each of ``pieces`` turned off in turn,
    against the sweep with all of them on and one single run, interleaved: wall seconds, and
    the CPU seconds of each command's processes, which the machine's other work inflates far
    less (the savings of single-process pieces on a busy machine read better there)."""
    k, sweep = sweep_commands(quick, device_name)
    commands = {"single": sweep["single"], "all on": sweep["vectorized"]}
    for piece in pieces:
        commands[piece] = [*sweep["vectorized"], PIECES[piece][1]]
    run = run_in(tmp, itertools.count(), "ablation")
    cpu: dict[str, list[float]] = {name: [] for name in commands}

    def once(name: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = run(commands[name])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        return wall

    times = interleaved(list(commands), repeats, once, lambda n: repeats)
    med = {name: statistics.median(t) for name, t in times.items()}
    cpu_med = {name: statistics.median(t) for name, t in cpu.items()}
    single, on, cpu_on = med["single"], med["all on"], cpu_med["all on"]
    print(
        f"\nablation, the sweep of {k} learning rates with hydra/launcher=vectorized, each "
        f"piece off in turn: medians of {repeats}; one run {single:.2f} s "
        f"({cpu_med['single']:.2f} CPU s), the sweep with all on {on:.2f} s ({cpu_on:.2f} CPU s), "
        f"{on / single:.2f}x one run"
    )
    header = f"{'off s':>8}{'on s':>7}{'saving':>8}{'off CPU':>9}{'on CPU':>8}{'saving':>8}"
    print(f"  {'piece turned off':<18}{header}{'off/1 run':>11}  switch")
    for piece in pieces:
        off, cpu_off = med[piece], cpu_med[piece]
        name, switch = PIECES[piece]
        print(
            f"  {name:<18}{off:>8.2f}{on:>7.2f}{(off - on) / off:>8.1%}{cpu_off:>9.2f}"
            f"{cpu_on:>8.2f}{(cpu_off - cpu_on) / cpu_off:>8.1%}{off / single:>11.2f}  {switch}"
        )
    print(
        "  (saving: the share of the sweep's time with the piece off that the piece saves; "
        "CPU: user + system seconds of the command's processes)"
    )


# One busy process: a plain Python loop (no numpy/BLAS threads of its own), which ends by
# itself after LIMIT seconds should the benchmark be killed before it can stop it.
BUSY_LOOP = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end:\n"
    "    sum(range(1000))\n"
)
BUSY_LIMIT_S = 600


@contextlib.contextmanager
def busy_cores(n: int, limit_s: float = BUSY_LIMIT_S) -> Iterator[list[subprocess.Popen]]:
    """``n`` busy processes (one per core: another user's work) for the length of the block,
    each ended by its PID when the block ends, however it ends."""
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(limit_s)]))
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def bench_loaded(size: Size, device_name: str, repeats: int, tmp: Path) -> None:
    """The exercise run with one busy process per core beside it, against the same run on the
    quiet machine, interleaved: the threads the run chooses, and a thread per core (torch's
    own count on most machines, what a run used before choosing them for the problem)."""
    n = cores()
    base = [sys.executable, "-m", "logreg_exp", f"epochs={size.epochs}", f"device={device_name}"]
    commands = {
        "chosen": [*base, *size.overrides],
        "per-core": [*base, *size.overrides, f"threads={n}"],
    }
    labels = {
        "chosen": "python -m logreg_exp   (threads chosen for the problem)",
        "per-core": f"python -m logreg_exp threads={n}   (a thread per core)",
    }
    counter = itertools.count()

    def once(variant: str) -> float:
        name, load = variant.split("/")
        run_dir = tmp / f"loaded-{name}-{load}-{next(counter)}"
        with busy_cores(n if load == "loaded" else 0):
            run_process([*commands[name], f"hydra.run.dir={run_dir}"], cwd=tmp)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        return metrics["train_s"] + metrics["val_s"]

    variants = [f"{name}/{load}" for name in commands for load in ("quiet", "loaded")]
    times = interleaved(variants, repeats, once, lambda name: repeats)
    med = {variant: statistics.median(t) for variant, t in times.items()}
    print(
        f"\nloaded machine, {size.name} size, {size.epochs} epochs: training seconds (train_s + "
        f"val_s), quiet against {n} busy processes (one per core); median of {repeats}"
    )
    print(f"  {'command':<66}{'quiet':>8}{'loaded':>8}{'ratio':>7}")
    for name in commands:
        quiet, loaded = med[f"{name}/quiet"], med[f"{name}/loaded"]
        print(f"  {labels[name]:<66}{quiet:>8.2f}{loaded:>8.2f}{loaded / quiet:>7.2f}")
    print(
        f"  (a run on one thread shares {n} cores with {n} busy processes: a fair scheduler gives "
        f"it {n}/{n + 1} of a core, a ratio of {(n + 1) / n:.2f} at best)"
    )


def stacked_epoch_s(cfg: object, device: torch.device, k: int, epochs: int) -> tuple[float, int]:
    """Seconds an epoch of ``fit_stacked`` for K learning rates, as the vectorized launcher
    builds it (the pipeline's data, loaders and evaluators, SGD's stacked update), and the
    training points each of the K models sees an epoch."""
    exp = build_pipeline(cfg, device)
    model = StackedLogisticRegression(exp.model, k)
    dummy = [torch.zeros(1, requires_grad=True)]
    lrs = [float(lr) for lr in lr_values(k).split(",")]
    settings = [torch.optim.SGD(dummy, lr=lr).defaults for lr in lrs]
    updater = stacked_updater(list(model.parameters()), torch.optim.SGD, settings)
    loss_fn = ColumnLosses(build_loss(cfg.loss, reduction="none"))

    def train() -> None:
        fit_stacked(
            model, loss_fn, updater, exp.train_loader, exp.val_loader, epochs=epochs,
            device=device, monitor=Monitor(cfg.monitor), evaluators=exp.evaluators,
        )  # fmt: skip

    return timed(device, train) / epochs, exp.n_train


def bench_stacked(quick: bool, device_name: str, repeats: int) -> None:
    """K learning rates trained as one stacked model (the vectorized launcher's training, in
    this process, with the dataset's per-epoch evaluators): seconds an epoch by K, on the
    device asked for and, beside a GPU, on this machine's CPU."""
    devices = ["cuda", "cpu"] if device_name == "cuda" else [device_name]
    ks = (1, 10) if quick else (1, 100, 10_000)
    epochs = 2 if quick else 4
    overrides = ["dataset.n_samples=400"] if quick else []
    print(
        f"\nstacked model, exercise size: K learning rates as one model, {epochs} epochs "
        f"(train, validation, evaluators); median of {repeats}"
    )
    print(f"  {'device':<8}{'K':>8}{'s/epoch':>10}{'model-samples/s':>18}{'/K=1':>8}")
    for name in devices:
        cfg = compose(*overrides, f"device={name}")
        device = resolve_device(name)
        per_k = {}
        for k in ks:
            runs = [stacked_epoch_s(cfg, device, k, epochs) for _ in range(repeats)]
            times, n_train = [seconds for seconds, _ in runs], runs[0][1]
            per_k[k] = statistics.median(times)
            rate = k * n_train / per_k[k]
            print(f"  {name:<8}{k:>8}{per_k[k]:>10.4f}{rate:>18,.0f}{per_k[k] / per_k[1]:>8.2f}")


def bench_memory(exercise: Size, scale: Size, device_name: str, tmp: Path) -> None:
    """Peak RSS of one epoch at scale minus the same at exercise size, against the data's size."""
    peaks = {}
    for size in (exercise, scale):
        run_dir = tmp / f"memory-{size.name}"
        argv = [sys.executable, "-m", "logreg_exp", *size.overrides, "epochs=1",
                f"device={device_name}", f"hydra.run.dir={run_dir}"]  # fmt: skip
        peaks[size.name] = peak_rss(argv, cwd=tmp)
    metrics = json.loads((tmp / "memory-scale" / "metrics.json").read_text())
    cfg = compose(*scale.overrides)
    n, d = cfg.dataset.n_samples, cfg.dataset.n_features
    data_bytes = n * (d + 1) * 4  # features and labels as float32 tensors, train and val
    extra = peaks["scale"] - peaks["exercise"]
    mib = 2**20
    print(f"\npeak memory: python -m logreg_exp {' '.join(scale.overrides)} epochs=1")
    print(
        f"  peak RSS {peaks['scale'] / mib:.0f} MiB; at exercise size {peaks['exercise'] / mib:.0f}"
        f" MiB; the difference, {extra / mib:.0f} MiB, is {extra / data_bytes:.2f}x the dataset"
        f" ({data_bytes / mib:.0f} MiB as float32 tensors)"
    )
    print(f"  train_samples_per_s in its metrics.json: {metrics['train_samples_per_s']:,.0f}")


def machine(device: torch.device) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__}; "
        f"python {platform.python_version()}; device {describe(device)}"
    )


def bench_sklearn() -> None:
    """Not a timing: the optimum against scikit-learn's (``sklearn_reference``)."""
    from benchmarks.sklearn_reference import available_presets, compare, table

    print("\nscikit-learn's LogisticRegression against updater=lbfgs and each preset's SGD run")
    print("(the preset's split, standardization and alpha; C = 1 / (alpha * n_train); objective")
    print("= mean log loss on the training split + alpha / 2 * |w|^2; SGD at its last epoch)")
    print(table([compare(name) for name in available_presets()]))


PARTS = [
    "loops",
    "process",
    "memory",
    "sweep",
    "stacked",
    "ablation",
    "tracker",
    "loaded",
    "goals",
    "sklearn",
]
NOT_TIMINGS = ("loaded", "sklearn")  # run only when named


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default 5)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch intra-op threads, here and in the subprocesses (OMP_NUM_THREADS); "
        "default torch's own choice. 1 steadies numbers on a machine that others load",
    )  # fmt: skip
    parser.add_argument(
        "--only", choices=PARTS, action="append",
        help="run only these parts (repeatable); default all",
    )  # fmt: skip
    parser.add_argument(
        "--ablate", choices=[*PIECES, "all"], action="append",
        help="the pieces of the vectorized launcher's speed machinery the ablation turns off, "
        "one at a time (repeatable); default all",
    )  # fmt: skip
    parser.add_argument(
        "--loaded", action="store_true",
        help="also the exercise run beside one busy process per core, against it quiet",
    )  # fmt: skip
    args = parser.parse_args(argv)
    parts = args.only or [
        part for part in PARTS if part not in NOT_TIMINGS or (part == "loaded" and args.loaded)
    ]
    pieces = list(PIECES) if not args.ablate or "all" in args.ablate else args.ablate
    exercise, scale = sizes(args.quick, args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the subprocesses
    # The commands run as on a user's machine, with Python's bytecode cache: where the
    # environment turns it off (PYTHONDONTWRITEBYTECODE, as on these CI machines) every process
    # would compile the package's modules afresh, and a sweep, which imports more of them,
    # would pay more for it than the single run it is held against.
    bytecode_off = os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None
    try:
        device = resolve_device(args.device)
    except ConfigError as err:
        parser.error(str(err))  # one line and exit status 2, as for any bad argument
    print(f"python -m benchmarks.bench {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"machine: {machine(device)}")
    print(f"medians of {args.repeats} interleaved repeats, {torch.get_num_threads()} torch threads")
    if bytecode_off:
        print("PYTHONDONTWRITEBYTECODE dropped: the commands use the bytecode cache, as by default")
    if "loops" in parts:
        for size in (exercise, scale):
            bench_loops(size, args.device, args.repeats)
    if "stacked" in parts:
        bench_stacked(args.quick, args.device, args.repeats)
    if "sklearn" in parts:
        bench_sklearn()
    with tempfile.TemporaryDirectory(prefix="logreg_exp-bench-") as tmp:
        if "process" in parts:
            bench_processes(exercise, args.device, args.repeats, Path(tmp))
        if "memory" in parts:
            bench_memory(exercise, scale, args.device, Path(tmp))
        if "sweep" in parts:
            bench_sweep(args.quick, args.device, args.repeats, Path(tmp))
        if "ablation" in parts:
            bench_ablation(args.quick, args.device, args.repeats, Path(tmp), pieces)
        if "tracker" in parts:
            bench_tracker(args.quick, args.device, args.repeats, Path(tmp))
        if "loaded" in parts:
            bench_loaded(exercise, args.device, args.repeats, Path(tmp))
        if "goals" in parts:
            bench_goals(args.quick, args.device, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
