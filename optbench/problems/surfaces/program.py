"""The surface program: one jitted, vmapped ``lax.scan`` over a group's runs.

Inside a group every grid point x seed x start is a *run*. The runs are vmapped, the
hyperparameters are traced arrays and the optimizer steps are a ``lax.scan``, so a group
compiles once whatever the size of its grid (the tests count compiles).

The scan runs from one *event* step to the next: the steps where the loss curve is
recorded (every ``log_every`` steps) and, for 2-D surfaces, the steps where the trajectory
is recorded (every step at first, then log-spaced). Between events nothing is stored, and
nothing is computed twice: the loss and gradient of a step are evaluated once and carried.
Final loss, best loss and steps-to-tolerance are tracked at every step, so they stay exact
whatever ``log_every`` is.

Divergence (a non-finite loss, or leaving the escape box of a surface that is bounded below)
freezes a run at ``stop_step``; leaving the escape box of a surface unbounded below (a
saddle) is success there and freezes the run as ``escaped``. A frozen run never touches the
others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

#: Trajectories: every step up to this one, then log-spaced points.
TRAJ_DENSE = 50
TRAJ_LOG_POINTS = 150


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
