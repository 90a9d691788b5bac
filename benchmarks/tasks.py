"""Training throughput of optbench's tasks against the same models in PyTorch on the CPU.

Two workloads, Adam with learning rate 1e-3, batch 64, float32:

- ``digits_cnn``: conv3x3(16)-relu-pool-conv3x3(32)-relu-pool-dense(10) on the 8x8 digits
  (PyTorch: ``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.Linear``), shuffled epochs;
- ``adding``: LSTM with 64 hidden units on adding-problem sequences of length 50, a fresh
  batch each step (PyTorch: ``nn.LSTM`` + ``nn.Linear``).

Each is timed for one run and for 8 seeds (optbench: one program over the 8 runs, in as
many shards as there are cores; PyTorch: 8 runs one after another), in optimizer steps per
second summed over the runs, 5 repetitions alternating between the two sides; the ratio is
the median of the paired ratios. optbench's compile time is reported separately and
excluded from its throughput, and so is the warm-up of PyTorch (one untimed short run
first).

Evaluation as ``optbench run`` does it by default, on both sides: optbench with its default
curve points (``log_every`` as a config without one gets: every epoch for the digits, 20
points per run for ``adding``), PyTorch evaluating as often (``model.eval()``,
``torch.no_grad()``, the full validation and test sets: 360 + 360 digits, or optbench's two
fixed sets of 1,000 adding sequences), both inside the timed seconds. ``--kernel`` leaves
evaluation to the end instead (``log_every`` past the budget; PyTorch not evaluating): the
training kernels alone, which no default run waits for. ``fixed_s`` is optbench's run of one
budget unit (initialisation and one evaluation), included in its timing.

Usage::

    python benchmarks/tasks.py            # a few minutes
    python benchmarks/tasks.py --kernel   # training only
    python benchmarks/tasks.py --quick    # a smoke run (seconds of timing, numbers meaningless)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from torch import nn

import optbench.problems.tasks as tasks
from optbench.problems.tasks import data

BATCH = 64
REPS = 5


def machine_info() -> str:
    """CPU model, core count and library versions, one line each."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = os.environ.get("XLA_FLAGS", "")
    return (
        f"cpu: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}\n"
        f"jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)" + (f", XLA_FLAGS={flags!r}" if flags else "")
    )


def default_log_every(task, budget: int) -> int:
    """The ``log_every`` a config without one gets (:mod:`optbench.problems.tasks.problem`)."""
    from optbench.problems.tasks.problem import CURVE_POINTS, STEP_CURVE_POINTS

    points = CURVE_POINTS if task.budget == "epochs" else STEP_CURVE_POINTS
    return max(1, task.num_steps(budget, BATCH) // points)


def optbench_runs(task, budget: int, n_runs: int, log_every: int, cache_key=None):
    """One ``task.run`` call: ``n_runs`` Adam runs (1e-3, seeds 0..n-1), batch 64, float32;
    ``cache_key`` keeps its program in the process (None: compiled at each call)."""
    return task.run(
        lambda h: optax.adam(h["learning_rate"]),
        {"learning_rate": np.full(n_runs, 1e-3)},
        np.arange(n_runs),
        budget=budget,
        batch_size=BATCH,
        log_every=log_every,
        dtype=jnp.float32,
        cache_key=cache_key,
    )


def _optbench_once(task, budget: int, n_runs: int, kernel: bool = True):
    every = 10**9 if kernel else default_log_every(task, budget)
    return optbench_runs(task, budget, n_runs, every)


def torch_cnn_train(seed: int, epochs: int, every: int = 0) -> tuple[nn.Module, int, float]:
    """One PyTorch training run of the digits CNN; returns (model, steps, seconds). ``every``
    > 0: the loss and accuracy on the full validation and test sets every ``every`` epochs
    (and after the last), in the timed seconds."""
    torch.manual_seed(seed)
    s = data.digits_split()
    x, y = torch.tensor(s.x_train[:, None]), torch.tensor(s.y_train).long()
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128, 10),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    spe = len(y) // BATCH
    sets = [(torch.tensor(a[:, None]), torch.tensor(b).long())
            for a, b in ((s.x_val, s.y_val), (s.x_test, s.y_test))]  # fmt: skip
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(y))
        for j in range(spe):
            idx = perm[j * BATCH : (j + 1) * BATCH]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if every and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
            net.eval()
            with torch.no_grad():
                for xs, ys in sets:
                    out = net(xs)
                    nn.functional.cross_entropy(out, ys).item()
                    (out.argmax(1) == ys).float().mean().item()
    return net, epochs * spe, time.perf_counter() - t0


def torch_cnn_run(seed: int, epochs: int, every: int = 0) -> tuple[int, float]:
    """One PyTorch training run of the digits CNN; returns (steps, seconds)."""
    return torch_cnn_train(seed, epochs, every)[1:]


class _LSTMRegressor(nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.lstm = nn.LSTM(2, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.out(h[-1])[:, 0]


def torch_lstm_run(seed: int, steps: int, every: int = 0, length: int = 50) -> tuple[int, float]:
    """One PyTorch training run of the adding-problem LSTM; returns (steps, seconds).
    ``every`` > 0: the MSE on the fixed validation and test sets (1,000 sequences each)
    every ``every`` steps and after the last, in the timed seconds."""
    torch.manual_seed(seed)
    net = _LSTMRegressor()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    half = length // 2
    rows = torch.arange(BATCH)
    xv, yv, xt, yt = (torch.tensor(np.asarray(a)) for a in data.adding_eval_sets(length))
    t0 = time.perf_counter()
    for step in range(steps):
        if every and step and step % every == 0:
            _torch_mse(net, ((xv, yv), (xt, yt)))
        values = torch.rand(BATCH, length)
        marks = torch.zeros(BATCH, length)
        marks[rows, torch.randint(0, half, (BATCH,))] = 1.0
        marks[rows, torch.randint(half, length, (BATCH,))] = 1.0
        x = torch.stack([values, marks], dim=-1)
        target = (values * marks).sum(1)
        loss = nn.functional.mse_loss(net(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if every:
        _torch_mse(net, ((xv, yv), (xt, yt)))
    return steps, time.perf_counter() - t0


def _torch_mse(net: nn.Module, sets) -> None:
    net.eval()
    with torch.no_grad():
        for xs, ys in sets:
            nn.functional.mse_loss(net(xs), ys).item()
    net.train()


WORKLOADS = {
    # label: (task name, task params, torch run, target ratios and budgets for 1 and 8 runs)
    "digits_cnn": ("digits_cnn", {}, torch_cnn_run, (1.5, None), (80, 20)),
    "adding_lstm": ("adding", {"cell": "lstm"}, torch_lstm_run, (1.2, 2.0), (400, 100)),
}
QUICK_BUDGETS = {"digits_cnn": (2, 1), "adding_lstm": (10, 5)}


def measure(label: str, n_runs: int, quick: bool, kernel: bool = False) -> dict:
    """Both sides of one workload, in this process, repetitions alternating: one optbench
    repetition (``n_runs`` runs, one program), then one PyTorch repetition (``n_runs`` runs
    one after another), and so on. The ratio is the median of the paired ratios; the
    machine's load drifts over minutes, and pairing keeps both sides under the same load.
    optbench's compile time is excluded from its throughput (reported apart), and PyTorch
    has one untimed warm-up run first."""
    torch.set_num_threads(os.cpu_count() or 1)
    name, params, torch_fn, targets, budgets = WORKLOADS[label]
    budget = (QUICK_BUDGETS[label] if quick else budgets)[0 if n_runs == 1 else 1]
    target = targets[0 if n_runs == 1 else 1]
    reps = 1 if quick else REPS
    task = tasks.get(name, **params)
    steps = task.num_steps(budget, BATCH)
    # PyTorch evaluates as often as optbench's default curve points (in budget units)
    every = 0 if kernel else default_log_every(task, budget)
    if every and task.budget == "epochs":
        every = max(1, every // task.num_steps(1, BATCH))
    torch_fn(0, max(1, budget // 10), every)
    ours, theirs, compiles, secs, tsecs = [], [], [], [], []
    for _ in range(reps):
        res = _optbench_once(task, budget, n_runs, kernel)
        compiles.append(res.compile_s)
        secs.append(res.run_s)
        ours.append(n_runs * steps / res.run_s)
        t_steps, t_secs = 0, 0.0
        for seed in range(n_runs):
            s, t = torch_fn(seed, budget, every)
            t_steps, t_secs = t_steps + s, t_secs + t
        theirs.append(t_steps / t_secs)
        tsecs.append(t_secs)
    fixed = _optbench_once(task, 1, n_runs, kernel).run_s
    med = statistics.median
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return dict(task=label, runs=n_runs, optbench=med(ours), pytorch=med(theirs),
                ratio=med(ratios), ratio_lo=min(ratios), ratio_hi=max(ratios), target=target,
                compile_s=med(compiles), secs=med(secs), torch_secs=med(tsecs), fixed_s=fixed,
                reps=reps, evaluation="end only" if kernel else f"every {every}")  # fmt: skip


def main() -> None:
    """Run the benchmark and print the table.

    Each (workload, runs) pair is measured in a child process of its own, optbench and
    PyTorch side by side in that child: a measurement that stalls (we have seen XLA's CPU
    runtime stall on the vmapped LSTM with jax 0.10) is reported as such after
    ``--timeout`` seconds instead of hanging the whole benchmark.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement")
    parser.add_argument("--kernel", action="store_true", help="evaluate at the end only")
    parser.add_argument("--one", nargs=2, metavar=("TASK", "RUNS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(
            "RESULT " + json.dumps(measure(args.one[0], int(args.one[1]), args.quick, args.kernel))
        )
        return
    print(machine_info(), flush=True)
    rows = []
    for label in WORKLOADS:
        for n_runs in (1, 8):
            cmd = [sys.executable, __file__, "--one", label, str(n_runs)]
            cmd += ["--quick"] if args.quick else []
            cmd += ["--kernel"] if args.kernel else []
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"  {label}, {n_runs} run(s): no result within {args.timeout:.0f} s")
                continue
            found = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            if not found:
                print(f"  {label}, {n_runs} run(s) failed:\n{out.stderr[-2000:]}")
                continue
            rows.append(json.loads(found[-1][len("RESULT ") :]))
            print(f"  measured {label}, {n_runs} run(s)", flush=True)
    print(f"{'task':<12} {'runs':>4} {'optbench':>9} {'pytorch':>9} {'ratio':>6} {'range':>11} "
          f"{'target':>6} {'compile_s':>9} {'secs':>11} {'fixed_s':>7} evaluated")  # fmt: skip
    for r in rows:
        print(f"{r['task']:<12} {r['runs']:>4} {r['optbench']:>9.1f} {r['pytorch']:>9.1f} "
              f"{r['ratio']:>6.2f} {r['ratio_lo']:>5.2f}-{r['ratio_hi']:<5.2f} "
              f"{r['target'] or '-':>6} {r['compile_s']:>9.2f} "
              f"{r['secs']:>5.1f}/{r['torch_secs']:<5.1f} {r['fixed_s']:>7.3f} "
              f"{r['evaluation']}")  # fmt: skip
    reps = rows[0]["reps"] if rows else 0
    print(f"(run-steps/s summed over the runs, median of {reps} alternating repetitions; ratio: "
          "median of the paired ratios, and their range; secs: optbench/pytorch seconds of one "
          "repetition; evaluated: every N epochs or steps, as often on both sides)")  # fmt: skip


if __name__ == "__main__":
    main()
