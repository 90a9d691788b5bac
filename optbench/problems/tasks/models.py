"""The tasks' models: plain functions over dicts of arrays (pytrees), seeded initialisation.

A :class:`Model` bundles ``init(key, dtype) -> (params, state)`` and
``apply(params, state, x, *, key, train, h0=None) -> (output, new state)``. ``state`` holds
what is not trained by gradient (batchnorm running averages; an empty dict otherwise).
Recurrent models take the first hidden state ``h0`` as an argument (zeros when ``None``),
so the training program can differentiate the loss with respect to it.

Models with dropout (``digits_cnn``, ``digits_mlp``) take ``dropout=None`` too: the rate,
which may be traced (None: the rate they were built with). Models with a ``flow`` take
``probes=None``, an array of ``probe_shape(x)`` added to the hidden states whose gradient
the training program records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from optbench import compilation
from optbench.problems.tasks import layers
from optbench.problems.tasks.cells import CELLS, recurrent, recurrent_probed, recurrent_reference


@dataclass(frozen=True)
class Model:
    """A model: ``init``, ``apply``, the loss kind and, for recurrent models, the hidden size."""

    init: Callable
    apply: Callable
    loss: str  # "xent" (10-class cross-entropy) or "mse"
    hidden: int | None = None
    hidden_batch_axis: int = 0
    # Gradient-flow probes: "time" (recurrent models, probes on h_t per timestep) or "depth"
    # (deep MLPs, probes per layer); None when ``apply`` takes no ``probes``.
    flow: str | None = None
    # probe_shape(x) -> the shape of the ``probes`` array ``apply`` accepts for the batch x.
    probe_shape: Callable | None = None
    # XLA compiler options of the training program, (name, value) pairs (a hashable model);
    # empty: XLA's defaults. See MATMUL_BOUND.
    compile_options: tuple[tuple[str, int], ...] = ()


MATMUL_BOUND = tuple(compilation.LLVM_O1.items())
"""XLA options of the training programs of the CNN and of logistic regression, whose time
goes to matmuls (library calls, not code LLVM generates): LLVM's -O1 compiles them faster
and they run as fast. Measured on a 2-core AMD EPYC on 2026-12-03, 8 Adam runs of 20 epochs
(the plain CNN: 9 SGD runs): the training program's XLA compile 5.1 -> 4.2 s (CNN), 8.2 ->
6.6 s (batchnorm CNN), 4.4 -> 3.2 s (logreg). The digits slice's four CNN groups (36 runs)
as the first ``optbench.run`` of a fresh process, disk cache off, 3 alternating pairs:
35.4 s (35.0-37.8) at -O2, 30.4 s (30.2-34.7) at -O1; the second call's run time (programs
kept) 15.3 s (14.5-17.2) against 15.4 s (14.1-16.8); batchnorm CNN 4.15 s against 4.22 s.
Left at -O2: the MLP (it ran 0.36 -> 0.47 s at -O1) and the recurrent models (the adding
LSTM 28.8 -> 30.9 s, the digits LSTM 1.0 -> 1.1 s), which spend more of their time in code
LLVM generates. -O0 compiles the CNN's in 2.3 s but runs it 4x slower."""


def loss_and_accuracy(kind: str, out: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The batch's mean data loss and accuracy: ``kind="xent"``, the cross-entropy of the
    logits ``out`` ``[B, 10]`` against the labels ``y`` and the fraction classified right;
    ``"mse"``, the mean squared error and NaN."""
    if kind == "mse":
        return jnp.mean(jnp.square(out - y)), jnp.full((), jnp.nan, out.dtype)
    logp = jax.nn.log_softmax(out)
    nll = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
    acc = jnp.mean((jnp.argmax(out, axis=1) == y).astype(out.dtype))
    return nll, acc


def evaluation_outputs(
    model: Model, params: dict, state: dict, x: jax.Array, size: int, **apply_kw
) -> jax.Array:
    """The model's outputs on ``x`` in evaluation mode, ``size`` examples at a time (the
    last batch padded with zeros; ``lax.map`` over the batches). ``apply_kw`` goes to
    ``model.apply`` (a traced ``dropout`` rate)."""
    n = x.shape[0]
    chunks = -(-n // size)
    pad = jnp.concatenate([x, jnp.zeros((chunks * size - n, *x.shape[1:]), x.dtype)])
    xb = pad.reshape(chunks, size, *x.shape[1:])
    out = jax.lax.map(lambda b: model.apply(params, state, b, train=False, **apply_kw)[0], xb)
    return out.reshape(chunks * size, *out.shape[2:])[:n]


def weight_penalty(params: dict, l1: float | jax.Array, l2: float | jax.Array) -> jax.Array:
    """``l1 * sum |w| + l2 * sum w**2`` over the weight matrices and kernels (every leaf named
    ``w``; biases and batchnorm scales are not penalised). Both non-zero: the elastic net.

    The lecture's slide adds ``lambda R(W)`` to the loss with ``R = ||W||_2^2`` (L2),
    ``||W||_1`` (L1) or ``beta ||W||_2^2 + ||W||_1`` (elastic net): that is ``l1 = lambda``,
    ``l2 = lambda beta`` (L2 alone: ``l1 = 0, l2 = lambda``).

    The gradient of the ``l2`` term is ``2 l2 w``, while an optimizer's coupled
    ``weight_decay`` adds ``wd w`` to the gradient: ``l2 = wd / 2`` gives the same gradient
    on the weights, so plain SGD takes the same steps there (coupled decay in an adaptive
    optimizer is rescaled like the penalty's gradient). Unlike this penalty, weight_decay
    also shrinks the biases and batchnorm parameters; AdamW's decoupled decay is no penalty.

    ``l1`` and ``l2`` may be traced (one compiled program for several values); a term is left
    out only when its coefficient is a concrete zero (:func:`layers.is_static_zero`).
    """
    total = jnp.zeros((), jax.tree.leaves(params)[0].dtype)
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if getattr(path[-1], "key", None) != "w":
            continue
        if not layers.is_static_zero(l1):
            total = total + _coefficient(l1, leaf) * jnp.sum(jnp.abs(leaf))
        if not layers.is_static_zero(l2):
            total = total + _coefficient(l2, leaf) * jnp.sum(jnp.square(leaf))
    return total


def _coefficient(c: float | jax.Array, leaf: jax.Array) -> float | jax.Array:
    """An array coefficient in the leaf's dtype (a float64 ``l2`` must not promote float32
    losses); a Python number stays as it is, weakly typed."""
    return c if isinstance(c, int | float) else jnp.asarray(c, leaf.dtype)


def digits_cnn(
    *,
    batchnorm: bool,
    dropout: float,
    activation: str,
    channels: tuple[int, int] = (16, 32),
    dropout_mode: str = "inverted",
    bn_alpha: float = layers.BATCHNORM_ALPHA,
) -> Model:
    """conv3x3(16) - [batchnorm] - act - maxpool - conv3x3(32) - [batchnorm] - act - maxpool -
    [dropout] - dense(10), on ``[B, 8, 8]`` images; returns logits ``[B, 10]``.

    ``dropout``: the rate when ``apply`` is given none, ``dropout_mode``: ``"inverted"`` or
    ``"test_scaling"`` (:func:`layers.dropout`); ``bn_alpha``: the running averages' weight
    of each batch (:func:`layers.batchnorm`). ``apply(..., dropout=r)`` overrides the rate,
    also with a traced ``r``.
    """
    if dropout_mode not in layers.DROPOUT_MODES:
        raise ValueError(f"dropout_mode must be one of {layers.DROPOUT_MODES}")
    act = layers.ACTIVATIONS[activation]
    default_rate = dropout
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

    def apply(params, state, x, *, key=None, train=False, h0=None, dropout=None):
        new_state = {}
        y = x[..., None]
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
            y = layers.conv3x3(y, params[conv]["w"], params[conv]["b"])
            if batchnorm:
                y, new_state[bn] = layers.batchnorm(
                    y, params[bn], state[bn], train=train, alpha=bn_alpha
                )
            y = layers.max_pool2x2(act(y))
        y = y.reshape(y.shape[0], -1)
        rate = default_rate if dropout is None else dropout
        y = layers.dropout(key, y, rate, train=train, mode=dropout_mode)
        return layers.dense(y, params["out"]["w"], params["out"]["b"]), new_state

    return Model(init, apply, "xent", compile_options=MATMUL_BOUND)


def digits_mlp(
    *,
    hidden: int,
    batchnorm: bool,
    dropout: float,
    activation: str,
    depth: int = 1,
    residual: bool = False,
    dropout_mode: str = "inverted",
    bn_alpha: float = layers.BATCHNORM_ALPHA,
) -> Model:
    """``depth`` hidden blocks dense(hidden) - [batchnorm] - act, then [dropout] - dense(10),
    on the 64 flattened pixels; returns logits ``[B, 10]``.

    ``residual``: every block after the first (64 -> hidden changes the width) becomes
    ``y = y + act([batchnorm](dense(y)))``, the identity skip connection of ResNet (He et
    al. 2016), the lecture's fix for the vanishing gradient in deep non-recurrent networks:
    the gradient reaches the lower blocks through the identity, not only through each
    block's activation derivative. Initialisation: He (relu, softplus) or Glorot (tanh,
    sigmoid) as in :func:`layers.init_weight`, the residual branches' weights then divided by
    ``sqrt(depth - 1)`` so their sum does not explode. Measured at initialisation (hidden
    128, depth 20), the gradient norm at block 1 over that at block 20: sigmoid 1.3e-12
    without skips and 1.0 with them; relu 1.25 and 2.2, tanh 0.50 and 1.6 (He and Glorot
    were designed to keep these two from vanishing: the sigmoid, whose derivative is at
    most 1/4, is the nonlinearity that shows the slide's point).
    Dropout is applied once, to the last block's output, so it never cuts the skip path.
    ``dropout``, ``dropout_mode`` and ``bn_alpha`` as in :func:`digits_cnn`.

    ``apply(..., probes=p)`` with ``p`` of shape ``probe_shape(x) = (depth, B, hidden)`` adds
    ``p[l]`` to block ``l``'s output (after its activation and skip addition): the gradient
    of the loss with respect to ``p`` at zeros is the gradient with respect to each block's
    output, the gradient flow over depth.
    """
    if dropout_mode not in layers.DROPOUT_MODES:
        raise ValueError(f"dropout_mode must be one of {layers.DROPOUT_MODES}")
    act = layers.ACTIVATIONS[activation]
    default_rate = dropout
    # Block 1 keeps the names of the one-hidden-layer model; blocks 2.. are hidden2, bn2, ...
    dense_names = ["hidden"] + [f"hidden{i}" for i in range(2, depth + 1)]
    bn_names = ["bn"] + [f"bn{i}" for i in range(2, depth + 1)]

    def init(key, dtype):
        # split(key, 2) == split(key): depth 1 draws the numbers it always drew.
        keys = jax.random.split(key, depth + 1)
        params = {}
        for i, name in enumerate(dense_names):
            fan_in = 64 if i == 0 else hidden
            w = layers.init_weight(keys[i], (fan_in, hidden), fan_in, hidden, activation, dtype)
            if residual and i > 0:
                # Residual branches scaled by 1 / sqrt(number of branches) (Hayou et al. 2021):
                # each branch adds to the variance, and at He/Glorot scale the sum explodes.
                # Measured at init (hidden 128, depth 20; gradient norm at block 1 over block
                # 20): relu 4.9e3 unscaled, 2.2 scaled; tanh 18 and 1.6; sigmoid 1.2 and 1.0
                # (without the skips: relu 1.25, tanh 0.50, sigmoid 1.3e-12).
                w = w / (depth - 1) ** 0.5
            params[name] = {"w": w, "b": jnp.zeros((hidden,), dtype)}
        params["out"] = {
            "w": layers.glorot_uniform(keys[depth], (hidden, 10), hidden, 10, dtype),
            "b": jnp.zeros((10,), dtype),
        }
        state = {}
        if batchnorm:
            for name in bn_names:
                params[name], state[name] = layers.init_batchnorm(hidden, dtype)
        return params, state

    def apply(params, state, x, *, key=None, train=False, h0=None, probes=None, dropout=None):
        new_state = {}
        y = x.reshape(x.shape[0], -1)
        for i, (name, bn) in enumerate(zip(dense_names, bn_names, strict=True)):
            z = layers.dense(y, params[name]["w"], params[name]["b"])
            if batchnorm:
                z, new_state[bn] = layers.batchnorm(
                    z, params[bn], state[bn], train=train, alpha=bn_alpha
                )
            y = y + act(z) if residual and i > 0 else act(z)
            if probes is not None:
                y = y + probes[i]
        rate = default_rate if dropout is None else dropout
        y = layers.dropout(key, y, rate, train=train, mode=dropout_mode)
        return layers.dense(y, params["out"]["w"], params["out"]["b"]), new_state

    def probe_shape(x: jax.Array) -> tuple[int, ...]:
        return (depth, x.shape[0], hidden)

    return Model(init, apply, "xent", flow="depth", probe_shape=probe_shape)


def digits_logreg() -> Model:
    """Multinomial logistic regression: dense(10) on the 64 pixels (a convex problem)."""

    def init(key, dtype):
        # Zero initialisation is the convex baseline's canonical start; seeds change only
        # the shuffling.
        return {"out": {"w": jnp.zeros((64, 10), dtype), "b": jnp.zeros((10,), dtype)}}, {}

    def apply(params, state, x, *, key=None, train=False, h0=None):
        return layers.dense(x.reshape(x.shape[0], -1), params["out"]["w"], params["out"]["b"]), {}

    return Model(init, apply, "xent", compile_options=MATMUL_BOUND)


def init_recurrent(
    key,
    cell_name: str,
    inputs: int,
    hidden: int,
    dtype,
    *,
    forget_bias: float = 1.0,
    update_bias: float = 0.0,
) -> dict:
    """Input weights Glorot-uniform, recurrent weights orthogonal per gate, biases zero except
    the LSTM's forget-gate bias ``forget_bias`` and the GRU's update-gate bias ``update_bias``
    (each ignored by the other cells). The defaults are the usual ones, 1 for the forget
    gate (Gers et al. 2000; Jozefowicz et al. 2015) and 0 as in PyTorch; over 50 steps they
    lose the gradient (:mod:`.cells` has the measurements), and the ``adding`` task starts
    from 2 and 3."""
    cell = CELLS[cell_name]
    g = cell.gates
    k_in, k_rec = jax.random.split(key)
    w_x = layers.glorot_uniform(k_in, (inputs, g * hidden), inputs, hidden, dtype)
    w_h = jnp.concatenate(
        [layers.orthogonal(k, hidden, dtype) for k in jax.random.split(k_rec, g)], axis=1
    )
    b = jnp.zeros((g * hidden,), dtype)
    # The second gate block is the LSTM's f and the GRU's z: the gates that keep the state.
    if cell_name == "lstm":
        b = b.at[hidden : 2 * hidden].set(forget_bias)
    elif cell_name == "gru":
        b = b.at[hidden : 2 * hidden].set(update_bias)
    p = {"w": w_x, "b": b, "w_h": w_h}
    if cell_name == "gru":
        p["b_h"] = jnp.zeros((g * hidden,), dtype)
    return p


def run_recurrent(
    p: dict,
    cell_name: str,
    x: jax.Array,
    h0: jax.Array | None,
    *,
    custom_vjp: bool = True,
    probes: jax.Array | None = None,
) -> jax.Array:
    """Run a recurrent layer over batch-major ``x`` (``[B, T, D]``); returns ``h_T`` ``[B, H]``.

    ``probes`` (``[T, B, H]``, time-major) is added to ``h_t`` after each timestep (see
    :func:`~optbench.problems.tasks.cells.recurrent_reference`). ``custom_vjp``: the
    hand-written backward pass, with probes that of
    :func:`~optbench.problems.tasks.cells.recurrent_probed` (which also returns their
    gradient); False: the forward pass left to autodiff.
    """
    cell = CELLS[cell_name]
    bsz = x.shape[0]
    hidden = p["w_h"].shape[0]
    if h0 is None:
        h0 = jnp.zeros((bsz, hidden), x.dtype)
    c0 = jnp.zeros((bsz, hidden if cell.has_cell_state else 0), x.dtype)
    b_h = p.get("b_h", jnp.zeros_like(p["b"]))
    args = (cell, jnp.swapaxes(x, 0, 1), p["w"], p["b"], p["w_h"], b_h, h0, c0)
    if probes is None:
        return (recurrent if custom_vjp else recurrent_reference)(*args)
    return (recurrent_probed if custom_vjp else recurrent_reference)(*args, probes)


def sequence_model(
    *,
    cell: str,
    hidden: int,
    inputs: int,
    outputs: int,
    custom_vjp: bool = True,
    forget_bias: float = 1.0,
    update_bias: float = 0.0,
) -> Model:
    """A recurrent layer read to the end, then dense(outputs) on the last hidden state.

    ``x``: ``[B, T, inputs]``. With ``outputs == 1`` the output is ``[B]`` (regression).
    """

    def init(key, dtype):
        k1, k2 = jax.random.split(key)
        params = {
            "rnn": init_recurrent(
                k1, cell, inputs, hidden, dtype, forget_bias=forget_bias, update_bias=update_bias
            ),
            "out": {
                "w": layers.glorot_uniform(k2, (hidden, outputs), hidden, outputs, dtype),
                "b": jnp.zeros((outputs,), dtype),
            },
        }
        return params, {}

    def apply(params, state, x, *, key=None, train=False, h0=None, probes=None):
        h = run_recurrent(params["rnn"], cell, x, h0, custom_vjp=custom_vjp, probes=probes)
        y = layers.dense(h, params["out"]["w"], params["out"]["b"])
        return (y[:, 0] if outputs == 1 else y), {}

    def probe_shape(x: jax.Array) -> tuple[int, ...]:
        return (x.shape[1], x.shape[0], hidden)  # [T, B, H]: time-major, as the scan

    return Model(
        init,
        apply,
        "mse" if outputs == 1 else "xent",
        hidden=hidden,
        flow="time",
        probe_shape=probe_shape,
    )
