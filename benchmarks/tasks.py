"""Training throughput of optbench's tasks against the same models in PyTorch on the CPU.

Two workloads, Adam with learning rate 1e-3, batch 64:

- ``digits_cnn``: conv3x3(16)-relu-pool-conv3x3(32)-relu-pool-dense(10) on the 8x8 digits
  (PyTorch: ``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.Linear``), shuffled epochs;
- ``adding``: LSTM with 64 hidden units on adding-problem sequences of length 50, a fresh
  batch each step (PyTorch: ``nn.LSTM`` + ``nn.Linear``).

Each is timed for one run and for 8 seeds (optbench: one vmapped program; PyTorch: 8 runs
one after another), median of 3 repetitions, in optimizer steps per second summed over the
runs. optbench's compile time is reported separately and excluded from its throughput;
evaluation is left to the end of the run (``log_every`` larger than the budget).

Usage::

    python benchmarks/tasks.py            # a few minutes
    python benchmarks/tasks.py --quick    # a smoke run (seconds of timing, numbers meaningless)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax.numpy as jnp
import numpy as np
import optax
import torch
from torch import nn

import optbench.tasks as tasks
from optbench.tasks import data

BATCH = 64


def optbench_rate(task, budget: int, n_runs: int, reps: int) -> tuple[float, float]:
    """(median run-steps/s, first compile seconds) of ``n_runs`` vmapped runs."""
    steps = task.num_steps(budget, BATCH)
    rates, compile_s = [], None
    for _ in range(reps):
        res = task.run(
            lambda h: optax.adam(h["learning_rate"]),
            {"learning_rate": np.full(n_runs, 1e-3)},
            np.arange(n_runs),
            budget=budget,
            batch_size=BATCH,
            log_every=10**9,
            dtype=jnp.float32,
        )
        compile_s = res.compile_s if compile_s is None else compile_s
        rates.append(n_runs * steps / res.run_s)
    return statistics.median(rates), compile_s


def torch_cnn_run(seed: int, epochs: int) -> tuple[int, float]:
    """One PyTorch training run of the digits CNN; returns (steps, seconds)."""
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
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for j in range(spe):
            idx = perm[j * BATCH : (j + 1) * BATCH]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return epochs * spe, time.perf_counter() - t0


class _LSTMRegressor(nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.lstm = nn.LSTM(2, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.out(h[-1])[:, 0]


def torch_lstm_run(seed: int, steps: int, length: int = 50) -> tuple[int, float]:
    """One PyTorch training run of the adding-problem LSTM; returns (steps, seconds)."""
    torch.manual_seed(seed)
    net = _LSTMRegressor()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    half = length // 2
    rows = torch.arange(BATCH)
    t0 = time.perf_counter()
    for _ in range(steps):
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
    return steps, time.perf_counter() - t0


def torch_rate(fn, budget: int, n_runs: int, reps: int) -> float:
    """Median run-steps/s of ``n_runs`` sequential PyTorch runs."""
    rates = []
    for _ in range(reps):
        steps, secs = 0, 0.0
        for seed in range(n_runs):
            s, t = fn(seed, budget)
            steps, secs = steps + s, secs + t
        rates.append(steps / secs)
    return statistics.median(rates)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    reps = 1 if args.quick else 3
    cnn_epochs = 1 if args.quick else 10
    lstm_steps = 10 if args.quick else 200
    rows = []
    for label, task, budget, torch_fn, target in (
        ("digits_cnn", tasks.get("digits_cnn"), cnn_epochs, torch_cnn_run, 1.5),
        ("adding lstm", tasks.get("adding", cell="lstm"), lstm_steps, torch_lstm_run, 1.2),
    ):
        for n_runs in (1, 8):
            ours, compile_s = optbench_rate(task, budget, n_runs, reps)
            theirs = torch_rate(torch_fn, budget, n_runs, reps)
            rows.append((label, n_runs, ours, theirs, ours / theirs, target, compile_s))
    print(f"{'task':<12} {'runs':>4} {'optbench':>10} {'pytorch':>10} {'ratio':>6} "
          f"{'target':>6} {'compile_s':>9}   (run-steps/s, median of {reps})")  # fmt: skip
    for label, n, ours, theirs, ratio, target, comp in rows:
        print(f"{label:<12} {n:>4} {ours:>10.1f} {theirs:>10.1f} {ratio:>6.2f} "
              f"{target:>6.1f} {comp:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
