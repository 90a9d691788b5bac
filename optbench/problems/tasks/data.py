"""Data for the training tasks: the 8x8 digits split, augmentation, the adding problem.

The digits are scikit-learn's copy of the UCI handwritten digits (1,797 images of 8x8
pixels with values 0..16, shipped inside scikit-learn, no download). They are scaled to
[0, 1] and split once, stratified by class, with a fixed seed (``SPLIT_SEED``): 60 % train
(1,077 images), 20 % validation (360), 20 % test (360). Every task and every run sees the
same split; the run's seed only drives initialisation, shuffling, dropout and augmentation.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

SPLIT_SEED = 0
"""Seed of the fixed stratified train/validation/test split of the digits."""

ADDING_TEST_SEED = 20_150_000
"""Seed of the fixed adding-problem test set (the validation set uses ``ADDING_TEST_SEED + 1``)."""

ADDING_EVAL_SIZE = 1000
"""Sequences in each of the fixed adding-problem test and validation sets."""


class DigitsSplit(NamedTuple):
    """Float images ``x_*`` (``[N, 8, 8]``, in [0, 1]) and int labels ``y_*`` of the digits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@functools.lru_cache(maxsize=4)
def digits_split(seed: int = SPLIT_SEED) -> DigitsSplit:
    """The fixed, stratified 60/20/20 train/validation/test split of the 8x8 digits.

    Example:
        >>> split = digits_split()
        >>> split.x_train.shape, split.x_val.shape, split.x_test.shape
        ((1077, 8, 8), (360, 8, 8), (360, 8, 8))
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=seed
    )
    out = DigitsSplit(x_train, y_train, x_val, y_val, x_test, y_test)
    for a in out:
        a.setflags(write=False)
    return out


def random_shift(key: jax.Array, x: jax.Array, max_shift: int = 1) -> jax.Array:
    """Shift each image of ``x`` (``[B, H, W]``) by a random whole number of pixels.

    Each image draws its own vertical and horizontal shift uniformly from
    ``-max_shift..max_shift``; pixels shifted in from outside are zero (background).
    """
    b, h, w = x.shape
    s = max_shift
    padded = jnp.pad(x, ((0, 0), (s, s), (s, s)))
    k = 2 * s + 1
    shifted = jnp.stack(
        [padded[:, i : i + h, j : j + w] for i in range(k) for j in range(k)], axis=1
    )  # [B, k*k, H, W]
    choice = jax.random.randint(key, (b,), 0, k * k)
    return jnp.take_along_axis(shifted, choice[:, None, None, None], axis=1)[:, 0]


def adding_batch(
    key: jax.Array, batch_size: int, length: int, dtype=jnp.float32
) -> tuple[jax.Array, jax.Array]:
    """A batch of the adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015).

    Each sequence has ``length`` elements ``(value, marker)``: values uniform in [0, 1];
    markers 0 except at two positions, one drawn uniformly from the first half of the
    sequence and one from the second half. The target is the sum of the two marked values,
    so predicting its mean (1) gives a mean squared error of 2 * (1/12) = 1/6.

    Returns ``x`` of shape ``[batch_size, length, 2]`` and ``y`` of shape ``[batch_size]``.

    Example:
        >>> x, y = adding_batch(jax.random.PRNGKey(0), 4, 10)
        >>> x.shape, y.shape
        ((4, 10, 2), (4,))
    """
    k_val, k_first, k_second = jax.random.split(key, 3)
    half = length // 2
    values = jax.random.uniform(k_val, (batch_size, length), dtype=dtype)
    first = jax.random.randint(k_first, (batch_size,), 0, half)
    second = jax.random.randint(k_second, (batch_size,), half, length)
    marks = jax.nn.one_hot(first, length, dtype=dtype) + jax.nn.one_hot(second, length, dtype=dtype)
    x = jnp.stack([values, marks], axis=-1)
    y = jnp.sum(values * marks, axis=-1)
    return x, y


@functools.lru_cache(maxsize=16)
def adding_eval_sets(length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed adding-problem validation and test sets: ``(x_val, y_val, x_test, y_test)``.

    ``ADDING_EVAL_SIZE`` sequences each, float32, generated from ``ADDING_TEST_SEED + 1``
    (validation) and ``ADDING_TEST_SEED`` (test).
    """
    # Always drawn as in float32 mode: ``randint``'s integer type (and so the draws) follows
    # the x64 switch, and this cache is shared by float32 and float64 sweeps of a process.
    with jax.enable_x64(False):
        xv, yv = adding_batch(jax.random.PRNGKey(ADDING_TEST_SEED + 1), ADDING_EVAL_SIZE, length)
        xt, yt = adding_batch(jax.random.PRNGKey(ADDING_TEST_SEED), ADDING_EVAL_SIZE, length)
    out = tuple(np.asarray(a) for a in (xv, yv, xt, yt))
    for a in out:
        a.setflags(write=False)
    return out  # type: ignore[return-value]
