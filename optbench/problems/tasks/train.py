"""The training program: a whole sweep of runs of one task with one optimizer, jitted once.

:func:`train` builds one program for a (task, optimizer) group: the optimizer's state, the
epochs or steps (shuffling, augmentation and dropout drawn from each run's seed),
evaluation on the full validation and test sets, and divergence handling, all under
``jax.vmap`` over the runs (grid points x seeds; for recurrent models ``lax.map``, the runs
one after another). The initial parameters come from a smaller program of the model alone
(``init_models``) that every optimizer's group of the model reuses, as is the gradient
flow's (:func:`.flow.program`, ~1.3 s of a recurrent program's compile). The program is
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
- dataset tasks: ``val_loss``, ``test_loss`` and ``test_accuracy`` on the full validation
  and test sets (and ``val_accuracy``, the validation set's accuracy, for time-to-target),
  in evaluation mode (no dropout, batchnorm on its running averages), data loss only, in
  one forward pass over both sets, ``EVAL_BATCH`` examples at a time;
- ``adding``: ``val_loss`` and ``test_loss`` on two fixed sets of 1,000 sequences, in one
  forward pass over both; ``test_accuracy`` and ``val_accuracy`` are NaN;
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
from collections.abc import Callable, Hashable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from optbench import compilation
from optbench.problems.tasks import data as data_mod
from optbench.problems.tasks import flow as flow_mod
from optbench.problems.tasks import shards as _shards
from optbench.problems.tasks.models import (
    Model,
    evaluation_outputs,
    loss_and_accuracy,
    weight_penalty,
)
from optbench.problems.tasks.plan import TaskResult, collect, execute, make_plan

METRICS = ("train_loss", "val_loss", "test_loss", "test_accuracy", "val_accuracy", "grad_norm_h0")
EVAL_BATCH = 128
"""Examples per forward pass when evaluating (one pass over all 719 took 3x as long)."""

TRACED_PARAMS = frozenset({"dropout", "l1", "l2", "augment"})
"""Task parameters the program takes as per-run inputs, not constants: problems that differ
only in these share one compiled program (the others change its shapes or structure)."""

INIT_OPTIONS = compilation.LLVM_O1
"""XLA options of the initialisation program, which runs once: LLVM's -O1 compiled a digits
CNN's in 0.5 s against 2.0 s at the default -O2, and gives the same bits (checked for every
task's model in float32 and float64; ``tests/test_compile_cost.py``)."""

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
    make_optimizer: Callable[[dict], optax.GradientTransformation],
    hparams: dict[str, np.ndarray],
    seeds: np.ndarray,
    budget: int,
    batch_size: int,
    log_every: int,
    dtype,
    regularization: dict[str, np.ndarray] | None = None,
    seq_length: int | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    cache_key: Hashable | None = None,
    model_key: Hashable | None = None,
) -> TaskResult:
    """Train ``len(seeds)`` runs of ``model`` in one jitted, vmapped program (see the module).

    ``dataset=True``: the digits split, ``budget`` epochs of shuffled minibatches (the last,
    incomplete one dropped). ``dataset=False``: the adding problem of length ``seq_length``,
    ``budget`` steps of fresh batches drawn from ``(seed, step)``. ``cache_key`` names the
    training program, ``model_key`` the model (its initialisation and gradient-flow
    programs) in the process's program cache; None: not kept.
    """
    seeds = np.asarray(seeds)
    n_runs = seeds.shape[0]
    # Per-run traced inputs: the optimizer's hyperparameters and the regularisation values,
    # so that problems differing only in those share one compiled program.
    hp_np = {
        "opt": {k: np.broadcast_to(np.asarray(v, dtype), (n_runs,)) for k, v in hparams.items()},
        "reg": {
            k: np.broadcast_to(np.asarray(v, bool if k == "augment" else dtype), (n_runs,))
            for k, v in (regularization or {}).items()
        },
    }
    seeds_np = seeds.astype(np.uint32)

    if dataset:
        split = data_mod.digits_split()
        # the training set, and the validation and test sets stacked (one evaluation pass)
        x_vt = np.concatenate([split.x_val, split.x_test])
        xs, ys = (split.x_train, x_vt), (split.y_train, split.y_val, split.y_test)
        xs, ys = [jnp.asarray(a, dtype) for a in xs], [jnp.asarray(a) for a in ys]
        arrays = (xs[0], ys[0], xs[1], ys[1], ys[2])
        n_train = split.y_train.shape[0]
        spe = n_train // batch_size
        plan = make_plan(budget, log_every, spe)
    else:
        x_va, y_va, x_te, y_te = data_mod.adding_eval_sets(seq_length)
        # x_va over x_te, one forward pass: 28 ms against 30 for two (the LSTM, 2 cores)
        arrays = tuple(jnp.asarray(a, dtype) for a in (np.concatenate([x_va, x_te]), y_va, y_te))
        plan = make_plan(budget, log_every, None)
        spe = None
    # the fixed batch the gradient flow is measured on: the validation set's first examples
    x_flow, y_flow = (arrays[2], arrays[3]) if dataset else (arrays[0], arrays[1])
    x_flow, y_flow = x_flow[: flow_mod.FLOW_BATCH], y_flow[: flow_mod.FLOW_BATCH]
    recurrent = model.hidden is not None
    nan = jnp.full((), jnp.nan, dtype)

    def running_mean(run):
        """The mean of the minibatch data losses since the last point (the last value when
        no step was taken, as after divergence)."""
        return jnp.where(run["count"] > 0, run["loss_sum"] / run["count"], run["last_train"])

    def init_models(seeds):
        """The runs' initial parameters, model states and keys, in a program of its own that
        every optimizer of the model reuses (its random draws were 40% of a digits CNN
        training program's compile). The seeds one after another: vmapped, an orthogonal
        init's matvecs were batched ones, plain for a shard of one run, with other bits."""

        def one(seed):
            k_init, k_run = jax.random.split(jax.random.PRNGKey(seed))
            return (*model.init(k_init, dtype), k_run)

        return lax.map(one, seeds)

    def init_run(start, hp):
        params, state, k_run = start
        opt_state = make_optimizer(hp["opt"]).init(params)
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

    def dropout_rate(reg):  # the run's rate, in training and evaluation (test_scaling uses it)
        return {"dropout": reg["dropout"]} if "dropout" in reg else {}

    def train_step(run, hp, step, x, y):
        opt, reg = make_optimizer(hp["opt"]), hp["reg"]
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
        x_tr, y_tr, x_vt, y_va, y_te = range(5)

        def train_segment(run, hp, seg, arr):
            def epoch_body(run, epoch):
                def do_epoch(run):
                    k_perm = jax.random.fold_in(jax.random.fold_in(run["key"], 1), epoch)
                    perm = jax.random.permutation(k_perm, n_train)[: spe * batch_size]
                    perm = perm.reshape(spe, batch_size)

                    def step_body(run, j):
                        idx = perm[j]
                        step = epoch * spe + j
                        return train_step(run, hp, step, arr[x_tr][idx], arr[y_tr][idx]), None

                    return lax.scan(step_body, run, jnp.arange(spe))[0]

                return lax.cond(epoch < budget, do_epoch, lambda r: r, run), None

            epochs = seg * plan.seg_units + jnp.arange(plan.seg_units)
            return lax.scan(epoch_body, run, epochs)[0]

        n_val = split.y_val.shape[0]

        def measure(run, hp, arr):
            # Validation and test sets in one pass; train_loss is the minibatches' mean: a pass
            # over the training set cost 4x the other two, 1.8x the training (digits_cnn).
            p, s = run["params"], run["state"]
            out = evaluation_outputs(model, p, s, arr[x_vt], EVAL_BATCH, **dropout_rate(hp["reg"]))
            val_loss, val_acc = loss_and_accuracy(model.loss, out[:n_val], arr[y_va])
            test_loss, test_acc = loss_and_accuracy(model.loss, out[n_val:], arr[y_te])
            return running_mean(run), val_loss, test_loss, test_acc, val_acc

    else:

        def train_segment(run, hp, seg, arr):
            def step_body(run, step):
                def do_step(run):
                    k_batch = jax.random.fold_in(jax.random.fold_in(run["key"], 2), step)
                    x, y = data_mod.adding_batch(k_batch, batch_size, seq_length, dtype)
                    return train_step(run, hp, step, x, y)

                return lax.cond(step < plan.total_steps, do_step, lambda r: r, run), None

            steps = seg * plan.seg_units + jnp.arange(plan.seg_units)
            return lax.scan(step_body, run, steps)[0]

        def measure(run, hp, arr):
            out = model.apply(run["params"], run["state"], arr[0], train=False)[0]
            n_val = arr[1].shape[0]
            val_loss = loss_and_accuracy(model.loss, out[:n_val], arr[1])[0]
            test_loss = loss_and_accuracy(model.loss, out[n_val:], arr[2])[0]
            return running_mean(run), val_loss, test_loss, nan, nan

    # Gradient flow (:mod:`.flow`): at initialisation and at a few curve points, measured
    # after the training by a program of the model alone (:func:`.flow.program`) on the
    # parameters each run keeps at those points (``run["flow"]``).
    n_pos = flow_mod.positions(model, x_flow)
    flow_slots = flow_mod.slots(plan.n_points)
    n_flow = int(flow_slots.max()) + 1

    def flow_slots_of(a):
        return jnp.zeros((n_flow, *a.shape), a.dtype)

    def keep_flow(run, seg):
        if not n_pos:
            return run
        snapshot = (run["params"], run["state"])
        return dict(run, flow=flow_mod.keep(run["flow"], jnp.asarray(flow_slots)[seg], snapshot))

    def segment(run, hp, seg, arr):
        def do(run):
            run = dict(run, loss_sum=jnp.zeros((), dtype), gh0_sum=jnp.zeros((), dtype))
            run["count"] = jnp.zeros((), dtype)
            run = train_segment(run, hp, seg, arr)
            train_loss, val_loss, test_loss, test_acc, val_acc = measure(run, hp, arr)
            gh0 = jnp.where(run["count"] > 0, run["gh0_sum"] / run["count"], run["last_gh0"])
            run["last_train"], run["last_gh0"] = train_loss, gh0
            metrics = jnp.stack([train_loss, val_loss, test_loss, test_acc, val_acc, gh0])
            return keep_flow(run, seg), metrics

        def pad(run):
            return run, jnp.full((len(METRICS),), jnp.nan, dtype)

        return lax.cond(seg < plan.n_points, do, pad, run)

    def chunk(carry, first, seg0, hp, start, arr):
        global TRACE_COUNT
        TRACE_COUNT += 1
        carry = lax.cond(first, lambda: init_run(start, hp), lambda: carry)

        def body(run, seg):
            return segment(run, hp, seg, arr)

        return lax.scan(body, carry, seg0 + jnp.arange(plan.points_per_chunk))

    if recurrent:
        # One run after another (lax.map), still one program: vmapped, the recurrent
        # layer's small matmuls become batched ones and its weight gradients need
        # transposes of every stored timestep, slower on the CPU than the runs in sequence.
        def runs(carry, first, seg0, hp, start, arr):
            def one(run):
                return chunk(run[0], first, seg0, run[1], run[2], arr)

            return lax.map(one, (carry, hp, start))

    else:
        runs = jax.vmap(chunk, in_axes=(0, None, None, 0, 0, None))
    # The runs in equal shards executing the one compiled program at the same time: over
    # the local devices when there are several (one call), else one shard per CPU core.
    program, layout = _shards.over_devices(runs, n_runs)
    shard_args = [
        (jax.tree.map(lambda v, idx=idx: jnp.asarray(v[idx]), hp_np), jnp.asarray(seeds_np[idx]))
        for idx in layout
    ]
    hp0, seed0 = shard_args[0]
    # the keys: the model's or the group's, and the runs' shapes (those of one shard)
    shapes_key = str(jax.tree.map(lambda a: (a.shape, a.dtype), (hp0, seed0)))
    init_key = None if model_key is None else ("init", model_key, str(dtype), shapes_key)
    lower_init = functools.partial(jax.jit(init_models).lower, seed0)
    starter, init_s, _ = compilation.program(init_key, lower_init, last=False, options=INIT_OPTIONS)
    starts = [starter(seed) for _, seed in shard_args]
    shapes = jax.eval_shape(jax.vmap(init_run), starts[0], hp0)
    carries = [jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)] * len(shard_args)

    flow_s = 0.0
    if n_pos:  # the flow's program: the initial and the kept parameters of every run
        snapshots = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct((n_runs * (1 + n_flow), *a.shape[1:]), a.dtype),
            starts[0][:2],
        )
        flow_key = None if model_key is None else ("flow", model_key, str(dtype), n_runs, n_flow)
        loss = functools.partial(loss_and_accuracy, model.loss)
        measure_flow, flow_s = flow_mod.program(model, loss, flow_key, snapshots, x_flow, y_flow)

    def lower():
        return program.lower(carries[0], True, 0, hp0, starts[0], arrays)

    key = None if cache_key is None else (cache_key, shapes_key)
    compiled, compile_s, _ = compilation.program(key, lower, options=dict(model.compile_options))
    compile_s += init_s + flow_s
    program_name = "" if key is None else compilation.program_id(key)
    shard_args = [(hp, start) for (hp, _), start in zip(shard_args, starts, strict=True)]

    def run_chunk(c, shard):
        carry, (hp, start) = shard
        carry, table = compiled(carry, c == 0, c * plan.points_per_chunk, hp, start, arrays)
        return carry, np.asarray(table)  # [per, points_per_chunk, metrics]; blocks

    table, carries, run_s = execute(
        plan, run_chunk, list(zip(carries, shard_args, strict=True)), n_runs, on_chunk
    )

    def runs_of(trees):  # the shards' arrays joined, the padding runs dropped
        return jax.tree.map(lambda *a: np.concatenate(a)[:n_runs], *trees)

    flow = np.zeros((n_runs, 1 + n_flow, n_pos), dtype)
    if n_pos:
        t0 = time.perf_counter()
        first, kept = runs_of([s[:2] for s in starts]), runs_of([c["flow"] for c in carries])
        flow = np.asarray(measure_flow(flow_mod.stack(first, kept), x_flow, y_flow))
        flow = flow.reshape(n_runs, 1 + n_flow, n_pos)
        run_s += time.perf_counter() - t0
    curves = dict(zip(METRICS, np.moveaxis(table, 2, 0), strict=True))
    alive, stop = (runs_of([c[k] for c in carries]) for k in ("alive", "stop"))
    return collect(plan, curves, ~alive, stop, flow, compile_s, program_name, run_s)
