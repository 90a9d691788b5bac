"""Evaluation at the curve points: inside the training program, or in a program of its own
beside the training where that costs no waiting.

There, the training program keeps each run's parameters and state at the curve points of a
chunk (its "snapshots", ``[runs, points, ...]``) instead of evaluating them itself, and
:func:`program` measures them in a background thread while the next chunk trains
(:func:`.plan.execute`). :func:`.train.train` does so where the runs' shards leave a core
idle (one run on two cores: :func:`.shards.idle_core`), and keeps :func:`measure` inside the
training program where they fill the cores. Measured on 2 cores (2026-12-04, ``run_s``,
medians of 3 in one process): one adding-LSTM run of 400 steps evaluated 20 times 2.27 s
inside the training program, 1.61 s beside it (and the flow's probes through the
hand-written backward pass); one digits_cnn run of 20 epochs evaluated every epoch 0.42 s
inside, 0.33 s beside (training alone ~0.3 s); with both cores full, beside cost more: 8
CNN runs 1.84 s against 1.64 s inside (1.42 s against 1.30 s on another machine), 8
adding-LSTM runs of 100 steps 6.99 s against 6.86 s, 6 adding-GRU runs of 400 steps 10.62 s
against 9.54 s (4 alternating pairs).

What a curve point measures here: ``val_loss``, ``test_loss``, ``test_accuracy`` and
``val_accuracy`` on the full validation and test sets (the adding task: two fixed sets of
1,000 sequences, and NaN accuracies), in evaluation mode (no dropout, batchnorm on its
running averages), data loss only, in one pass over both sets stacked, :data:`EVAL_BATCH`
digits or :data:`SEQUENCE_BATCH` sequences at a time. A snapshot's numbers depend on the
run and its shard's layout, not on the chunk or thread that evaluates it: :func:`program`
measures the runs as their training runs them (recurrent ones one after another with
``lax.map``, the others vmapped), the points one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from optbench import compilation
from optbench.problems.tasks import shards
from optbench.problems.tasks.models import Model, evaluation_outputs, loss_and_accuracy

EVAL_BATCH = 240
"""Digits per forward pass when evaluating: the 720 in three, no padding. One evaluation on
2 cores (medians of 60, 2026-12-04) at 128, 240 and 360 a pass: digits_cnn 4.71, 4.40 and
4.69 ms, digits_rnn 3.87, 3.57 and 4.11 ms; all 720 at once was slower still (the CNN 6.1
ms, one core)."""
SEQUENCE_BATCH = 500
"""Sequences per forward pass when evaluating (the adding task's 2,000). On one core, the
LSTM's pass over all 2,000 took 37.9 ms, in fours of 500 30.2 ms, in eights of 250 29.7 ms
(medians of 15, 2026-12-04): the gates of 500 sequences stay in the core's cache."""

COLUMNS = ("val_loss", "test_loss", "test_accuracy", "val_accuracy")
"""What :func:`program` returns for each snapshot, in this order."""


def dropout_rate(reg: dict) -> dict:
    """A run's traced dropout rate as ``model.apply``'s keyword (``{}`` without dropout), in
    training and in evaluation (``test_scaling`` uses it)."""
    return {"dropout": reg["dropout"]} if "dropout" in reg else {}


def measure(model: Model, dataset: bool, params, state, reg: dict, arrays) -> jax.Array:
    """One snapshot's :data:`COLUMNS`; ``arrays``: the validation and test inputs stacked,
    the validation labels, the test labels."""
    x, y_val, y_test = arrays
    size = EVAL_BATCH if dataset else SEQUENCE_BATCH
    out = evaluation_outputs(model, params, state, x, size, **dropout_rate(reg))
    n_val = y_val.shape[0]
    val_loss, val_acc = loss_and_accuracy(model.loss, out[:n_val], y_val)
    test_loss, test_acc = loss_and_accuracy(model.loss, out[n_val:], y_test)
    return jnp.stack([val_loss, test_loss, test_acc, val_acc])


def at_points(shapes: Any, points: int) -> Any:
    """A shard's leaves ``[runs, ...]`` (shapes) at each of ``points`` curve points."""

    def one(a: Any) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((a.shape[0], points, *a.shape[1:]), a.dtype)

    return jax.tree.map(one, shapes)


def program(
    model: Model,
    *,
    dataset: bool,
    key: Hashable | None,
    snapshots: Sequence[Any],
    regs: Sequence[dict],
    arrays: tuple,
) -> tuple[Callable[[Sequence[Any], Sequence[dict]], list[np.ndarray]], float]:
    """The compiled evaluation of a shard's snapshots, ``(fn, compile_s)``:
    ``fn(snapshots, regs)``, per part of a shard, numpy ``[runs, points, 4]``
    (:data:`COLUMNS`), blocking until done.

    ``snapshots``: per part the shapes of a shard's ``(params, state)`` leaves, ``[runs,
    points, ...]``; ``regs``: per part the regularisation values ``[runs]``; ``key`` names
    the program in the process's cache (None: not kept). With several local devices a
    ``shard_map`` over them, as the training.
    """

    def evaluate(snapshots, regs, arrays):
        def one_run(snaps, reg):  # a run's points, one after another
            return lax.map(lambda s: measure(model, dataset, *s, reg, arrays), snaps)

        parts = zip(snapshots, regs, strict=True)
        if model.hidden is not None:  # recurrent: the runs one after another, as trained
            return [lax.map(lambda a: one_run(*a), part) for part in parts]
        return [jax.vmap(one_run)(*part) for part in parts]  # vmapped, as trained

    jitted = shards.jit(evaluate, (True, True, False))
    full = None if key is None else (*key, str(jax.tree.map(lambda a: a.shape, snapshots)))
    compiled, secs, _ = compilation.program(
        full,
        lambda: jitted.lower(list(snapshots), list(regs), arrays),
        last=False,
        options=dict(model.compile_options),
    )

    def fn(snaps: Sequence[Any], regs: Sequence[dict]) -> list[np.ndarray]:
        return [np.asarray(out) for out in compiled(list(snaps), list(regs), arrays)]

    return fn, secs
