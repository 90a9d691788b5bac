"""Layers as plain functions over dicts of arrays: convolution, pooling, dense, batchnorm, dropout.

Every layer works on one example batch; the training program vmaps whole runs over them.
The 3x3 convolution is written as matmuls of shifted slices of its input: on the CPU, XLA's
native convolution is several times slower for 8x8 images.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
}
"""The activation functions a task's ``activation`` parameter may name.

``sigmoid(a) = 1 / (1 + e^-a)``. The lecture's slide writes ``1 / (1 + e^a)``, a sign slip:
that is ``sigmoid(-a)``, decreasing in ``a``. ``tanh(a) = 2 sigmoid(2a) - 1``;
``softplus(a) = log(1 + e^a)``, a smooth relu whose derivative is the sigmoid.
"""

BATCHNORM_ALPHA = 0.1
"""The slide's alpha: ``running := alpha batch + (1 - alpha) running`` (PyTorch's momentum)."""

BATCHNORM_MOMENTUM = 1 - BATCHNORM_ALPHA
"""``1 - alpha`` = 0.9, the weight of the old running average (Keras's momentum)."""

BATCHNORM_EPS = 1e-5

DROPOUT_MODES = ("inverted", "test_scaling")
"""Where dropout's rescaling happens: see :func:`dropout`."""


def is_static_zero(value: object) -> bool:
    """True when ``value`` is a concrete zero (a Python or NumPy number, a concrete array).

    A traced value never is, even if it will be 0: one compiled program serves several
    values, so a layer or penalty term it switches stays in the program.
    """
    if isinstance(value, jax.core.Tracer):
        return False
    try:
        return bool(np.all(np.asarray(value) == 0))
    except (TypeError, ValueError):
        return False


def glorot_uniform(key: jax.Array, shape: tuple[int, ...], fan_in: int, fan_out: int, dtype):
    """Glorot & Bengio (2010): uniform in ``±sqrt(6 / (fan_in + fan_out))``."""
    limit = (6.0 / (fan_in + fan_out)) ** 0.5
    return jax.random.uniform(key, shape, dtype, -limit, limit)


def he_normal(key: jax.Array, shape: tuple[int, ...], fan_in: int, dtype):
    """He et al. (2015): normal with standard deviation ``sqrt(2 / fan_in)``."""
    return jax.random.normal(key, shape, dtype) * (2.0 / fan_in) ** 0.5


def orthogonal(key: jax.Array, n: int, dtype) -> jax.Array:
    """A random ``n x n`` orthogonal matrix, Haar distributed (Saxe et al. 2014).

    The Q factor of a Gaussian matrix with a positive diagonal R, computed by Gram-Schmidt
    with reorthogonalization ("twice is enough", Giraud et al. 2005): matrix-vector
    products only. LAPACK's QR (``jax.nn.initializers.orthogonal``) is avoided on purpose:
    vmapped over seeds inside the training program, its batched CPU kernel waits on the
    thread pool that runs it and can deadlock.
    """
    a = jax.random.normal(key, (n, n), dtype)
    cols = jnp.arange(n)

    def column(j: jax.Array, q: jax.Array) -> jax.Array:
        earlier = (cols < j).astype(dtype)  # the columns before j are orthonormal already
        v = q[:, j]
        for _ in range(2):
            v = v - q @ ((q.T @ v) * earlier)
        return q.at[:, j].set(v / jnp.sqrt(jnp.sum(v * v)))

    return jax.lax.fori_loop(0, n, column, a)


def init_weight(key: jax.Array, shape, fan_in: int, fan_out: int, activation: str, dtype):
    """He initialisation before relu/softplus, Glorot before tanh/sigmoid and outputs."""
    if activation in ("relu", "softplus"):
        return he_normal(key, shape, fan_in, dtype)
    return glorot_uniform(key, shape, fan_in, fan_out, dtype)


def conv3x3(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    """A 3x3 convolution with zero 'same' padding, stride 1.

    ``x``: ``[B, H, W, C]``; ``w``: ``[3, 3, C, O]`` (HWIO, as ``lax.conv`` with
    ``("NHWC", "HWIO", "NHWC")``); ``b``: ``[O]``. Returns ``[B, H, W, O]``:
    ``y[b, i, j, o] = b[o] + sum_{di, dj, c} xpad[b, i + di, j + dj, c] w[di, dj, c, o]``,
    computed as matmuls of shifted slices of the padded input: for each row offset ``di``,
    the three column shifts concatenated along the channels, ``[B*H*W, 3C] @ [3C, O]``, the
    three summed; with one input channel, each of the nine shifts ``[B*H*W, 1] @ [1, O]``.

    Why these forms (320 SGD steps of 5 vmapped digits CNNs, one core, 2026-12-03): one
    ``[B*H*W, 9C] @ [9C, O]`` matmul of all nine shifts (im2col) took 1.65 s, three row
    matmuls 1.28 s (nine for the first layer; three there, K = 3: 1.84 s), nine matmuls of
    ``C`` channels 1.50 s, ``lax.conv_general_dilated`` 12.3 s.
    """
    bsz, h, wd, c = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))

    def shifted(i: int, j: int) -> jax.Array:
        return xp[:, i : i + h, j : j + wd, :]

    if c == 1:
        terms = [shifted(i, j).reshape(-1, 1) @ w[i, j] for i in range(3) for j in range(3)]
    else:
        terms = [
            jnp.concatenate([shifted(i, j) for j in range(3)], axis=-1).reshape(-1, 3 * c)
            @ w[i].reshape(3 * c, -1)
            for i in range(3)
        ]
    y = functools.reduce(operator.add, terms)
    return y.reshape(bsz, h, wd, -1) + b


def max_pool2x2(x: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2 over ``[B, H, W, C]`` (H and W even)."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def dense(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    """``x @ w + b``."""
    return x @ w + b


def batchnorm(
    x: jax.Array, p: dict, s: dict, *, train: bool, alpha: float | jax.Array = BATCHNORM_ALPHA
) -> tuple[jax.Array, dict]:
    """Batch normalisation (Ioffe & Szegedy 2015) over all axes but the last (the features).

    The lecture's slide, per feature ``i``::

        h_i = (h_i - mu_i) / sqrt(sigma_i^2)
        mu_i      := alpha mean_batch     + (1 - alpha) mu_i
        sigma_i^2 := alpha variance_batch + (1 - alpha) sigma_i^2

    and the 2015 algorithm it quotes: ``x_hat = (x - mu_B) / sqrt(sigma_B^2 + eps)``,
    ``y = gamma x_hat + beta``. This code, training::

        y = scale (x - mean_B) / sqrt(var_B + eps) + bias      (eps = BATCHNORM_EPS)
        mean := alpha mean_B + (1 - alpha) mean,  var := alpha var_B + (1 - alpha) var

    with the batch's mean and biased variance (the 2015 algorithm's ``1/m``; the running
    ``var`` averages that same biased value). Evaluation: the running averages replace the
    batch statistics, ``y = scale (x - mean) / sqrt(var + eps) + bias``, and are not changed.
    Where the slide differs: its first form has no eps under the root (a feature constant
    over the batch divides by zero) and no learned ``scale``/``bias`` (gamma, beta), which
    let the layer represent the identity; and it updates the running averages without
    saying what for: evaluation normalises with them instead of the batch's statistics.

    ``alpha`` in (0, 1] (PyTorch's ``momentum``; Keras's is ``1 - alpha``), default 0.1.
    ``p`` holds ``scale`` and ``bias``, ``s`` holds ``mean`` and ``var``; returns ``(y, new s)``.
    """
    axes = tuple(range(x.ndim - 1))
    if train:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        # Weights m and 1 - m with m = 1 - alpha: for alpha = 0.1 these are the float64
        # numbers 0.9 and 0.09999999999999998 the layer used before alpha was a parameter
        # (0.1 itself is 2 ulps away; in float32 both round to the same number).
        m = 1 - alpha
        s = {"mean": m * s["mean"] + (1 - m) * mean, "var": m * s["var"] + (1 - m) * var}
    else:
        mean, var = s["mean"], s["var"]
    y = (x - mean) * jax.lax.rsqrt(var + BATCHNORM_EPS) * p["scale"] + p["bias"]
    return y, s


def init_batchnorm(features: int, dtype) -> tuple[dict, dict]:
    """Parameters (scale 1, bias 0) and running statistics (mean 0, var 1) of a batchnorm."""
    ones, zeros = jnp.ones((features,), dtype), jnp.zeros((features,), dtype)
    return {"scale": ones, "bias": zeros}, {"mean": zeros, "var": ones}


def dropout(
    key: jax.Array | None,
    x: jax.Array,
    rate: float | jax.Array,
    *,
    train: bool,
    mode: str = "inverted",
) -> jax.Array:
    """Dropout (Srivastava et al. 2014): in training, zero each unit with probability ``rate``.

    The lecture's slide: "Some neurons are dropped during training. Prevents overfitting.
    Actually, on test case output should be normalized." The two forms, with keep mask
    ``k ~ Bernoulli(1 - p)`` per unit:

    - ``mode="inverted"`` (the default, as PyTorch and Keras): training ``k x / (1 - p)``,
      evaluation ``x``. The rescaling moves to training, so evaluation is the plain network.
    - ``mode="test_scaling"`` (the paper's form): training ``k x``, evaluation
      ``(1 - p) x``, the weights scaled down by the keep probability at test time.

    Their expectations over the mask match: inverted training gives ``E[k x / (1 - p)] =
    x`` against ``x`` at evaluation; test_scaling gives ``E[k x] = (1 - p) x`` against
    ``(1 - p) x``. Either way the next layer sees in evaluation the mean of what it saw in
    training; the two networks differ by the factor ``1 - p`` on everything downstream,
    which the next layer's weights absorb.

    ``rate`` may be traced (one compiled program for several rates): the layer is then always
    in the program, and a traced 0 gives outputs bit-identical to no dropout (every unit is
    kept, divided or multiplied by exactly 1). A concrete 0 skips the layer. ``key`` is
    needed in training unless the rate is a concrete 0.
    """
    if mode not in DROPOUT_MODES:
        raise ValueError(f"dropout mode must be one of {DROPOUT_MODES}, got {mode!r}")
    if is_static_zero(rate):
        return x
    if not isinstance(rate, int | float):
        # An array rate (traced, NumPy) in x's dtype: a float64 rate must not promote float32
        # layers. A Python float stays as it is, weakly typed, 1 - rate in double as before.
        rate = jnp.asarray(rate, x.dtype)
    if not train:
        return x if mode == "inverted" else x * (1.0 - rate)
    if key is None:
        raise ValueError("dropout in training needs a key (or a rate that is a concrete 0)")
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    kept = x / (1.0 - rate) if mode == "inverted" else x
    return jnp.where(keep, kept, jnp.zeros_like(x))
