r"""Gradient flow: how much of the error signal reaches each position of a model.

The lecture's vanishing-gradient slides follow :math:`\partial J / \partial h^{(t)}` back
through the sequence (a product of Jacobians :math:`\partial h^{(t+1)} / \partial h^{(t)}`
that shrinks when they are small); for a deep network the same product runs over the
layers. :func:`make_flow` measures it: for every position ``p`` (the timestep t = 1..T of a
recurrent model's hidden state h_t, or the hidden layer l = 1..depth of a deep MLP), the
root mean square over a fixed batch of the per-example gradient norm
:math:`\lVert \partial J_i / \partial h_{p,i} \rVert`, with :math:`J_i` the example's data
loss (no weight penalty), in evaluation mode (no dropout; batchnorm on its running
averages, so that examples do not interact and the per-example gradient is well defined).

The model adds a zero "probe" to each hidden state (``apply(..., probes=zeros)``, see
:class:`optbench.problems.tasks.models.Model`); the gradient with respect to the probes is
the gradient with respect to the hidden states. A recurrent model takes it from its
hand-written backward pass (:func:`optbench.problems.tasks.cells.recurrent_probed`: the
hidden-state gradient that pass carries back through time), as training does, rather than
from autodiff through the forward scan. The batch loss is the mean of the examples'
losses and ``h_{p,i}`` reaches only ``J_i``, so ``dJ_i/dh_{p,i} = B * dJ/dprobe_{p,i}``.

It is measured at initialisation (step 0) and at :data:`FLOW_POINTS` evenly spaced curve
points (the last one included): ``gradient_flow.csv``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optbench import compilation
from optbench.problems.tasks import shards

FLOW_POINTS = 4
"""Curve points at which the gradient flow is measured besides initialisation: a quarter,
half, three quarters and the end of the budget (each costs one forward and backward pass
over :data:`FLOW_BATCH` examples, about 4 training steps of 64)."""
FLOW_BATCH = 256
"""Examples of the fixed batch it is measured on (the first of the validation set)."""
OPTIONS = compilation.LLVM_O1
"""XLA options of the measurement's program, which runs once per group: LLVM's -O1, as for
the initialisation (its faster code would buy nothing here), with the same values as -O2
(checked bit for bit on the digits MLP, the adding GRU and the digits LSTM)."""


def flow_segments(n_points: int) -> np.ndarray:
    """A boolean mask over the curve points: where the gradient flow is measured.

    Example:
        >>> flow_segments(20).nonzero()[0].tolist(), flow_segments(2).nonzero()[0].tolist()
        ([4, 9, 14, 19], [0, 1])
    """
    mask = np.zeros(n_points, bool)
    picks = np.ceil(np.arange(1, FLOW_POINTS + 1) * n_points / FLOW_POINTS).astype(int) - 1
    mask[np.clip(picks, 0, n_points - 1)] = True
    return mask


def make_flow(model, loss: Callable, x: jax.Array, y: jax.Array) -> Callable | None:
    """``flow(params, state) -> [P]`` on the batch ``x, y`` (see the module), or None when
    the model has no positions to probe. ``loss(out, y) -> (mean loss, accuracy)``. One
    backward pass for all positions: the gradient with respect to the zero probes (for a
    recurrent model built with ``custom_vjp``, the default, its hand-written pass)."""
    if getattr(model, "flow", None) is None:
        return None
    shape = model.probe_shape(x)
    bsz = x.shape[0]

    def flow(params, state):
        def batch_loss(probes):
            out, _ = model.apply(params, state, x, train=False, probes=probes)
            return loss(out, y)[0]

        g = jax.grad(batch_loss)(jnp.zeros(shape, x.dtype))  # [P, B, H]
        return jnp.sqrt(jnp.sum(jnp.square(g), axis=(1, 2)) * bsz)

    return flow


def positions(model, x: jax.Array) -> int:
    """The number of probed positions of ``model`` on a batch like ``x`` (0: none)."""
    if getattr(model, "flow", None) is None:
        return 0
    return int(model.probe_shape(x)[0])


def slots(n_points: int) -> np.ndarray:
    """For each curve point, the slot where a run keeps its parameters for the gradient
    flow (-1: not a flow point).

    Example:
        >>> slots(6).tolist()
        [-1, 0, 1, -1, 2, 3]
    """
    mask = flow_segments(n_points)
    out = np.cumsum(mask) - 1
    out[~mask] = -1
    return out


def keep(buffers: Any, slot: jax.Array, snapshot: Any) -> Any:
    """``buffers`` (leaves ``[slots, ...]``) with ``snapshot`` written at ``slot`` (traced),
    unchanged where ``slot`` is -1."""

    def put(buf: jax.Array, value: jax.Array) -> jax.Array:
        return jnp.where(slot >= 0, buf.at[jnp.maximum(slot, 0)].set(value), buf)

    return jax.tree.map(put, buffers, snapshot)


def program(model, loss: Callable, key: tuple | None, snapshots: Any, x: jax.Array, y: jax.Array):
    """The compiled measurement ``(fn, compile_s)``: ``fn(snapshots, x, y) -> [K, P]``, the
    flow of each of K ``(params, state)`` snapshots (``snapshots``: their shapes, leading
    axis K), one after another (``lax.map``) in equal shards executing at the same time, one
    per core (:mod:`.shards`; each snapshot's numbers are the same in any shard). A program
    of the model alone, outside the training programs, so that every optimizer's group
    reuses it (``key``; None: not kept); measured inside each training program it was ~1.3 s
    of that program's compile. Eight adding-LSTM runs of 100 steps (40 snapshots) took
    6.73 s instead of 7.43 in one call (``run_s``, medians of 3, 2 cores; measured when the
    recurrent probes' gradient still came from autodiff, not from ``recurrent_probed``)."""
    n = jax.tree.leaves(snapshots)[0].shape[0]
    layout = shards.split(n)
    one = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct((layout.shape[1], *a.shape[1:]), a.dtype), snapshots
    )

    def measure(snaps, x, y):
        flow = make_flow(model, loss, x, y)
        return jax.lax.map(lambda ps: flow(*ps), snaps)

    lower = functools.partial(jax.jit(measure).lower, one, x, y)
    key = None if key is None else (*key, layout.shape)
    compiled, secs, _ = compilation.program(key, lower, last=False, options=OPTIONS)

    def fn(snaps: Any, x: jax.Array, y: jax.Array) -> np.ndarray:
        def call(idx: np.ndarray) -> np.ndarray:
            return np.asarray(compiled(jax.tree.map(lambda a: a[idx], snaps), x, y))

        return np.concatenate(shards.run_shards(call, list(layout)))[:n]

    return fn, secs


def stack(first: Any, kept: Any) -> Any:
    """Each run's initial snapshot (leaves ``[R, ...]``) followed by its kept ones (``[R, F,
    ...]``), flattened to ``[R * (1 + F), ...]`` in run order, as :func:`program` takes them."""

    def join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        both = np.concatenate([a[:, None], b], 1)
        return both.reshape(-1, *both.shape[2:])

    return jax.tree.map(join, first, kept)
