"""Compile time of a task group's programs against a plain jitted training scan of the same model.

For each workload, one group as the shipped configs run it (3 learning rates x 3 seeds of
Adam, the config's budget and batch size, the default curve points), each side in a fresh
process with no compilation cache, sides alternating over the repetitions:

- ``optbench``: ``task.run(...)`` of the group, up to its programs compiled
  (``compilation.prepare``, as the sweep compiles ahead): the data, its initialisation
  program (shared by every optimizer of the model; compiled at -O1) and that program's run,
  and its training program (the epochs, the evaluation of the full validation and test sets
  at every curve point, dropout, l1/l2 and augmentation as traced inputs, divergence
  handling, the gradient flow) traced, lowered and compiled (the CNN's at LLVM -O1:
  ``models.MATMUL_BOUND``). The runs are split into one shard per core, so the program is
  compiled for ``ceil(9 / cores)`` runs.
- ``plain``: what a user writes with the same model functions (``model.init`` and
  ``model.apply`` of :mod:`optbench.problems.tasks.models`) and optax: ``jax.jit`` of a
  ``jax.vmap`` over the 9 runs of initialisation, a ``lax.scan`` over the curve points,
  each a ``lax.scan`` of the minibatch steps, then the data loss on the full validation and
  test sets; ``jit(...).lower(...).compile()`` timed (tracing, lowering and compiling; its
  data are ready before the clock starts).

Printed: the median seconds (range) of optbench's whole group (the first group of a model
also compiles the model's shared programs: initialisation and, for recurrent and MLP
models, the gradient flow's measurement), of its training program alone (what every other
optimizer's group of the model compiles), and of the plain scan; the medians of the paired
ratios to the plain scan (the bar for a task program: at most 1.5).

    python benchmarks/compile.py             # 3 repetitions, about 5 minutes
    python benchmarks/compile.py --repeats 1 --only digits_cnn
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

WORKLOADS = {
    # label: (task, params, budget, batch size)
    "digits_cnn": ("digits_cnn", {}, 20, 64),
    "digits_cnn_bn": ("digits_cnn", {"batchnorm": True}, 20, 64),
    "digits_mlp": ("digits_mlp", {}, 20, 64),
    "digits_lstm": ("digits_rnn", {"cell": "lstm"}, 20, 64),
    "adding_lstm": ("adding", {"cell": "lstm"}, 2000, 64),
    "adding_gru": ("adding", {"cell": "gru"}, 2000, 64),
    "adding_rnn": ("adding", {"cell": "rnn"}, 2000, 64),
}
N_RUNS = 9


def _optbench(label: str) -> tuple[float, float]:
    """The group's programs: the seconds until they are all compiled, and the training
    program's own (its lower + compile)."""
    import time

    import jax.numpy as jnp
    import numpy as np
    import optax

    import optbench.problems.tasks as tasks
    from optbench import compilation
    from optbench.problems.tasks.problem import CURVE_POINTS, STEP_CURVE_POINTS

    name, params, budget, batch = WORKLOADS[label]
    task = tasks.get(name, **params)
    points = CURVE_POINTS if task.budget == "epochs" else STEP_CURVE_POINTS

    def group():
        return task.run(
            lambda h: optax.adam(h["learning_rate"]),
            {"learning_rate": np.repeat([3e-4, 1e-3, 3e-3], 3)},
            np.tile([0, 1, 2], 3),
            budget=budget,
            batch_size=batch,
            log_every=max(1, task.num_steps(budget, batch) // points),
            dtype=jnp.float32,
            cache_key=("benchmark", label),
        )

    # each program's lower + compile seconds, by kind: the model's shared ones, "init" and
    # "flow", and the group's training program
    spent: dict[str, float] = {}
    program = compilation.program

    def timed(key, lower, **kw):
        t = time.perf_counter()
        try:
            return program(key, lower, **kw)
        finally:
            kind = key[0] if key[0] in ("init", "flow") else "training"
            spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - t

    compilation.program = timed
    # up to its programs compiled (the data, the shared programs and the initialisation's
    # run, the training program traced, lowered and compiled), as the sweep compiles ahead
    t0 = time.perf_counter()
    compilation.prepare(group)
    return time.perf_counter() - t0, spent["training"]


def _plain(label: str) -> float:
    """The plain jitted training scan; returns its lower + compile seconds."""
    import time

    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    import optbench.problems.tasks as tasks
    from optbench.problems.tasks import data
    from optbench.problems.tasks.problem import CURVE_POINTS, STEP_CURVE_POINTS

    name, params, budget, batch = WORKLOADS[label]
    task = tasks.get(name, **params)
    model = task._model
    dataset = task.budget == "epochs"

    def loss(out, y):
        if model.loss == "mse":
            return jnp.mean((out - y) ** 2)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), y[:, None], 1))

    if dataset:
        s = data.digits_split()
        x_tr, y_tr = jnp.asarray(s.x_train), jnp.asarray(s.y_train)
        evals = [(jnp.asarray(s.x_val), jnp.asarray(s.y_val)),
                 (jnp.asarray(s.x_test), jnp.asarray(s.y_test))]  # fmt: skip
        spe = x_tr.shape[0] // batch
        per_point = max(1, max(1, budget * spe // CURVE_POINTS) // spe)  # epochs per point
        n_points = -(-budget // per_point)
    else:
        xv, yv, xt, yt = (jnp.asarray(a) for a in data.adding_eval_sets(params.get("length", 50)))
        evals = [(xv, yv), (xt, yt)]
        per_point = max(1, budget // STEP_CURVE_POINTS)
        n_points = -(-budget // per_point)

    def one_run(seed, lr):
        opt = optax.adam(lr)
        k_init, key = jax.random.split(jax.random.PRNGKey(seed))
        params0, state0 = model.init(k_init, jnp.float32)

        def step(carry, xy):
            p, st, o = carry
            x, y, k = xy

            def f(p):
                out, new_st = model.apply(p, st, x, key=k, train=True)
                return loss(out, y), new_st

            (value, new_st), g = jax.value_and_grad(f, has_aux=True)(p)
            u, o = opt.update(g, o, p)
            return (optax.apply_updates(p, u), new_st, o), value

        def epoch(carry, e):  # dataset tasks: shuffled minibatches, the last one dropped
            k = jax.random.fold_in(key, e)
            perm = jax.random.permutation(k, x_tr.shape[0])[: spe * batch].reshape(spe, batch)
            keys = jax.random.split(k, spe)
            return lax.scan(step, carry, (x_tr[perm], y_tr[perm], keys))

        def fresh(carry, i):  # the adding problem: a fresh batch each step
            k = jax.random.fold_in(key, i)
            x, y = data.adding_batch(k, batch, params.get("length", 50))
            return step(carry, (x, y, k))

        def point(carry, j):
            units = j * per_point + jnp.arange(per_point)
            carry, losses = lax.scan(epoch if dataset else fresh, carry, units)
            p, st, _ = carry
            ev = [loss(model.apply(p, st, x, train=False)[0], y) for x, y in evals]
            return carry, jnp.stack([losses.mean(), *ev])

        init = (params0, state0, opt.init(params0))
        return lax.scan(point, init, jnp.arange(n_points))[1]

    seeds = jnp.tile(jnp.arange(3, dtype=jnp.uint32), 3)
    lrs = jnp.repeat(jnp.asarray([3e-4, 1e-3, 3e-3], jnp.float32), 3)
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(one_run)).lower(seeds, lrs).compile()
    assert compiled is not None
    return time.perf_counter() - t0


def _child(side: str, label: str) -> list[float]:
    env = {
        **os.environ,
        "OPTBENCH_COMPILATION_CACHE": "off",
        "JAX_ENABLE_COMPILATION_CACHE": "false",
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, label],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [float(v) for v in out.stdout.strip().splitlines()[-1].split()]


def main() -> None:
    """Measure and print the table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, label = args.child
        got = _optbench(label) if side == "optbench" else (_plain(label),)
        print(" ".join(str(v) for v in got))
        return
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    med = statistics.median
    print(f"{'workload':<14} {'optbench, all':>17} {'training program':>17} "
          f"{'plain scan':>17} {'all/plain':>10} {'training/plain':>15}")  # fmt: skip

    def cell(v: list[float]) -> str:
        return f"{med(v):>5.2f} ({min(v):.2f}-{max(v):.2f})"

    for label in args.only:
        ours, training, plain = [], [], []
        for rep in range(args.repeats):
            order = ("optbench", "plain") if rep % 2 == 0 else ("plain", "optbench")
            got = {side: _child(side, label) for side in order}
            ours.append(got["optbench"][0])
            training.append(got["optbench"][1])
            plain.append(got["plain"][0])
        r_all = [a / b for a, b in zip(ours, plain, strict=True)]
        r_tr = [a / b for a, b in zip(training, plain, strict=True)]
        print(f"{label:<14} {cell(ours):>17} {cell(training):>17} {cell(plain):>17} "
              f"{med(r_all):>10.2f} {med(r_tr):>7.2f} ({min(r_tr):.2f}-{max(r_tr):.2f})",
              flush=True)  # fmt: skip
    print(f"(medians of {args.repeats} fresh processes per side, alternating; load now "
          f"{os.getloadavg()[0]:.1f}; ratio: the median of the paired ratios)")  # fmt: skip


if __name__ == "__main__":
    main()
