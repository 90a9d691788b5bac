r"""Recurrent cells (LSTM, GRU, vanilla RNN) and the recurrent layer that runs them.

Notation: :math:`x_t` the input, :math:`h_{t-1}` the previous hidden state, :math:`\sigma`
the logistic sigmoid, :math:`\odot` the elementwise product. Every cell splits its
pre-activations into an input part :math:`W x_t + b` (computed for all timesteps at once,
one matmul before the recurrence) and a recurrent part :math:`U h_{t-1} + b_h` (one matmul
per timestep). A cell is two pure functions over one timestep:

- ``forward(xp, hh, h, c) -> (h_new, c_new, residuals)``, with ``xp = W x_t + b`` and
  ``hh = U h_{t-1} + b_h`` for all the gates stacked along the last axis;
- ``backward(residuals, dh, dc) -> (dxp, dhh, dh_direct, dc_prev)``: the gradients with
  respect to ``xp``, ``hh`` (``None`` when equal to ``dxp``), ``h`` other than through
  ``hh`` (``None`` when there is none) and ``c``; ``dxp`` and ``dhh`` either flat
  ``[..., G*H]`` or on the per-gate view ``[..., G, H]``.

:func:`recurrent` runs a cell over a sequence with a hand-written backward pass
(``jax.custom_vjp``): the reverse scan carries only the hidden-state gradients, and the
gradient of ``U`` is one large ``[H, T*B] @ [T*B, G*H]`` matmul after it, instead of one
small matmul per timestep. :func:`recurrent_reference` is the same forward pass left to
autodiff; the tests check that both give the same gradients.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


class Cell(NamedTuple):
    """A recurrent cell: ``gates`` blocks of ``H`` pre-activations, and its step functions."""

    name: str
    gates: int
    has_cell_state: bool
    forward: Callable
    backward: Callable


def _lstm_forward(xp, hh, h, c):
    r"""LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    .. math::
        i_t &= \sigma(W_i x_t + U_i h_{t-1} + b_i)        && \text{input gate} \\
        f_t &= \sigma(W_f x_t + U_f h_{t-1} + b_f)        && \text{forget gate} \\
        g_t &= \tanh(W_g x_t + U_g h_{t-1} + b_g)         && \text{candidate cell} \\
        o_t &= \sigma(W_o x_t + U_o h_{t-1} + b_o)        && \text{output gate} \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t          && \text{cell} \\
        h_t &= o_t \odot \tanh(c_t)

    Gate order along the last axis: ``i, f, g, o`` (PyTorch's order).

    Residuals for the backward pass, with :math:`\sigma' = \sigma (1 - \sigma)` and
    :math:`\tanh' = 1 - \tanh^2`: the pre-activation gradient is
    :math:`\partial z = q \odot (\partial c_t, \partial c_t, \partial c_t, \partial h_t)`
    per gate block, with

    .. math::
        q = (g_t \sigma'_i,\; c_{t-1} \sigma'_f,\; i_t \tanh'_g,\; \tanh(c_t) \sigma'_o),
        \qquad \partial c_t \mathrel{+}= \partial h_t \odot o_t \tanh'(c_t),
        \qquad \partial c_{t-1} = \partial c_t \odot f_t,

    so the forward pass stores ``q``, ``o_t * tanh'(c_t)`` and ``f_t``.
    """
    # Work on the [..., 4, H] view of the gates: XLA then indexes its loops directly instead
    # of dividing each flat index by H.
    z = (xp + hh).reshape(*c.shape[:-1], 4, c.shape[-1])
    # One fused pass: tanh(x) = 2 sigmoid(2x) - 1 on the g block, sigmoid elsewhere.
    is_g = (jnp.arange(4) == 2)[:, None]
    s = jax.nn.sigmoid(jnp.where(is_g, 2 * z, z))
    act = jnp.where(is_g, 2 * s - 1, s)
    i, f, g, o = (act[..., k, :] for k in range(4))
    c_new = f * c + i * g
    tc = jnp.tanh(c_new)
    h_new = o * tc
    dact = jnp.where(is_g, 1 - act * act, act * (1 - act))
    q = dact * jnp.stack([g, c, i, tc], axis=-2)
    return h_new, c_new, (q, o * (1 - tc * tc), f)


def _lstm_backward(res, dh, dc):
    q, m, f = res
    dc = dc + dh * m
    # A concatenate, not a select on the gate index: XLA hoists the select's constant mask
    # out of the loop and the fused kernel then ran about three times slower.
    width = (*dc.shape[:-1], 3, dc.shape[-1])
    dz = q * jnp.concatenate([jnp.broadcast_to(dc[..., None, :], width), dh[..., None, :]], -2)
    return dz, None, None, dc * f


def _gru_forward(xp, hh, h, c):
    r"""GRU (Cho et al. 2014), in the form of cuDNN and PyTorch (reset applied after ``U_n``).

    .. math::
        r_t &= \sigma(W_r x_t + b_r + U_r h_{t-1} + b_{hr})                 && \text{reset gate} \\
        z_t &= \sigma(W_z x_t + b_z + U_z h_{t-1} + b_{hz})                 && \text{update gate} \\
        n_t &= \tanh(W_n x_t + b_n + r_t \odot (U_n h_{t-1} + b_{hn}))     && \text{candidate} \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Gate order along the last axis: ``r, z, n``. No cell state (``c`` has zero width).
    """
    xr, xz, xn = jnp.split(xp, 3, axis=-1)
    hr, hz, hn = jnp.split(hh, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h_new = (1 - z) * n + z * h
    return h_new, c, (r, z, n, hn, h)


def _gru_backward(res, dh, dc):
    r, z, n, hn, h = res
    dn = dh * (1 - z) * (1 - n * n)
    dr = dn * hn * r * (1 - r)
    dz = dh * (h - n) * z * (1 - z)
    dxp = jnp.concatenate([dr, dz, dn], axis=-1)
    dhh = jnp.concatenate([dr, dz, dn * r], axis=-1)
    return dxp, dhh, dh * z, dc


def _rnn_forward(xp, hh, h, c):
    r"""Vanilla (Elman) RNN: :math:`h_t = \tanh(W x_t + b + U h_{t-1})`. No cell state."""
    h_new = jnp.tanh(xp + hh)
    return h_new, c, h_new


def _rnn_backward(res, dh, dc):
    dz = dh * (1 - res * res)
    return dz, None, None, dc


LSTM = Cell("lstm", 4, True, _lstm_forward, _lstm_backward)
GRU = Cell("gru", 3, False, _gru_forward, _gru_backward)
RNN = Cell("rnn", 1, False, _rnn_forward, _rnn_backward)
CELLS: dict[str, Cell] = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
"""The cells a task's ``cell`` parameter may name."""


def _scan_forward(cell: Cell, xp, b_h, w_h, h0, c0):
    def step(carry, xp_t):
        h, c = carry
        h_new, c_new, res = cell.forward(xp_t, h @ w_h + b_h, h, c)
        return (h_new, c_new), (h_new, res)

    _, (hs, res) = lax.scan(step, (h0, c0), xp)
    return hs, res


def recurrent_reference(cell: Cell, xp, b_h, w_h, h0, c0) -> jax.Array:
    """:func:`recurrent` with the backward pass left to autodiff (for tests and timing)."""
    return _scan_forward(cell, xp, b_h, w_h, h0, c0)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def recurrent(cell: Cell, xp, b_h, w_h, h0, c0) -> jax.Array:
    """Run ``cell`` over a time-major sequence; returns all hidden states ``[T, B, H]``.

    Args:
        cell: one of :data:`CELLS`.
        xp: the input pre-activations ``W x_t + b`` for all timesteps, ``[T, B, G*H]``.
        b_h: the recurrent bias ``[G*H]`` (zeros where the cell has none).
        w_h: the recurrent weights ``U``, ``[H, G*H]``.
        h0: the first hidden state ``[B, H]``; c0: the first cell state ``[B, H]`` for the
            LSTM, ``[B, 0]`` otherwise.
    """
    return _scan_forward(cell, xp, b_h, w_h, h0, c0)[0]


def _recurrent_fwd(cell, xp, b_h, w_h, h0, c0):
    hs, res = _scan_forward(cell, xp, b_h, w_h, h0, c0)
    h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
    return hs, (res, h_prev, w_h, c0)


def _recurrent_bwd(cell, saved, dhs):
    res, h_prev, w_h, c0 = saved
    hidden = w_h.shape[0]
    # U^T on the per-gate view [G, H, H]: the gate gradients need no reshape to the flat
    # [..., G*H] layout (on which XLA would divide every index by H).
    w_t = w_h.T.reshape(cell.gates, hidden, hidden)

    def step(carry, inp):
        dh_next, dc_next = carry
        dh_out, res_t = inp
        dxp, dhh, dh_direct, dc_prev = cell.backward(res_t, dh_out + dh_next, dc_next)
        gate_shape = (*dh_out.shape[:-1], cell.gates, hidden)
        dxp = dxp.reshape(gate_shape)
        dhh_g = dxp if dhh is None else dhh.reshape(gate_shape)
        # Contract (gate, unit) in memory order; an einsum here listed them the other way
        # round and XLA transposed both operands at every timestep.
        nd = dhh_g.ndim
        dh_prev = lax.dot_general(dhh_g, w_t, (((nd - 2, nd - 1), (0, 1)), ((), ())))
        if dh_direct is not None:
            dh_prev = dh_prev + dh_direct
        return (dh_prev, dc_prev), (dxp, None if dhh is None else dhh_g)

    init = (jnp.zeros_like(h_prev[0]), jnp.zeros_like(c0))
    (dh0, dc0), (dxp, dhh) = lax.scan(step, init, (dhs, res), reverse=True)
    t, b, h = h_prev.shape
    dxp = dxp.reshape(t, b, -1)
    dhh = dxp if dhh is None else dhh.reshape(t, b, -1)
    dw_h = h_prev.reshape(t * b, h).T @ dhh.reshape(t * b, -1)
    db_h = jnp.sum(dhh, axis=(0, 1))
    return dxp, db_h, dw_h, dh0, dc0


recurrent.defvjp(_recurrent_fwd, _recurrent_bwd)
