"""Layers as plain functions over dicts of arrays: convolution, pooling, dense, batchnorm, dropout.

Every layer works on one example batch; the training program vmaps whole runs over them.
The 3x3 convolution is written as nine shifted slices concatenated along the channels and
one matmul: on the CPU, XLA's native convolution is several times slower for 8x8 images.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
}
"""The activation functions a task's ``activation`` parameter may name."""

BATCHNORM_MOMENTUM = 0.9
"""Running averages: ``running = 0.9 running + 0.1 batch`` (PyTorch's momentum 0.1)."""

BATCHNORM_EPS = 1e-5


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
    computed as the nine shifted slices of the padded input concatenated along the
    channels (im2col) and one ``[B*H*W, 9C] @ [9C, O]`` matmul.
    """
    bsz, h, wd, c = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = jnp.concatenate(
        [xp[:, i : i + h, j : j + wd, :] for i in range(3) for j in range(3)], axis=-1
    )
    y = patches.reshape(bsz * h * wd, 9 * c) @ w.reshape(9 * c, -1)
    return y.reshape(bsz, h, wd, -1) + b


def max_pool2x2(x: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2 over ``[B, H, W, C]`` (H and W even)."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def dense(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    """``x @ w + b``."""
    return x @ w + b


def batchnorm(x: jax.Array, p: dict, s: dict, *, train: bool) -> tuple[jax.Array, dict]:
    """Batch normalisation (Ioffe & Szegedy 2015) over all axes but the last (the features).

    Training: ``y = scale (x - mean_B) / sqrt(var_B + eps) + bias`` with the batch's mean and
    (biased) variance, and the running averages move towards them:
    ``running = m running + (1 - m) batch`` with ``m = BATCHNORM_MOMENTUM``.
    Evaluation: the running averages replace the batch statistics and are not changed.

    ``p`` holds ``scale`` and ``bias``, ``s`` holds ``mean`` and ``var``; returns ``(y, new s)``.
    """
    axes = tuple(range(x.ndim - 1))
    if train:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        m = BATCHNORM_MOMENTUM
        s = {"mean": m * s["mean"] + (1 - m) * mean, "var": m * s["var"] + (1 - m) * var}
    else:
        mean, var = s["mean"], s["var"]
    y = (x - mean) * jax.lax.rsqrt(var + BATCHNORM_EPS) * p["scale"] + p["bias"]
    return y, s


def init_batchnorm(features: int, dtype) -> tuple[dict, dict]:
    """Parameters (scale 1, bias 0) and running statistics (mean 0, var 1) of a batchnorm."""
    ones, zeros = jnp.ones((features,), dtype), jnp.zeros((features,), dtype)
    return {"scale": ones, "bias": zeros}, {"mean": zeros, "var": ones}


def dropout(key: jax.Array | None, x: jax.Array, rate: float, *, train: bool) -> jax.Array:
    """Inverted dropout: in training, zero each unit with probability ``rate`` and scale the
    survivors by ``1 / (1 - rate)``, so evaluation (identity) needs no rescaling."""
    if not train or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))
