"""The training program: the runs of one task with one or more optimizers, jitted once.

:func:`train` builds one program for a task's groups (one per optimizer, side by side): the
optimizers' states, the epochs or steps (shuffling, augmentation and dropout drawn from each
run's seed), the evaluation or snapshots of the curve points, and divergence handling,
all under ``jax.vmap`` over a group's runs (grid points x seeds; for recurrent models
``lax.map``, the runs one after another). The initial parameters come from a smaller program
of the model alone (:mod:`.starts`) that every group of the model reuses, as is the gradient
flow's (:func:`.flow.program`, ~1.3 s of a recurrent program's compile). The curve points
of runs whose shards leave a core idle are evaluated by a program of their own while the
next chunk trains (:mod:`.evaluate`), the others' inside the training program. The program is
cut into chunks of equal shape executed one after another (a progress bar moves, Ctrl-C is
honoured between chunks), compiled once per call whatever the number of runs (the first
chunk starts its carry inside: ``carry = lax.cond(first, start, lambda: carry)``).
The runs are split into equal shards (:mod:`optbench.problems.tasks.shards`): one per CPU
core, executing the one compiled program at the same time in threads of their own, or one
per local device under ``shard_map``. A recurrent run's numbers (``lax.map``) do not
depend on its shard or the shard's width; a vmapped run's change in the last bits with the
width, which XLA vectorises by (batchnorm: float32 4e-4, float64 6e-12 after 2 epochs,
widths 2 and 4), so a cluster worker uses the driver's layout.

Curve points ("segments"): dataset tasks are evaluated every ``max(1, log_every //
steps_per_epoch)`` epochs and after the last; step tasks every ``log_every`` steps and after
the last. Segments past the budget, which pad the last chunk, are skipped by ``lax.cond``.

Metrics at each point:

- every task: ``train_loss`` is the mean of the minibatch data losses (no l1/l2 penalty)
  of the steps since the previous point, as training computed them (dropout on, batchnorm
  on each batch's statistics): it costs nothing extra, where a pass over the training set
  cost 4x the rest of the evaluation;
- ``val_loss``, ``test_loss``, ``test_accuracy`` and ``val_accuracy`` (for time-to-target)
  on the full validation and test sets (:mod:`.evaluate`; ``adding``: NaN accuracies);
- recurrent tasks: ``grad_norm_h0``, the mean since the previous point of the RMS over the
  batch of ``||d loss_i / d h_0,i||`` (NaN for the others); recurrent and MLP models: the
  gradient flow at each position, at a few points (:mod:`.flow`), measured on the
  parameters each run keeps at those points.

Divergence: a non-finite training loss or update stops a run: its parameters, optimizer
state and metrics stay as they were (``jnp.where`` on an alive mask), ``diverged`` is set,
``stop_step`` is the number of updates applied; the other runs go on.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Hashable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from optbench import compilation
from optbench.problems.tasks import data as data_mod
from optbench.problems.tasks import evaluate as evaluate_mod
from optbench.problems.tasks import flow as flow_mod
from optbench.problems.tasks import shards as _shards
from optbench.problems.tasks import starts as starts_mod
from optbench.problems.tasks.evaluate import dropout_rate
from optbench.problems.tasks.models import Model, loss_and_accuracy, weight_penalty
from optbench.problems.tasks.plan import Part, TaskResult, collect, execute, make_plan

METRICS = ("train_loss", "val_loss", "test_loss", "test_accuracy", "val_accuracy", "grad_norm_h0")

TRACED_PARAMS = frozenset({"dropout", "l1", "l2", "augment"})
"""Task parameters the program takes as per-run inputs, not constants: problems that differ
only in these share one compiled program (the others change its shapes or structure)."""

TRACE_COUNT = 0
"""How many times a chunk program was traced in this process (each trace is one compile)."""


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _select(alive, new, old):
    return jax.tree.map(lambda a, b: jnp.where(alive, a, b), new, old)


def train(
    model: Model,
    *,
    dataset: bool,
    parts: Sequence[Part],
    budget: int,
    batch_size: int,
    log_every: int,
    dtype,
    regularization: dict[str, np.ndarray] | None = None,
    seq_length: int | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    cache_key: Hashable | None = None,
    model_key: Hashable | None = None,
) -> list[TaskResult]:
    """Train the runs of every part (one optimizer's runs: :class:`.plan.Part`) of ``model``
    in one jitted program (see the module), and return each part's result.

    The parts are independent computations inside it, so a run's numbers are those of its
    part alone; six plain training scans of the digits CNN (one optimizer each) compiled in
    3.6 s as one program against 9.5 s as six (the same bits; 2 cores, 2026-12-04).

    ``dataset=True``: the digits split, ``budget`` epochs of shuffled minibatches (the last,
    incomplete one dropped). ``dataset=False``: the adding problem of length ``seq_length``,
    ``budget`` steps of fresh batches drawn from ``(seed, step)``. ``cache_key`` names the
    training program, ``model_key`` the model (its initialisation and gradient-flow
    programs) in the process's program cache; None: not kept.
    """
    sizes = [len(part.seeds) for part in parts]

    if dataset:
        split = data_mod.digits_split()
        arrays = (jnp.asarray(split.x_train, dtype), jnp.asarray(split.y_train))
        # the validation and test sets stacked: one evaluation pass
        x_vt = jnp.asarray(np.concatenate([split.x_val, split.x_test]), dtype)
        eval_arrays = (x_vt, jnp.asarray(split.y_val), jnp.asarray(split.y_test))
        n_train = split.y_train.shape[0]
        spe = n_train // batch_size
        plan = make_plan(budget, log_every, spe)
    else:
        x_va, y_va, x_te, y_te = data_mod.adding_eval_sets(seq_length)
        # x_va over x_te, one forward pass: 28 ms against 30 for two (the LSTM, 2 cores)
        x_vt = np.concatenate([x_va, x_te])
        arrays, eval_arrays = (), tuple(jnp.asarray(a, dtype) for a in (x_vt, y_va, y_te))
        plan = make_plan(budget, log_every, None)
        spe = None
    # the fixed batch the gradient flow is measured on: the validation set's first examples
    x_flow, y_flow = (a[: flow_mod.FLOW_BATCH] for a in eval_arrays[:2])
    recurrent = model.hidden is not None
    # The runs in equal shards executing one program at the same time (:mod:`.shards`),
    # evaluated beside the training where the shards leave a core idle (:mod:`.evaluate`)
    layouts = _shards.layouts(sizes)
    background = _shards.idle_core(layouts[0])
    program_arrays = (arrays, () if background else eval_arrays)
    nan = jnp.full((), jnp.nan, dtype)

    def running_mean(run):
        """The mean of the minibatch data losses since the last point (the last value when
        no step was taken, as after divergence)."""
        return jnp.where(run["count"] > 0, run["loss_sum"] / run["count"], run["last_train"])

    def init_run(make, start, hp):
        params, state, k_run = start
        opt_state = make(hp["opt"]).init(params)
        zero = jnp.zeros((), dtype)
        return {
            "params": params,
            "state": state,
            "opt": opt_state,
            "key": k_run,
            "alive": jnp.array(True),
            "stop": jnp.array(plan.total_steps, jnp.int32),
            **dict.fromkeys(("loss_sum", "gh0_sum", "count"), zero),
            **dict.fromkeys(("last_train", "last_gh0"), nan),
            # the parameters and state kept at the gradient-flow points
            **({"flow": jax.tree.map(flow_slots_of, (params, state))} if n_pos else {}),
        }

    def train_step(make, run, hp, step, x, y):
        opt, reg = make(hp["opt"]), hp["reg"]
        k_aug, k_drop = jax.random.split(
            jax.random.fold_in(jax.random.fold_in(run["key"], 0), step)
        )
        if "augment" in reg:  # both computed, one kept: augmentation on or off is traced
            x = jnp.where(reg["augment"], data_mod.random_shift(k_aug, x), x)
        l1, l2 = reg.get("l1", 0.0), reg.get("l2", 0.0)

        def loss_fn(params, h0):
            out, new_state = model.apply(
                params, run["state"], x, key=k_drop, train=True, h0=h0, **dropout_rate(reg)
            )
            data_loss, _ = loss_and_accuracy(model.loss, out, y)
            return data_loss + weight_penalty(params, l1, l2), (data_loss, new_state)

        if recurrent:
            h0 = jnp.zeros((x.shape[0], model.hidden), dtype)
            (total, (data_loss, new_state)), (grads, g_h0) = jax.value_and_grad(
                loss_fn, argnums=(0, 1), has_aux=True
            )(run["params"], h0)
            # Per-example gradient = batch size x the gradient of the batch mean.
            gh0 = jnp.sqrt(jnp.sum(jnp.square(g_h0)) * x.shape[0])
        else:
            (total, (data_loss, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                run["params"], None
            )
            gh0 = nan
        updates, new_opt = opt.update(grads, run["opt"], run["params"])
        new_params = optax.apply_updates(run["params"], updates)
        ok = jnp.isfinite(total) & _all_finite(updates)
        alive = run["alive"] & ok
        new = dict(run)
        new["params"] = _select(alive, new_params, run["params"])
        new["opt"] = _select(alive, new_opt, run["opt"])
        new["state"] = _select(alive, new_state, run["state"])
        new["stop"] = jnp.where(run["alive"] & ~ok, jnp.asarray(step, jnp.int32), run["stop"])
        new["alive"] = alive
        new["loss_sum"] = run["loss_sum"] + jnp.where(alive, data_loss, 0)
        new["gh0_sum"] = run["gh0_sum"] + jnp.where(alive, gh0, 0)
        new["count"] = run["count"] + alive.astype(dtype)
        return new

    if dataset:

        def train_segment(make, run, hp, seg, arr):
            def epoch_body(run, epoch):
                def do_epoch(run):
                    k_perm = jax.random.fold_in(jax.random.fold_in(run["key"], 1), epoch)
                    perm = jax.random.permutation(k_perm, n_train)[: spe * batch_size]
                    perm = perm.reshape(spe, batch_size)

                    def step_body(run, j):
                        idx = perm[j]
                        step = epoch * spe + j
                        x, y = arr[0][idx], arr[1][idx]
                        return train_step(make, run, hp, step, x, y), None

                    return lax.scan(step_body, run, jnp.arange(spe))[0]

                return lax.cond(epoch < budget, do_epoch, lambda r: r, run), None

            epochs = seg * plan.seg_units + jnp.arange(plan.seg_units)
            return lax.scan(epoch_body, run, epochs)[0]

    else:

        def train_segment(make, run, hp, seg, arr):
            def step_body(run, step):
                def do_step(run):
                    k_batch = jax.random.fold_in(jax.random.fold_in(run["key"], 2), step)
                    x, y = data_mod.adding_batch(k_batch, batch_size, seq_length, dtype)
                    return train_step(make, run, hp, step, x, y)

                return lax.cond(step < plan.total_steps, do_step, lambda r: r, run), None

            steps = seg * plan.seg_units + jnp.arange(plan.seg_units)
            return lax.scan(step_body, run, steps)[0]

    # Gradient flow (:mod:`.flow`) at initialisation and a few curve points, measured after
    # the training (:func:`.flow.program`) on the parameters kept then (``run["flow"]``).
    n_pos = flow_mod.positions(model, x_flow)
    flow_slots = flow_mod.slots(plan.n_points)
    n_flow = int(flow_slots.max()) + 1

    def flow_slots_of(a):
        return jnp.zeros((n_flow, *a.shape), a.dtype)

    def snapshot(run):
        return run["params"], run["state"]

    def keep_flow(run, seg):
        if not n_pos:
            return run
        snapshot = (run["params"], run["state"])
        return dict(run, flow=flow_mod.keep(run["flow"], jnp.asarray(flow_slots)[seg], snapshot))

    def segment(make, run, hp, seg, arr):
        train_arr, eval_arr = arr

        def do(run):
            run = dict(run, loss_sum=jnp.zeros((), dtype), gh0_sum=jnp.zeros((), dtype))
            run["count"] = jnp.zeros((), dtype)
            run = train_segment(make, run, hp, seg, train_arr)
            train_loss = running_mean(run)
            gh0 = jnp.where(run["count"] > 0, run["gh0_sum"] / run["count"], run["last_gh0"])
            run["last_train"], run["last_gh0"] = train_loss, gh0
            if background:  # the point's snapshot, evaluated by a program of its own
                cols = jnp.full((4,), jnp.nan, dtype)
            else:
                cols = evaluate_mod.measure(model, dataset, *snapshot(run), hp["reg"], eval_arr)
            metrics = jnp.concatenate([train_loss[None], cols, gh0[None]])
            return keep_flow(run, seg), (metrics, snapshot(run) * background)  # or ()

        def pad(run):
            return run, (jnp.full((len(METRICS),), jnp.nan, dtype), snapshot(run) * background)

        return lax.cond(seg < plan.n_points, do, pad, run)

    def one_chunk(make, carry, first, seg0, hp, start, arr):
        carry = lax.cond(first, lambda: init_run(make, start, hp), lambda: carry)

        def body(run, seg):
            return segment(make, run, hp, seg, arr)

        return lax.scan(body, carry, seg0 + jnp.arange(plan.points_per_chunk))

    def runs(make, carry, first, seg0, hp, start, arr):
        if recurrent:
            # One run after another (lax.map), still one program: vmapped, the recurrent
            # layer's small matmuls become batched ones and its weight gradients need
            # transposes of every stored timestep, slower on the CPU than the runs in turn.
            def one(run):
                return one_chunk(make, run[0], first, seg0, run[1], run[2], arr)

            return lax.map(one, (carry, hp, start))
        mapped = jax.vmap(functools.partial(one_chunk, make), in_axes=(0, None, None, 0, 0, None))
        return mapped(carry, first, seg0, hp, start, arr)

    def chunk(carries, first, seg0, hps, starts, arr):
        """A chunk of every part's runs: the parts side by side, independent."""
        global TRACE_COUNT
        TRACE_COUNT += 1
        makes = [part.make_optimizer for part in parts]
        each = zip(makes, carries, hps, starts, strict=True)
        outs = [runs(make, c, first, seg0, hp, s, arr) for make, c, hp, s in each]
        return [c for c, _ in outs], [t for _, (t, _) in outs], [s for _, (_, s) in outs]

    program = _shards.jit(chunk, (True, False, False, True, True, False))

    def inputs(part: Part, idx: np.ndarray):  # a shard's (hyperparameters, seeds)
        return jax.tree.map(jnp.asarray, part.inputs(idx, regularization or {}, dtype))

    shard_inputs = [  # per shard: each part's
        [inputs(*a) for a in zip(parts, shard, strict=True)] for shard in zip(*layouts, strict=True)
    ]
    # the keys: the model's or the group's, and the runs' shapes (those of one shard)
    shapes_key = str(jax.tree.map(lambda a: (a.shape, a.dtype), shard_inputs[0]))
    starts, init_s = [], 0.0  # per shard: each part's initial parameters, states and keys
    for shard in shard_inputs:
        made = [starts_mod.initial(model, dtype, model_key, seed) for _, seed in shard]
        starts.append([start for start, _ in made])
        init_s += sum(seconds for _, seconds in made)
    shapes = [
        jax.eval_shape(jax.vmap(functools.partial(init_run, part.make_optimizer)), first, hp)
        for part, first, (hp, _) in zip(parts, starts[0], shard_inputs[0], strict=True)
    ]
    carries = [jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)] * len(shard_inputs)

    flows = []  # per part: the flow's program and its compile seconds
    for n in sizes if n_pos else ():  # the initial and the kept parameters of every run
        snapshots = jax.tree.map(
            lambda a, n=n: jax.ShapeDtypeStruct((n * (1 + n_flow), *a.shape[1:]), a.dtype),
            starts[0][0][:2],
        )
        flow_key = None if model_key is None else ("flow", model_key, str(dtype), n, n_flow)
        loss = functools.partial(loss_and_accuracy, model.loss)
        flows.append(flow_mod.program(model, loss, flow_key, snapshots, x_flow, y_flow))

    def lower():
        hps = [hp for hp, _ in shard_inputs[0]]
        return program.lower(carries[0], True, 0, hps, starts[0], program_arrays)

    # and where the points are evaluated (one run on two cores, or two: the same shapes)
    key = None if cache_key is None else (cache_key, shapes_key, background)
    # the evaluation's program, beside the training's (keyed as it: the problems that share
    # a training program differ only in traced values); shapes: those of a shard
    ppc, evaluation, eval_s = plan.points_per_chunk, None, 0.0
    if background:
        evaluation, eval_s = evaluate_mod.program(
            model,
            dataset=dataset,
            key=None if key is None else ("evaluate", *key, ppc),
            snapshots=[evaluate_mod.at_points(snapshot(shape), ppc) for shape in shapes],
            regs=[hp["reg"] for hp, _ in shard_inputs[0]],
            arrays=eval_arrays,
        )
    # last: under compilation.only_compile the training program's compile ends the call
    compiled, compile_s, _ = compilation.program(key, lower, options=dict(model.compile_options))
    compile_s += eval_s
    program_name = "" if key is None else compilation.program_id(key)
    shard_args = [
        ([hp for hp, _ in shard], start) for shard, start in zip(shard_inputs, starts, strict=True)
    ]

    def run_chunk(c, shard):
        carry, (hps, start) = shard
        carry, tables, snaps = compiled(carry, c == 0, c * ppc, hps, start, program_arrays)
        return carry, [np.asarray(t) for t in tables], snaps  # tables: [per, ppc, 6]; blocks

    def evaluate(i, snaps):  # shard i's snapshots
        return evaluation(snaps, [hp["reg"] for hp in shard_args[i][0]])  # type: ignore[misc]

    shards = list(zip(carries, shard_args, strict=True))
    tables, carries, run_s = execute(
        plan, run_chunk, shards, sizes, on_chunk, evaluate if evaluation else None
    )
    results = []
    for k, (n, table) in enumerate(zip(sizes, tables, strict=True)):

        def runs_of(trees, n=n):  # the shards' arrays joined, the padding runs dropped
            return jax.tree.map(lambda *a: np.concatenate(a)[:n], *trees)

        part_s = run_s * n / sum(sizes)  # the chunks' time shared out by number of runs
        part_compile_s = (compile_s + init_s if k == 0 else 0.0) + (flows[k][1] if flows else 0)
        flow = np.zeros((n, 1 + n_flow, n_pos), dtype)
        if n_pos:
            t0 = time.perf_counter()
            first = runs_of([s[k][:2] for s in starts])
            kept = runs_of([c[k]["flow"] for c in carries])
            flow = np.asarray(flows[k][0](flow_mod.stack(first, kept), x_flow, y_flow))
            flow = flow.reshape(n, 1 + n_flow, n_pos)
            part_s += time.perf_counter() - t0
        curves = dict(zip(METRICS, np.moveaxis(table, 2, 0), strict=True))
        alive, stop = (runs_of([c[k][name] for c in carries]) for name in ("alive", "stop"))
        results.append(
            collect(plan, curves, ~alive, stop, flow, part_compile_s, program_name, part_s)
        )
    return results
