"""The sweep engine: a config becomes (problem x optimizer) groups, each ONE jitted program.

Inside a group every grid point x seed x start is a *run*. The runs are vmapped, the
hyperparameters are traced arrays and the optimizer steps are a ``lax.scan``, so a group
compiles once whatever the size of its grid (the tests count compiles).

For a surface, the scan runs from one *event* step to the next: the steps where the loss
curve is recorded (every ``log_every`` steps) and, for 2-D surfaces, the steps where the
trajectory is recorded (every step at first, then log-spaced). Between events nothing is
stored, and nothing is computed twice: the loss and gradient of a step are evaluated once
and carried. Final loss, best loss and steps-to-tolerance are tracked at every step, so
they stay exact whatever ``log_every`` is.

Divergence (a non-finite loss, or leaving the escape box of a surface that is bounded below)
freezes a run at ``stop_step``; leaving the escape box of a surface unbounded below (a
saddle) is success there and freezes the run as ``escaped``. A frozen run never touches the
others.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from optbench import optimizers, schedules
from optbench.config import Config, OptimizerConfig, ProblemConfig
from optbench.results import select

#: Trajectories: every step up to this one, then log-spaced points.
TRAJ_DENSE = 50
TRAJ_LOG_POINTS = 150
#: Curve points per run when ``log_every`` is not given.
CURVE_POINTS = 500
#: Evaluation points per task run when ``log_every`` is not given (each evaluates the
#: validation and test sets).
TASK_CURVE_POINTS = 50


@dataclass(frozen=True)
class Group:
    """One (problem, optimizer) pair: the unit of compilation, progress and resume."""

    problem: ProblemConfig
    optimizer: OptimizerConfig
    points: tuple[Mapping[str, float], ...]
    key: str
    hash: str


def groups(config: Config) -> list[Group]:
    """Expand a config into its groups, problems outermost."""
    out = []
    for p in config.problems:
        for o in config.optimizers:
            ident = {
                "problem": p.label,
                "optimizer": o.label,
                "config": _group_config(config, p, o),
            }
            digest = hashlib.sha256(repr(sorted(ident.items())).encode()).hexdigest()[:16]
            short = hashlib.sha1(f"{p.label}\0{o.label}".encode()).hexdigest()[:6]
            key = f"{_slug(p.label)}--{_slug(o.label)}-{short}"
            out.append(Group(p, o, tuple(o.points()), key, digest))
    return out


def _group_config(config: Config, p: ProblemConfig, o: OptimizerConfig) -> str:
    d = config.to_dict()
    probs = [q for q in d["problem"] if q["label"] == p.label]
    return repr(
        (
            probs,
            d["optimizer"][o.label],
            d["seeds"],
            d.get("log_every"),
            d["tolerance"],
            d["dtype"],
            d.get("surfaces"),
        )
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def make_optimizer(
    opt: OptimizerConfig, total_steps: int
) -> Callable[[Mapping[str, Any]], optax.GradientTransformation]:
    """A factory from the traced values of the gridded hyperparameters to the optimizer.

    Hyperparameters with one value are compiled in as constants (they cost nothing per
    step); those with a grid are traced, so the whole grid is one program. A schedule
    multiplies the (traced) learning rate.
    """
    multiplier = (
        schedules.from_config(opt.schedule, total_steps) if opt.schedule is not None else None
    )
    constants = {k: v[0] for k, v in opt.grid.items() if len(v) == 1}

    def make(hp: Mapping[str, Any]) -> optax.GradientTransformation:
        hp = {**constants, **hp}
        if multiplier is not None:
            lr = hp["learning_rate"]
            hp["learning_rate"] = lambda count: lr * multiplier(count)
        return optimizers.get(opt.name, **hp, **opt.switches)

    return make


def _run_rows(
    group: Group, grid_idx: np.ndarray, seed_col: np.ndarray, start_idx: np.ndarray
) -> pd.DataFrame:
    """The identifying columns of runs.csv: ids, problem, parameters, hyperparameters."""
    p, o = group.problem, group.optimizer
    run_ids = [
        f"{p.label}:{o.label}:{g}:{s}:{k}"
        for g, s, k in zip(grid_idx, seed_col, start_idx, strict=True)
    ]
    runs = pd.DataFrame({"run_id": run_ids, "problem": p.label, p.kind: p.target})
    for name, value in p.params.items():
        runs[f"param_{name}"] = value
    runs["optimizer"] = o.label
    runs["algorithm"] = o.name
    for name in group.points[0]:
        runs[name] = np.asarray([pt[name] for pt in group.points], np.float64)[grid_idx]
    for name, value in o.switches.items():
        runs[name] = value
    if o.schedule is not None:
        runs["schedule"] = o.schedule.get("kind")
    runs["grid_index"] = grid_idx
    runs["seed"] = seed_col
    runs["start"] = start_idx
    return runs


def traced_hyperparameters(
    group: Group, grid_idx: np.ndarray, dtype: np.dtype
) -> dict[str, np.ndarray]:
    """One value per run of each hyperparameter that has a grid (the traced arguments)."""
    return {
        name: np.asarray([pt[name] for pt in group.points], dtype=dtype)[grid_idx]
        for name, values in group.optimizer.grid.items()
        if len(values) > 1
    }


# --------------------------------------------------------------------------- surfaces


class _Carry(NamedTuple):
    x: jax.Array
    state: Any
    loss: jax.Array
    grad: jax.Array
    k: jax.Array  # steps taken
    stop: jax.Array  # the step where the run stopped (diverged or escaped), -1 while alive
    best: jax.Array
    hit: jax.Array  # first step within tolerance, -1 if never


def event_steps(steps: int, log_every: int, trajectory: bool) -> tuple[np.ndarray, ...]:
    """The steps where something is recorded: (all events, curve mask, trajectory mask)."""
    curve = np.unique(np.r_[np.arange(0, steps + 1, log_every), steps])
    traj = np.array([], dtype=np.int64)
    if trajectory:
        dense = np.arange(0, min(steps, TRAJ_DENSE) + 1)
        late = np.geomspace(max(TRAJ_DENSE, 1), max(steps, 1), TRAJ_LOG_POINTS).round()
        traj = np.unique(np.r_[dense, late[late <= steps].astype(np.int64), steps])
    events = np.union1d(curve, traj).astype(np.int64)
    return events, np.isin(events, curve), np.isin(events, traj)


def surface_program(
    surface: Any,
    make: Callable[[Mapping[str, Any]], optax.GradientTransformation],
    *,
    events: np.ndarray,
    noise: float,
    tolerance: float,
    record_x: bool,
) -> Callable[..., dict[str, jax.Array]]:
    """The vmapped program of one surface group: ``program(hp, seeds, x0) -> outputs``.

    ``hp`` maps each hyperparameter to an array [R]; ``seeds`` is [R]; ``x0`` is [R, dim].
    """
    fn = surface.fn
    value_and_grad = jax.value_and_grad(fn)
    lo, hi = np.asarray(surface.escape_bounds, dtype=np.float64).T
    bounded = surface.min_value is not None
    fmin = surface.min_value if bounded else -np.inf

    def single(hp: Mapping[str, jax.Array], seed: jax.Array, x0: jax.Array) -> dict:
        dtype = x0.dtype
        opt = make(hp)
        key = jax.random.key(seed)
        lo_, hi_ = jnp.asarray(lo, dtype), jnp.asarray(hi, dtype)
        loss0, g0 = value_and_grad(x0)
        ok0 = jnp.isfinite(loss0)
        carry = _Carry(
            x=x0,
            state=opt.init(x0),
            loss=loss0,
            grad=g0,
            k=jnp.int32(0),
            stop=jnp.where(ok0, -1, 0).astype(jnp.int32),
            best=jnp.where(ok0, loss0, jnp.inf).astype(dtype),
            hit=jnp.where(ok0 & (loss0 - fmin <= tolerance), 0, -1).astype(jnp.int32),
        )

        def inside_box(x: jax.Array) -> jax.Array:
            """False outside the escape box and for NaN or infinite coordinates."""
            if x.shape[0] > 8:
                return jnp.all((x >= lo_) & (x <= hi_))
            # Coordinate by coordinate: XLA fuses this with the rest of the step, a
            # reduction would be a kernel of its own (measured: 1 of ~10 per step).
            ok = (x[0] >= lo_[0]) & (x[0] <= hi_[0])
            for i in range(1, x.shape[0]):
                ok = ok & (x[i] >= lo_[i]) & (x[i] <= hi_[i])
            return ok

        # A stopped run is frozen by multiplying its update by 0 (selecting every leaf of
        # the optimizer state made the loop 5x slower, and even a select on the point
        # alone made it 2x slower, measured): its point stays where it stopped, and its
        # loss and gradient are evaluated there again at every step, so the final loss,
        # best loss and steps-to-tolerance need no mask. (Should the update at that point
        # not be finite, as after an overflow, the frozen point turns NaN: that run
        # diverged either way.) Records after the stopping step are dropped.
        def step(c: _Carry) -> _Carry:
            alive = c.stop < 0
            g = c.grad
            if noise:
                g = g + noise * jax.random.normal(jax.random.fold_in(key, c.k), g.shape, dtype)
            updates, state = opt.update(g, c.state, c.x)
            x = (c.x + updates * alive.astype(dtype)).astype(dtype)
            loss, grad = value_and_grad(x)
            k = c.k + 1
            finite = jnp.isfinite(loss)
            return _Carry(
                x=x,
                state=state,
                loss=loss,
                grad=grad,
                k=k,
                stop=jnp.where(alive & ~(finite & inside_box(x)), k, c.stop),
                best=jnp.where(finite, jnp.minimum(c.best, loss), c.best),
                hit=jnp.where((c.hit < 0) & (loss - fmin <= tolerance), k, c.hit),
            )

        def segment(c: _Carry, gap: jax.Array) -> tuple[_Carry, tuple]:
            c = jax.lax.fori_loop(0, gap, lambda _, cc: step(cc), c)
            return c, (c.loss, c.x if record_x else None)

        final, (losses, xs) = jax.lax.scan(segment, carry, np.diff(events).astype(np.int32))
        a = final.stop < 0
        # A run stopped at a finite point with a finite loss left the escape box: on a
        # surface unbounded below that is an escape, otherwise a divergence.
        left_box = jnp.isfinite(final.loss) & jnp.all(jnp.isfinite(final.x))
        escaped = ~a & left_box & (not bounded)
        out = {
            "final_loss": final.loss,
            "best_loss": final.best,
            "hit": final.hit,
            "diverged": ~a & ~escaped,
            "escaped": escaped,
            "stop": jnp.where(a, final.k, final.stop),
            "losses": jnp.concatenate([loss0[None], losses]),
        }
        if record_x:
            out["xs"] = jnp.concatenate([x0[None], xs])
            out["x_stop"] = final.x
        return out

    return jax.vmap(single)


def run_surface_group(
    group: Group, config: Config, surface: Any, log: Callable[..., None] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Run one surface group; return its runs, curves, trajectories and timing info."""
    p, o = group.problem, group.optimizer
    steps = int(p.steps or config.steps)
    log_every = config.log_every or max(1, steps // CURVE_POINTS)
    is_2d = surface.dim == 2
    events, curve_mask, traj_mask = event_steps(steps, log_every, is_2d)
    starts = np.asarray(p.start if p.start is not None else surface.start, dtype=np.float64)
    starts = starts.reshape(-1, surface.dim)
    seeds = np.asarray(config.seeds)
    G, S, K = len(group.points), len(seeds), len(starts)
    np_dtype = np.dtype(config.dtype)

    grid_idx = np.repeat(np.arange(G), S * K)
    seed_col = np.tile(np.repeat(seeds, K), G)
    start_idx = np.tile(np.arange(K), G * S)
    hp = traced_hyperparameters(group, grid_idx, np_dtype)
    x0 = starts[start_idx].astype(np_dtype)

    make = make_optimizer(o, steps)
    program = surface_program(
        surface,
        make,
        events=events,
        noise=p.noise,
        tolerance=config.tolerance,
        record_x=is_2d,
    )
    with jax.enable_x64(config.dtype == "float64"):
        t0 = time.perf_counter()
        compiled = jax.jit(program).lower(hp, seed_col.astype(np.uint32), x0).compile()
        t1 = time.perf_counter()
        out = jax.block_until_ready(compiled(hp, seed_col.astype(np.uint32), x0))
        t2 = time.perf_counter()
    out = jax.tree.map(np.asarray, out)

    R = G * S * K
    runs = _run_rows(group, grid_idx, seed_col, start_idx)
    run_ids = runs["run_id"].to_numpy()
    if surface.dim <= 10:
        for i, coord in enumerate(surface.coords):
            runs[f"start_{coord}"] = starts[start_idx, i]
    hit = out["hit"]
    runs["final_loss"] = out["final_loss"].astype(np.float64)
    runs["best_loss"] = out["best_loss"].astype(np.float64)
    runs["steps_to_tol"] = pd.Series(np.where(hit >= 0, hit, np.nan)).astype("Int64")
    runs["diverged"] = out["diverged"]
    runs["escaped"] = out["escaped"]
    runs["stop_step"] = out["stop"].astype(np.int64)
    runs["selected"] = select(runs).to_numpy()

    stop = out["stop"]
    ended = stop < steps  # a stopped run's records end at its stopping step
    curves = _records(
        run_ids,
        events[curve_mask],
        stop,
        ended,
        {"loss": out["losses"][:, curve_mask]},
        {"loss": out["final_loss"]},
    )
    trajectories = pd.DataFrame(columns=["run_id", "step", "x", "y"])
    if is_2d:
        xs, x_stop = out["xs"][:, traj_mask], out["x_stop"]
        trajectories = _records(
            run_ids,
            events[traj_mask],
            stop,
            ended,
            {"x": xs[..., 0], "y": xs[..., 1]},
            {"x": x_stop[:, 0], "y": x_stop[:, 1]},
        )
    info = {
        "problem": p.label,
        "optimizer": o.label,
        "runs": R,
        "steps": steps,
        "compile_s": round(t1 - t0, 4),
        "run_s": round(t2 - t1, 4),
        "hash": group.hash,
    }
    return runs, curves, trajectories, info


def _records(
    run_ids: np.ndarray,
    steps: np.ndarray,
    stop: np.ndarray,
    ended: np.ndarray,
    values: Mapping[str, np.ndarray],
    at_stop: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """Tidy rows (run_id, step, values...) up to each run's stop, plus the stopping point."""
    keep = (steps[None, :] <= stop[:, None]).ravel()
    cols = {k: np.asarray(v, np.float64).ravel()[keep] for k, v in values.items()}
    frame = pd.DataFrame(
        {
            "run_id": np.repeat(run_ids, len(steps))[keep],
            "step": np.tile(steps, len(run_ids))[keep],
            **cols,
        }
    )
    extra = ended & ~np.isin(stop, steps)
    if not extra.any():
        return frame
    tail = pd.DataFrame(
        {
            "run_id": run_ids[extra],
            "step": stop[extra],
            **{k: np.asarray(v, np.float64)[extra] for k, v in at_stop.items()},
        }
    )
    order = np.r_[np.repeat(np.arange(len(run_ids)), len(steps))[keep], np.flatnonzero(extra)]
    frame = pd.concat([frame, tail], ignore_index=True)
    return frame.iloc[np.lexsort((frame["step"].to_numpy(), order))].reset_index(drop=True)


# --------------------------------------------------------------------------- tasks


def run_task_group(
    group: Group, config: Config, log: Callable[..., None] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Run one training-task group (one jitted program run in chunks)."""
    from optbench import tasks

    p, o = group.problem, group.optimizer
    task = tasks.get(p.task, **p.params)
    budget = int(p.epochs if task.budget == "epochs" else p.steps)  # type: ignore[arg-type]
    batch_size = int(p.batch_size)  # type: ignore[arg-type]
    total = task.num_steps(budget, batch_size)
    log_every = config.log_every or max(1, total // TASK_CURVE_POINTS)
    seeds = np.asarray(config.seeds)
    G, S = len(group.points), len(seeds)
    grid_idx = np.repeat(np.arange(G), S)
    seed_col = np.tile(seeds, G)
    np_dtype = np.dtype(config.dtype)
    hp = traced_hyperparameters(group, grid_idx, np_dtype)
    on_chunk = (lambda done, tot: log("chunk", done=done, total=tot)) if log else None
    with jax.enable_x64(config.dtype == "float64"):
        res = task.run(
            make_optimizer(o, total),
            hp,
            seed_col,
            budget=budget,
            batch_size=batch_size,
            log_every=log_every,
            dtype=jnp.float64 if config.dtype == "float64" else jnp.float32,
            on_chunk=on_chunk,
        )
    R = G * S
    runs = _run_rows(group, grid_idx, seed_col, np.zeros(R, np.int64))
    run_ids = runs["run_id"].to_numpy()
    runs["final_loss"] = np.asarray(res.final_train_loss, np.float64)
    runs["best_loss"] = np.asarray(res.best_train_loss, np.float64)
    runs["steps_to_tol"] = pd.array([pd.NA] * R, dtype="Int64")
    runs["diverged"] = np.asarray(res.diverged, bool)
    runs["escaped"] = False
    runs["stop_step"] = np.asarray(res.stop_step, np.int64)
    for name in ("final_train_loss", "val_loss", "test_loss", "test_accuracy"):
        runs[name] = np.asarray(getattr(res, name), np.float64)
    runs["selected"] = select(runs).to_numpy()

    steps = np.asarray(res.step)
    P = len(steps)
    stop = runs["stop_step"].to_numpy()[:, None]
    keep = (steps[None, :] <= stop).ravel()
    cols: dict[str, Any] = {"run_id": np.repeat(run_ids, P)[keep], "step": np.tile(steps, R)[keep]}
    if res.epoch is not None:
        cols["epoch"] = np.tile(np.asarray(res.epoch), R)[keep]
    for name, values in res.curves.items():
        cols[name] = np.asarray(values, np.float64).ravel()[keep]
    curves = pd.DataFrame(cols)
    info = {
        "problem": p.label,
        "optimizer": o.label,
        "runs": R,
        "steps": total,
        "compile_s": round(float(res.compile_s), 4),
        "run_s": round(float(res.run_s), 4),
        "hash": group.hash,
    }
    return runs, curves, pd.DataFrame(columns=["run_id", "step", "x", "y"]), info
