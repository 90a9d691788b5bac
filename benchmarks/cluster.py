"""Sweeps on Dask workers against the same sweep in one process, on this machine.

Three measurements, side by side, then a model (labelled as such) built from them:

1. ``digits``: a slice of the built-in ``digits`` config (``--problems``, ``--optimizers``,
   ``--epochs``), each repetition a fresh ``optbench run --no-render`` process with an empty
   compilation cache (a new ``XDG_CACHE_HOME``, which ``--workers`` inherit), timed from
   the outside: locally, then with ``--workers 2``; the two alternate.
2. ``overhead``: a sweep of many tiny surface batches (one Rosenbrock problem copied under
   ``--batches`` labels, Adam, 50 steps: one compiled program, milliseconds of work per
   batch), in this process and on local Dask clusters of 1, 2 and 4 workers, warm (each
   executor runs the sweep once before it is timed, so every worker has the program):
   seconds per batch, and the cluster's cost per batch over the local run.
3. ``model``: what a cluster of M machines would give for the issue's study (10 optimizers
   x 30 learning rates x 10 seeds x 5 variants of the digits CNN, 20 epochs), from the
   per-run seconds of measurement 1 and the per-batch cost of measurement 2. Not a
   measurement.

The machine's load average is printed next to every timing: other processes slow both sides.

    python benchmarks/cluster.py                    # 2 repetitions of each
    python benchmarks/cluster.py --repeats 1 --batches 40
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optbench
from optbench import executors
from optbench.api import machine_meta

SLICE = ["--problems", "cnn,cnn_dropout,logreg", "--optimizers", "sgd,adam", "--epochs", "5"]
#: The study of the issue: runs per group (30 learning rates x 10 seeds) and groups.
STUDY_RUNS, STUDY_GROUPS, STUDY_EPOCHS = 30 * 10, 10 * 5, 20


def load() -> str:
    """The 1-minute load average, for the record."""
    return f"load {os.getloadavg()[0]:.1f}"


def digits_run(tmp: Path, workers: int | None) -> tuple[float, dict]:
    """(wall s, meta) of one cold ``optbench run digits`` slice in a fresh process."""
    cache, out = Path(tempfile.mkdtemp(dir=tmp)), tmp / "out"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), MPLBACKEND="Agg")
    env.pop("OPTBENCH_COMPILATION_CACHE", None)
    cmd = [sys.executable, "-m", "optbench", "run", "digits", *SLICE, "--no-render"]
    cmd += ["--overwrite", "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t, json.loads((out / "meta.json").read_text())


def digits(repeats: int) -> tuple[float, float]:
    """Measurement 1; returns the local run's seconds of compute per run-epoch (run_s) and
    of compiling per group (compile_s)."""
    print("\n1. cold `optbench run digits " + " ".join(SLICE) + " --no-render`")
    rows: dict[str, list[float]] = {"local": [], "--workers 2": []}
    per_run_epoch, per_compile = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for name, workers in (("local", None), ("--workers 2", 2)):
                wall, meta = digits_run(Path(tmp), workers)
                groups = meta["groups"]
                comp = sum(g["compile_s"] for g in groups)
                run = sum(g["run_s"] for g in groups)
                runs = sum(g["runs"] for g in groups)
                if workers is None:  # the model's compute: one process, no contention
                    per_run_epoch.append(run / runs / 5)
                    per_compile.append(comp / len(groups))
                rows[name].append(wall)
                print(
                    f"   {name:12s} rep {r}: wall {wall:6.1f} s (groups: compile {comp:5.1f} s,"
                    f" run {run:5.1f} s, summed over workers) [{load()}]"
                )
    for name, walls in rows.items():
        print(f"   {name:12s} median wall {statistics.median(walls):6.1f} s")
    ratio = statistics.median(rows["local"]) / statistics.median(rows["--workers 2"])
    print(f"   speed-up of --workers 2 over local: {ratio:.2f}x")
    return statistics.median(per_run_epoch), statistics.median(per_compile)


def tiny_config(batches: int) -> str:
    problems = "".join(
        f'[[problem]]\nsurface = "rosenbrock"\nlabel = "r{i}"\n' for i in range(batches)
    )
    return f"steps = 50\n{problems}[optimizer.adam]\nlearning_rate = 1e-2\n"


def overhead(batches: int, repeats: int) -> float:
    """Measurement 2; returns the cluster's seconds per batch over local (1 worker)."""
    print(f"\n2. {batches} tiny surface batches (warm), seconds per batch")
    cfg = tiny_config(batches)
    timings: dict[str, float] = {}
    for name, cluster in (("local", None), ("1 worker", 1), ("2 workers", 2), ("4 workers", 4)):
        with executors.connect(cluster) as executor:
            client = getattr(executor, "client", None)  # a client handed in stays open
            optbench.run(cfg, cluster=client)  # warm: every worker compiles the program
            walls = []
            for _ in range(repeats):
                t = time.perf_counter()
                optbench.run(cfg, cluster=client)
                walls.append(time.perf_counter() - t)
        timings[name] = statistics.median(walls) / batches
        print(f"   {name:10s} {1e3 * timings[name]:7.1f} ms per batch [{load()}]")
    cost = timings["1 worker"] - timings["local"]
    print(f"   cluster cost per batch (1 worker - local): {1e3 * cost:.1f} ms")
    return cost


def model(per_run_epoch: float, compile_s: float, cost: float) -> None:
    """Measurement 3 (a model, not a measurement)."""
    group_s = compile_s + STUDY_RUNS * STUDY_EPOCHS * per_run_epoch
    total = STUDY_GROUPS * group_s
    print(
        f"\n3. MODEL (not measured): the study, {STUDY_GROUPS} groups x {STUDY_RUNS} runs x "
        f"{STUDY_EPOCHS} epochs; {per_run_epoch * 1e3:.1f} ms per run-epoch (measurement 1, "
        f"local, this machine's 2 cores per batch), {compile_s:.1f} s to compile a group "
        f"(cold, measurement 1: each batch compiles once, on its worker), {cost * 1e3:.0f} ms "
        "cluster cost per batch (measurement 2); one single-threaded worker per 2-core "
        "machine; worker start-up (seconds, once) left out"
    )
    print(f"   one machine, locally: {total / 60:6.1f} min")
    for m in (1, 2, 4, 8, 16, 50, 100):
        waves = -(-STUDY_GROUPS // m)  # a group is one batch: whole batches per machine
        t = waves * (group_s + cost)
        print(f"   M = {m:3d} machines: {t / 60:6.1f} min ({total / t:5.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--skip-digits", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OPTBENCH_COMPILATION_CACHE", "off")  # measurement 2: in-process
    meta = machine_meta()
    print(f"machine: {meta['processor']}, {os.cpu_count()} cores; jax {meta['jax']} [{load()}]")
    per_run_epoch, compile_s = (0.01, 4.0) if args.skip_digits else digits(args.repeats)
    cost = overhead(args.batches, args.repeats)
    model(per_run_epoch, compile_s, cost)


if __name__ == "__main__":
    main()
