"""The tasks' models: plain functions over dicts of arrays (pytrees), seeded initialisation.

A :class:`Model` bundles ``init(key, dtype) -> (params, state)`` and
``apply(params, state, x, *, key, train, h0=None) -> (output, new state)``. ``state`` holds
what is not trained by gradient (batchnorm running averages; an empty dict otherwise).
Recurrent models take the first hidden state ``h0`` as an argument (zeros when ``None``),
so the training program can differentiate the loss with respect to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from optbench.problems.tasks import layers
from optbench.problems.tasks.cells import CELLS, recurrent, recurrent_reference


@dataclass(frozen=True)
class Model:
    """A model: ``init``, ``apply``, the loss kind and, for recurrent models, the hidden size."""

    init: Callable
    apply: Callable
    loss: str  # "xent" (10-class cross-entropy) or "mse"
    hidden: int | None = None
    hidden_batch_axis: int = 0


def weight_penalty(params: dict, l1: float, l2: float) -> jax.Array:
    """``l1 * sum |w| + l2 * sum w**2`` over the weight matrices and kernels (every leaf named
    ``w``; biases and batchnorm scales are not penalised). Both non-zero: the elastic net."""
    total = jnp.zeros((), jax.tree.leaves(params)[0].dtype)
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if getattr(path[-1], "key", None) != "w":
            continue
        if l1:
            total = total + l1 * jnp.sum(jnp.abs(leaf))
        if l2:
            total = total + l2 * jnp.sum(jnp.square(leaf))
    return total


def digits_cnn(
    *, batchnorm: bool, dropout: float, activation: str, channels: tuple[int, int] = (16, 32)
) -> Model:
    """conv3x3(16) - [batchnorm] - act - maxpool - conv3x3(32) - [batchnorm] - act - maxpool -
    [dropout] - dense(10), on ``[B, 8, 8]`` images; returns logits ``[B, 10]``."""
    act = layers.ACTIVATIONS[activation]
    c1, c2 = channels

    def init(key, dtype):
        k1, k2, k3 = jax.random.split(key, 3)
        params = {
            "conv1": {
                "w": layers.init_weight(k1, (3, 3, 1, c1), 9, 9 * c1, activation, dtype),
                "b": jnp.zeros((c1,), dtype),
            },
            "conv2": {
                "w": layers.init_weight(k2, (3, 3, c1, c2), 9 * c1, 9 * c2, activation, dtype),
                "b": jnp.zeros((c2,), dtype),
            },
            "out": {
                "w": layers.glorot_uniform(k3, (4 * c2, 10), 4 * c2, 10, dtype),
                "b": jnp.zeros((10,), dtype),
            },
        }
        state = {}
        if batchnorm:
            for name, ch in (("bn1", c1), ("bn2", c2)):
                params[name], state[name] = layers.init_batchnorm(ch, dtype)
        return params, state

    def apply(params, state, x, *, key=None, train=False, h0=None):
        new_state = {}
        y = x[..., None]
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
            y = layers.conv3x3(y, params[conv]["w"], params[conv]["b"])
            if batchnorm:
                y, new_state[bn] = layers.batchnorm(y, params[bn], state[bn], train=train)
            y = layers.max_pool2x2(act(y))
        y = y.reshape(y.shape[0], -1)
        y = layers.dropout(key, y, dropout, train=train)
        return layers.dense(y, params["out"]["w"], params["out"]["b"]), new_state

    return Model(init, apply, "xent")


def digits_mlp(*, hidden: int, batchnorm: bool, dropout: float, activation: str) -> Model:
    """dense(hidden) - [batchnorm] - act - [dropout] - dense(10) on the 64 flattened pixels."""
    act = layers.ACTIVATIONS[activation]

    def init(key, dtype):
        k1, k2 = jax.random.split(key)
        params = {
            "hidden": {
                "w": layers.init_weight(k1, (64, hidden), 64, hidden, activation, dtype),
                "b": jnp.zeros((hidden,), dtype),
            },
            "out": {
                "w": layers.glorot_uniform(k2, (hidden, 10), hidden, 10, dtype),
                "b": jnp.zeros((10,), dtype),
            },
        }
        state = {}
        if batchnorm:
            params["bn"], state["bn"] = layers.init_batchnorm(hidden, dtype)
        return params, state

    def apply(params, state, x, *, key=None, train=False, h0=None):
        new_state = {}
        y = layers.dense(x.reshape(x.shape[0], -1), params["hidden"]["w"], params["hidden"]["b"])
        if batchnorm:
            y, new_state["bn"] = layers.batchnorm(y, params["bn"], state["bn"], train=train)
        y = layers.dropout(key, act(y), dropout, train=train)
        return layers.dense(y, params["out"]["w"], params["out"]["b"]), new_state

    return Model(init, apply, "xent")


def digits_logreg() -> Model:
    """Multinomial logistic regression: dense(10) on the 64 pixels (a convex problem)."""

    def init(key, dtype):
        # Zero initialisation is the convex baseline's canonical start; seeds change only
        # the shuffling.
        return {"out": {"w": jnp.zeros((64, 10), dtype), "b": jnp.zeros((10,), dtype)}}, {}

    def apply(params, state, x, *, key=None, train=False, h0=None):
        return layers.dense(x.reshape(x.shape[0], -1), params["out"]["w"], params["out"]["b"]), {}

    return Model(init, apply, "xent")


def init_recurrent(key, cell_name: str, inputs: int, hidden: int, dtype) -> dict:
    """Input weights Glorot-uniform, recurrent weights orthogonal per gate, biases zero except
    the LSTM's forget-gate bias, 1 (Gers et al. 2000; Jozefowicz et al. 2015)."""
    cell = CELLS[cell_name]
    g = cell.gates
    k_in, k_rec = jax.random.split(key)
    w_x = layers.glorot_uniform(k_in, (inputs, g * hidden), inputs, hidden, dtype)
    w_h = jnp.concatenate(
        [layers.orthogonal(k, hidden, dtype) for k in jax.random.split(k_rec, g)], axis=1
    )
    b = jnp.zeros((g * hidden,), dtype)
    if cell_name == "lstm":
        b = b.at[hidden : 2 * hidden].set(1.0)
    p = {"w": w_x, "b": b, "w_h": w_h}
    if cell_name == "gru":
        p["b_h"] = jnp.zeros((g * hidden,), dtype)
    return p


def run_recurrent(
    p: dict, cell_name: str, x: jax.Array, h0: jax.Array | None, *, custom_vjp: bool = True
) -> jax.Array:
    """Run a recurrent layer over batch-major ``x`` (``[B, T, D]``); returns ``h_T`` ``[B, H]``."""
    cell = CELLS[cell_name]
    bsz = x.shape[0]
    hidden = p["w_h"].shape[0]
    if h0 is None:
        h0 = jnp.zeros((bsz, hidden), x.dtype)
    c0 = jnp.zeros((bsz, hidden if cell.has_cell_state else 0), x.dtype)
    b_h = p.get("b_h", jnp.zeros_like(p["b"]))
    run = recurrent if custom_vjp else recurrent_reference
    return run(cell, jnp.swapaxes(x, 0, 1), p["w"], p["b"], p["w_h"], b_h, h0, c0)


def sequence_model(
    *, cell: str, hidden: int, inputs: int, outputs: int, custom_vjp: bool = True
) -> Model:
    """A recurrent layer read to the end, then dense(outputs) on the last hidden state.

    ``x``: ``[B, T, inputs]``. With ``outputs == 1`` the output is ``[B]`` (regression).
    """

    def init(key, dtype):
        k1, k2 = jax.random.split(key)
        params = {
            "rnn": init_recurrent(k1, cell, inputs, hidden, dtype),
            "out": {
                "w": layers.glorot_uniform(k2, (hidden, outputs), hidden, outputs, dtype),
                "b": jnp.zeros((outputs,), dtype),
            },
        }
        return params, {}

    def apply(params, state, x, *, key=None, train=False, h0=None):
        h = run_recurrent(params["rnn"], cell, x, h0, custom_vjp=custom_vjp)
        y = layers.dense(h, params["out"]["w"], params["out"]["b"])
        return (y[:, 0] if outputs == 1 else y), {}

    return Model(init, apply, "mse" if outputs == 1 else "xent", hidden=hidden)
