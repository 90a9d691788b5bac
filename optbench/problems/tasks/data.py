"""Data for the training tasks: the 8x8 digits split, augmentation, the adding problem.

The digits are scikit-learn's copy of the UCI handwritten digits (1,797 images of 8x8
pixels with values 0..16, shipped inside scikit-learn, no download). They are scaled to
[0, 1] and split once, stratified by class, with a fixed seed (``SPLIT_SEED``): 60 % train
(1,077 images), 20 % validation (360), 20 % test (360). Every task and every run sees the
same split; the run's seed only drives initialisation, shuffling, dropout and augmentation.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optbench import compilation

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


SPLIT_FILE = Path(__file__).with_name("digits_split.npz")
"""The indices (into scikit-learn's order of the 1,797 images) of the split with
``SPLIT_SEED``, as ``train_test_split`` drew them (a test checks they still are): reading
them and the images' CSV file directly, without importing scikit-learn, saves 1.2-2.3 s of
imports at the start of every digits run (measured, 2-core machine)."""


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: images ``[1797, 8, 8]`` (float64, 0..16) and labels, as
    ``sklearn.datasets.load_digits`` gives them, read from the CSV file it ships."""
    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0] if folders else "") / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():  # another layout: scikit-learn's own loader
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.images, digits.target
    data = np.loadtxt(path, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def split_indices(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test indices: a stratified 60/20/20 split drawn with ``seed``
    (two calls of scikit-learn's ``train_test_split``)."""
    from sklearn.model_selection import train_test_split

    rest, test, y_rest, _ = train_test_split(
        np.arange(len(y)), y, test_size=0.2, stratify=y, random_state=seed
    )
    train, val = train_test_split(rest, test_size=0.25, stratify=y_rest, random_state=seed)
    return train, val, test


@functools.lru_cache(maxsize=4)
def digits_split(seed: int = SPLIT_SEED) -> DigitsSplit:
    """The fixed, stratified 60/20/20 train/validation/test split of the 8x8 digits.

    Example:
        >>> split = digits_split()
        >>> split.x_train.shape, split.x_val.shape, split.x_test.shape
        ((1077, 8, 8), (360, 8, 8), (360, 8, 8))
    """
    images, target = digits_images()
    x = (images / 16.0).astype(np.float32)
    y = target.astype(np.int32)
    if seed == SPLIT_SEED:
        with np.load(SPLIT_FILE) as f:
            train, val, test = (f[k].astype(np.int64) for k in ("train", "val", "test"))
    else:
        train, val, test = split_indices(y, seed)
    x_train, x_val, x_test = x[train], x[val], x[test]
    y_train, y_val, y_test = y[train], y[val], y[test]
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
    # One small jitted program (at -O1) rather than op by op: 0.9 s of a first adding run
    # went to compiling the dozens of eager operations; the same bits (test_compile_cost.py).
    def both(seeds: jax.Array):
        return jax.vmap(lambda s: adding_batch(jax.random.PRNGKey(s), ADDING_EVAL_SIZE, length))(
            seeds
        )

    with jax.enable_x64(False):
        seeds = jnp.asarray([ADDING_TEST_SEED + 1, ADDING_TEST_SEED], jnp.uint32)
        lowered = jax.jit(both).lower(seeds)
        x, y = lowered.compile(compilation.LLVM_O1)(seeds)
    out = tuple(np.asarray(a) for a in (x[0], y[0], x[1], y[1]))
    for a in out:
        a.setflags(write=False)
    return out  # type: ignore[return-value]
