r"""Recurrent cells (LSTM, GRU, vanilla RNN) and the recurrent layer that runs them.

Notation: :math:`x_t` the input, :math:`h_{t-1}` the previous hidden state, :math:`\sigma`
the logistic sigmoid, :math:`\odot` the elementwise product. Every cell splits its
pre-activations into an input part :math:`W x_t + b` and a recurrent part
:math:`U h_{t-1} + b_h`. A cell is two pure functions over one timestep:

- ``forward(xp, hh, h, c) -> (h_new, c_new, residuals)``, with ``xp = W x_t + b`` and
  ``hh = U h_{t-1} + b_h`` for all the gates stacked along the last axis;
- ``backward(residuals, dh, dc) -> (dxp, dhh, dh_direct, dc_prev)``: the gradients with
  respect to ``xp``, ``hh`` (``None`` when equal to ``dxp``), ``h`` other than through
  ``hh`` (``None`` when there is none) and ``c``; ``dxp`` and ``dhh`` either flat
  ``[..., G*H]`` or on the per-gate view ``[..., G, H]``.

:func:`recurrent` runs a cell over a sequence with a hand-written backward pass
(``jax.custom_vjp``). For cells that only use the sum ``xp + hh`` (LSTM, RNN) each timestep
is one matmul, ``[h_{t-1}, x_t, 1] @ [U; W; b + b_h]``; the forward pass keeps the rows
``[h_{t-1}, x_t, 1]``, the reverse scan carries only the hidden-state gradients, and all
weight and bias gradients come from one large ``[T*B, H+D+1]^T @ [T*B, G*H]`` matmul after
it instead of small matmuls per timestep. The GRU needs ``xp`` and ``hh`` apart (the reset
gate multiplies ``hh`` alone): each timestep is ``x_t @ W + b`` and ``h_{t-1} @ U + b_h``,
the forward pass keeps :math:`h_{t-1}`, and the weight gradients are ``[T*B, H]^T @ [T*B,
G*H]`` for ``U`` and ``[T*B, D]^T @ [T*B, G*H]`` for ``W``. :func:`recurrent_probed` adds
gradient-flow probes to every :math:`h_t`, whose gradient is :math:`\partial J / \partial
h_t` for t = 1..T: the same backward pass, which also returns the hidden-state gradient it
carries at each timestep. :func:`recurrent_reference` is the same forward pass (with or
without probes) left to autodiff; the tests check that it gives the same gradients as
:func:`recurrent` and, probes included, as :func:`recurrent_probed` (float64, to 1e-10).

The lecture's slides and this code: the code keeps the conventions of PyTorch and cuDNN
(so that weights and numbers compare with theirs); the slides differ in the letters and,
for the GRU, in the update gate's direction and the reset gate's place (see
:func:`_lstm_forward` and :func:`_gru_forward`). The vanilla RNN is the slides' and the
code's :math:`h_t = \tanh(W x_t + U h_{t-1} + b)`, with W on the input here too.

Vanishing gradient. The slides follow the chain rule back through time,

.. math::
    \frac{\partial J^{(4)}}{\partial h^{(1)}} = \frac{\partial h^{(2)}}{\partial h^{(1)}}
    \times \frac{\partial h^{(3)}}{\partial h^{(2)}} \times
    \frac{\partial h^{(4)}}{\partial h^{(3)}} \times \frac{\partial J^{(4)}}{\partial h^{(4)}},

a product of Jacobians that vanishes "when the derivatives are small". Measured on the
adding problem at initialisation (length T = 50, H = 64, 256 sequences, 3 seeds), the
ratio :math:`g_1 / g_{50}` of :math:`g_t = \sqrt{\mathrm{mean}_i \lVert \partial J_i /
\partial h_t \rVert^2}` (per-example loss :math:`J_i`):

- tanh RNN (orthogonal U): 0.019-0.066;
- LSTM, forget bias 0: 7e-8; 1: 0.010-0.020; 1.5: 0.14-0.33; 2: 0.37-1.1; 3: 1.3-2.8;
- GRU, update bias 0: 2e-7; 1: 3e-4; 2: 0.023-0.029; 3: 0.18-0.20; 4: 0.46-0.49.

So the gates keep the gradient only when their biases hold them near "keep": the adding
task's defaults are forget bias 2 (:math:`f = \sigma(2) = 0.88`) and update bias 3
(:math:`z = \sigma(3) = 0.95`), the smallest whole numbers that keep :math:`g_1` within an
order of magnitude of :math:`g_{50}`; the LSTM's usual 1 (Gers et al. 2000; Jozefowicz et
al. 2015) lost as much as the tanh RNN. The tanh RNN loses only 1.2-1.7 orders of
magnitude at initialisation (its orthogonal U has all singular values 1); in training it
varies: after 400 Adam steps (2e-3) 3e-5-4e-3 (the LSTM at its default 0.01-0.12, the GRU
3.1-4.0), 5e-10 after 2,000 steps in a run that did not learn, 0.4 in one that did. At
initialisation a recurrent gain of 0.9 (U scaled by 0.9) gives it 5e-4-1.4e-3 over 50
steps, and length 100 gives 4e-4-5e-3 (gain 1).
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
    sums_inputs: bool  # forward uses only xp + hh: W x_t is folded into the matmul by U


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

    The lecture's slide writes the same cell with the letters W and U swapped, W on the
    hidden state and U on the input (here, as in PyTorch, W x and U h), and
    :math:`\tilde c` for ``g``:

    .. math::
        f^{(t)} = \sigma(W_f h^{(t-1)} + U_f x^{(t)} + b_f), \quad
        \tilde c^{(t)} = \tanh(W_c h^{(t-1)} + U_c x^{(t)} + b_c), \quad
        c^{(t)} = f^{(t)} \circ c^{(t-1)} + i^{(t)} \circ \tilde c^{(t)}

    (i and o as f). Along the cell, :math:`\partial c_t / \partial c_{t-1} = f_t`: the
    forget gate's bias sets how much of the state and its gradient a step keeps
    (``forget_bias`` of the recurrent tasks; see the module for the measurements).

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
    # One fused pass of tanh: sigmoid(x) = (tanh(x / 2) + 1) / 2 on the i, f, o blocks.
    # XLA's tanh is one rational function; its logistic, an exp and a division: the
    # evaluation forward pass over 2,000 sequences took 27.8 ms instead of 29.2 (2 cores;
    # 42.9 instead of 46.5 on one).
    is_g = (jnp.arange(4) == 2)[:, None]
    s = jnp.tanh(jnp.where(is_g, z, 0.5 * z))
    act = jnp.where(is_g, s, 0.5 * s + 0.5)
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

    The lecture's slide writes

    .. math::
        u^{(t)} &= \sigma(W_u h^{(t-1)} + U_u x^{(t)} + b_u) \\
        r^{(t)} &= \sigma(W_r h^{(t-1)} + U_r x^{(t)} + b_r) \\
        \tilde h^{(t)} &= \tanh(W_h (r^{(t)} \circ h^{(t-1)}) + U_h x^{(t)} + b_h) \\
        h^{(t)} &= (1 - u^{(t)}) \circ h^{(t-1)} + u^{(t)} \circ \tilde h^{(t)}

    and differs in three conventions: W and U are swapped (as for the LSTM); the update
    gate runs the other way, here :math:`z_t = 1` keeps the state where the slide's
    :math:`u = 1` replaces it, so :math:`z_t` is the slide's :math:`1 - u^{(t)}`
    (:math:`\sigma(a) = 1 - \sigma(-a)`: the update bias here is the slide's
    :math:`-b_u`) and the slide's "update gate 0 retains information" is :math:`z_t = 1`;
    the reset gate multiplies the recurrent matmul, :math:`r_t \odot (U_n h_{t-1} +
    b_{hn})` (cuDNN, PyTorch), where the slide resets the state before it,
    :math:`W_h (r \circ h)` (a different cell, but one matmul then gives all three gates).

    Vanishing gradient at initialisation: :math:`\partial h_t / \partial h_{t-1} =
    \mathrm{diag}(z_t) + \dots` (the direct path), and with update bias 0,
    :math:`z_t \approx \sigma(0) = 0.5` halves the carried state, and its gradient, at
    every step; with the candidate's path the gradient still shrank by 0.73 a step,
    :math:`g_1 / g_{50} = 2 \cdot 10^{-7}` on the adding problem. The adding task's default
    update bias 3 (:math:`z_t \approx 0.95`) gives 0.18-0.20 (see the module).
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


LSTM = Cell("lstm", 4, True, _lstm_forward, _lstm_backward, sums_inputs=True)
GRU = Cell("gru", 3, False, _gru_forward, _gru_backward, sums_inputs=False)
RNN = Cell("rnn", 1, False, _rnn_forward, _rnn_backward, sums_inputs=True)
CELLS: dict[str, Cell] = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
"""The cells a task's ``cell`` parameter may name."""


def _scan_forward(cell: Cell, x, w, b, w_h, b_h, h0, c0, probes=None):
    if cell.sums_inputs:
        ones = jnp.ones((*h0.shape[:-1], 1), h0.dtype)
        w_all = jnp.concatenate([w_h, w, (b + b_h)[None]], axis=0)

    def step(carry, xs):
        h, c = carry
        x_t, p_t = (xs, None) if probes is None else xs
        if cell.sums_inputs:
            # U h + b_h + W x + b in one matmul; the cell adds xp = 0 to it.
            rows = jnp.concatenate([h, x_t, ones], axis=-1)
            xp, hh = jnp.zeros((), h.dtype), rows @ w_all
        else:
            # W x_t as a matmul, even for 2 input features. As multiply-adds XLA fused them
            # into the gate kernel and compiled it to scalar code (it reads three slices of
            # one operand): the forward pass over the adding task's 1,000 evaluation
            # sequences took 52 ms instead of 11 (one core), a training step the same.
            rows = h
            xp, hh = x_t @ w + b, h @ w_h + b_h
        h_new, c_new, res = cell.forward(xp, hh, h, c)
        if p_t is not None:
            h_new = h_new + p_t  # the probe: d loss / d p_t at p_t = 0 is d loss / d h_t
        return (h_new, c_new), (rows, res)

    # not unrolled: unroll=2 and 4 (both scans) made 400 adding-LSTM steps of one run take
    # 3.0 s and 3.7 s against 2.3 s (2 cores), and changed the last bits
    (h_last, _), (rows, res) = lax.scan(step, (h0, c0), x if probes is None else (x, probes))
    return h_last, rows, res


def recurrent_reference(
    cell: Cell, x, w, b, w_h, b_h, h0, c0, probes: jax.Array | None = None
) -> jax.Array:
    r""":func:`recurrent` (with ``probes``, :func:`recurrent_probed`) with the backward pass
    left to autodiff (for tests, timing, and models built with ``custom_vjp=False``).

    ``probes`` (optional, ``[T, B, H]``, like ``x`` time-major) is added to the hidden state
    after each timestep, ``h_t + probes[t-1]`` for t = 1..T, before the next step (and the
    output, for t = T) reads it. At ``probes = 0`` nothing changes, and the gradient of a
    loss with respect to ``probes[t-1]`` is its gradient with respect to ``h_t``: the
    gradient flow back through time, :math:`\partial J / \partial h_t`.

    Example:
        >>> t, b, d, h = 5, 3, 2, 4
        >>> x, w, w_h = jnp.ones((t, b, d)), jnp.ones((d, h)), jnp.eye(h)
        >>> bias, h0, c0 = jnp.zeros(h), jnp.zeros((b, h)), jnp.zeros((b, 0))
        >>> loss = lambda p: recurrent_reference(RNN, x, w, bias, w_h, bias, h0, c0, p).sum()
        >>> jax.grad(loss)(jnp.zeros((t, b, h))).shape  # d loss / d h_t for t = 1..5
        (5, 3, 4)
    """
    return _scan_forward(cell, x, w, b, w_h, b_h, h0, c0, probes)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def recurrent(cell: Cell, x, w, b, w_h, b_h, h0, c0) -> jax.Array:
    """Run ``cell`` over a time-major sequence; returns the last hidden state ``[B, H]``.

    Args:
        cell: one of :data:`CELLS`.
        x: the inputs ``[T, B, D]``.
        w: the input weights ``W``, ``[D, G*H]``; b: their bias ``[G*H]``.
        w_h: the recurrent weights ``U``, ``[H, G*H]``; b_h: their bias ``[G*H]`` (zeros
            where the cell has none).
        h0: the first hidden state ``[B, H]``; c0: the first cell state ``[B, H]`` for the
            LSTM, ``[B, 0]`` otherwise.

    Example:
        >>> t, b, d, h = 5, 3, 2, 4
        >>> x = jnp.ones((t, b, d))
        >>> w, w_h, bias = jnp.zeros((d, 4 * h)), jnp.zeros((h, 4 * h)), jnp.zeros(4 * h)
        >>> recurrent(LSTM, x, w, bias, w_h, bias, jnp.zeros((b, h)), jnp.zeros((b, h))).shape
        (3, 4)
    """
    return _scan_forward(cell, x, w, b, w_h, b_h, h0, c0)[0]


def _recurrent_fwd(cell, x, w, b, w_h, b_h, h0, c0, probes=None):
    # With probes, rows and residuals hold the probed states: the backward pass then
    # differentiates the pass that ran.
    h_last, rows, res = _scan_forward(cell, x, w, b, w_h, b_h, h0, c0, probes)
    return h_last, (x, rows, res, w, w_h, c0)


def _recurrent_bwd(cell, saved, dh_last, probed: bool = False):
    """The cotangents of ``x, w, b, w_h, b_h, h0, c0`` and, if ``probed``, of the probes:
    the gradient arriving at each h_t, the reverse scan's carry ``dh`` (``dh_last`` for
    t = T). A Python flag, so that without probes the reverse scan has no [T, B, H] output
    for XLA to write (training's backward pass stays as it was)."""
    x, rows, res, w, w_h, c0 = saved
    hidden, d = w_h.shape[0], w.shape[0]
    # U^T on the per-gate view [G, H, H]: the gate gradients need no reshape to the flat
    # [..., G*H] layout (on which XLA would divide every index by H).
    w_t = w_h.T.reshape(cell.gates, hidden, hidden)

    def step(carry, res_t):
        dh, dc = carry
        dxp, dhh, dh_direct, dc_prev = cell.backward(res_t, dh, dc)
        gate_shape = (*dh.shape[:-1], cell.gates, hidden)
        dxp = dxp.reshape(gate_shape)
        dhh_g = dxp if dhh is None else dhh.reshape(gate_shape)
        # Contract (gate, unit) in memory order; an einsum here listed them the other way
        # round and XLA transposed both operands at every timestep.
        nd = dhh_g.ndim
        dh_prev = lax.dot_general(dhh_g, w_t, (((nd - 2, nd - 1), (0, 1)), ((), ())))
        if dh_direct is not None:
            dh_prev = dh_prev + dh_direct
        # the carry into step s is d loss / d h_{s+1}, the state step s produced plus
        # probes[s]: that probe's gradient
        return (dh_prev, dc_prev), (dxp, None if dhh is None else dhh_g, dh if probed else None)

    carry = (dh_last, jnp.zeros_like(c0))
    (dh0, dc0), (dxp, dhh, dprobes) = lax.scan(step, carry, res, reverse=True)
    more = (dprobes,) if probed else ()
    t, bsz, width = rows.shape
    dxp = dxp.reshape(t * bsz, -1)
    flat_rows = rows.reshape(t * bsz, width).T
    dx = (dxp @ w.T).reshape(t, bsz, d)
    if cell.sums_inputs:
        # rows [h, x, 1] x columns: d/dU, d/dW, d/db (= d/db_h) in one matmul
        grad = flat_rows @ dxp
        return dx, grad[hidden:-1], grad[-1], grad[:hidden], grad[-1], dh0, dc0, *more
    # rows h: d/dU from them, d/dW from x alone. [h, x, 1]^T @ dxp for d/dW and d/db spent a
    # quarter of the GRU's matmul work on the h rows it threw away: a training step (batch
    # 64, length 50, H 64) took 2.94 ms, 2.58 ms without (one core, medians of 9).
    dhh = dhh.reshape(t * bsz, -1)
    grad_w = x.reshape(t * bsz, d).T @ dxp
    return dx, grad_w, dxp.sum(0), flat_rows @ dhh, dhh.sum(0), dh0, dc0, *more


recurrent.defvjp(_recurrent_fwd, _recurrent_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def recurrent_probed(cell: Cell, x, w, b, w_h, b_h, h0, c0, probes) -> jax.Array:
    r""":func:`recurrent` with gradient-flow probes ``[T, B, H]`` added to every h_t (as in
    :func:`recurrent_reference`), on the hand-written backward pass; the probes' gradient is
    :math:`\partial J / \partial h_t` for t = 1..T. A function apart from
    :func:`recurrent` so that training does not carry the probes' extra scan output.

    Example:
        >>> t, b, d, h = 5, 3, 2, 4
        >>> x, w, w_h = jnp.ones((t, b, d)), jnp.ones((d, h)), jnp.eye(h)
        >>> bias, h0, c0 = jnp.zeros(h), jnp.zeros((b, h)), jnp.zeros((b, 0))
        >>> loss = lambda p: recurrent_probed(RNN, x, w, bias, w_h, bias, h0, c0, p).sum()
        >>> jax.grad(loss)(jnp.zeros((t, b, h))).shape  # d loss / d h_t for t = 1..5
        (5, 3, 4)
    """
    return _scan_forward(cell, x, w, b, w_h, b_h, h0, c0, probes)[0]


# the same forward pass (with probes); the backward pass also returns the probes' cotangent
recurrent_probed.defvjp(_recurrent_fwd, functools.partial(_recurrent_bwd, probed=True))
