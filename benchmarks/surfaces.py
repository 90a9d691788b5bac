"""Surface sweeps: a whole ``optbench.run`` call against hand-written optax and PyTorch.

Work: Adam on Rosenbrock, 1024 learning rates x 10,000 steps, loss logged every 100 steps.

  (a) optbench: ``optbench.run`` on that config, the whole call as a user makes it (config
      validation, the program, the tidy results; warm: the second call in the process,
      whose program comes from the in-process cache). It also keeps the trajectories for
      the animations, final and best loss and steps-to-tolerance exact at every step;
  (b) optax by hand, as a user writes it: ``inject_hyperparams(adam)`` + ``lax.scan`` +
      ``vmap``, jitted once, keeping the loss and the point at every step, the arrays
      brought back to numpy;
  (c) ``torch.optim.Adam`` in an eager loop, one run.

Prints the whole-call times (medians with their ranges, the two JAX sides alternating), the
ratio (median of the paired ratios), the kernel-only figures (the program alone, labelled
so), and compile times. Run: ``python benchmarks/surfaces.py`` (``--quick`` for a smoke
test).
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

        def step_kept(carry, _):
            carry, loss = step(carry, None)
            return carry, (loss, carry[0])

        _, (losses, xs) = jax.lax.scan(step_kept, (x0, opt.init(x0)), None, length=steps)
        return losses, xs

    program = jax.jit(jax.vmap(one))
    t = time.perf_counter()
    compiled = program.lower(lrs).compile()
    compile_s = time.perf_counter() - t

    def once() -> float:
        t = time.perf_counter()
        losses, xs = compiled(lrs)
        np.asarray(losses), np.asarray(xs)
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
    ob_compile, _, ob_cold = optbench_once(cfg)  # the first call compiles
    ob, ox = [], []
    for _ in range(repeats):
        ob.append(optbench_once(cfg))
        ox.append(optax_once())
    walls = [r[2] for r in ob]
    kernels = [r[1] for r in ob]
    ratio = statistics.median(x / r[2] for r, x in zip(ob, ox, strict=True))
    kernel_ratio = statistics.median(x / r[1] for r, x in zip(ob, ox, strict=True))
    th = bench_torch(torch_steps)

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"

    work = grid * steps
    print("whole calls, warm (medians of paired runs, range):")
    print(f"  optbench.run                      {spread(walls)}")
    print(f"  optax by hand, jitted once        {spread(ox)}")
    print(f"  optbench / optax                  {ratio:.2f}x  (goal >= 1.5x, aim 3x)")
    print(f"  first optbench.run, compiling     {ob_cold:.3f} s (of it compile {ob_compile:.3f} s)")
    print(f"  optax compile                     {ox_compile:.3f} s")
    print("kernel only (the compiled program, no validation or results):")
    rate = work / statistics.median(kernels)
    print(f"  optbench program                  {spread(kernels)}  {rate:.3e} run-steps/s")
    print(f"  optbench / optax, kernel          {kernel_ratio:.2f}x")
    print(
        f"  torch.optim eager, one run        {torch_steps / th:.3e} run-steps/s; optbench "
        f"{rate / (torch_steps / th):.0f}x per run-step"
    )


if __name__ == "__main__":
    main()
