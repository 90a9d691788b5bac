"""Surface sweeps: optbench's engine against hand-written optax and a PyTorch eager loop.

Work: Adam on Rosenbrock, 1024 learning rates x 10,000 steps, loss logged every 100 steps.

  (a) optbench: ``optbench.run`` on that config (one jitted program: vmap over the grid,
      nested scans over the steps; also records the trajectories for the animations);
  (b) optax by hand: ``inject_hyperparams(adam)`` + ``lax.scan`` + ``vmap``, recording the
      loss every step, subsampled afterwards;
  (c) ``torch.optim.Adam`` in an eager loop, one run.

Prints run-steps/s (medians of repeated warm runs, the two JAX sides alternating), the
ratio (median of the paired ratios), and compile times
separately. Run: ``python benchmarks/surfaces.py`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optbench
from optbench.api import machine_meta


def rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


CONFIG = """
name = "bench"
steps = {steps}
log_every = 100
[[problem]]
surface = "rosenbrock"
start = [-1.2, 1.0]
[optimizer.adam]
learning_rate = {{ logspace = [1e-4, 1e-1], num = {grid} }}
"""


def optbench_once(cfg: str) -> tuple[float, float, float]:
    """(compile s, program s, end-to-end s) of one ``optbench.run`` of ``cfg``."""
    t = time.perf_counter()
    res = optbench.run(cfg)
    wall = time.perf_counter() - t
    (group,) = res.meta["groups"]
    return group["compile_s"], group["run_s"], wall


def optax_program(grid: int, steps: int) -> tuple[float, Callable[[], float]]:
    """(compile s, a function timing one run) of the hand-written optax reference."""
    lrs = jnp.asarray(np.geomspace(1e-4, 1e-1, grid), jnp.float32)
    x0 = jnp.asarray([-1.2, 1.0], jnp.float32)

    def one(lr):
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=lr)

        def step(carry, _):
            x, state = carry
            loss, g = jax.value_and_grad(rosenbrock)(x)
            updates, state = opt.update(g, state, x)
            return (optax.apply_updates(x, updates), state), loss

        (x, _), losses = jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)
        return losses[::100], x

    program = jax.jit(jax.vmap(one))
    t = time.perf_counter()
    compiled = program.lower(lrs).compile()
    compile_s = time.perf_counter() - t

    def once() -> float:
        t = time.perf_counter()
        jax.block_until_ready(compiled(lrs))
        return time.perf_counter() - t

    once()  # warm-up
    return compile_s, once


def bench_torch(steps: int) -> float:
    """Seconds of one eager torch.optim.Adam run."""
    import torch

    torch.set_num_threads(1)
    x = torch.tensor([-1.2, 1.0], requires_grad=True)
    opt = torch.optim.Adam([x], lr=1e-2)
    t = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    grid, steps, torch_steps = (64, 1000, 500) if args.quick else (1024, 10_000, 5_000)
    repeats = 2 if args.quick else args.repeats

    meta = machine_meta()
    print(f"machine: {meta['processor']}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"jax {meta['jax']}, optax {optax.__version__}; {meta['date']}")
    print(f"work: Adam x Rosenbrock, {grid} learning rates x {steps} steps, log every 100\n")

    # The two sides alternate, so that a busy moment of the machine hits both alike.
    cfg = CONFIG.format(steps=steps, grid=grid)
    ox_compile, optax_once = optax_program(grid, steps)
    ob_compile = optbench_once(cfg)[0]  # the first run: compile time of a fresh process
    ob, ox = [], []
    for _ in range(repeats):
        ob.append(optbench_once(cfg))
        ox.append(optax_once())
    ob_run = statistics.median(r[1] for r in ob)
    ob_wall = statistics.median(r[2] for r in ob)
    ox_run = statistics.median(ox)
    ratio = statistics.median(x / r[1] for r, x in zip(ob, ox, strict=True))
    th = bench_torch(torch_steps)

    work = grid * steps
    rows = [
        ("optbench engine (program)", ob_compile, work / ob_run),
        ("optbench.run end to end, with compile", None, work / ob_wall),
        ("optax by hand (record every step)", ox_compile, work / ox_run),
        ("torch.optim eager, one run", None, torch_steps / th),
    ]
    print(f"{'':38s} {'compile s':>10s} {'run-steps/s':>14s}")
    for name, comp, rate in rows:
        c = f"{comp:10.3f}" if comp is not None else f"{'-':>10s}"
        print(f"{name:38s} {c} {rate:14.3e}")
    print()
    print(f"optbench / optax   : {ratio:6.2f}x  (median of paired runs; target >= 1.0, aim 2.0)")
    print(
        f"optbench / torch   : {(work / ob_run) / (torch_steps / th):8.0f}x per run-step "
        "(target >= 10,000x)"
    )
    print(f"compile one group  : {ob_compile:.3f} s (target <= 1 s)")


if __name__ == "__main__":
    main()
