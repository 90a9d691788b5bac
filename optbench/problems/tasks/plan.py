"""A training program's layout: where the curve points fall, how the program is chunked, and
the typed result of a group of runs."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from optbench.problems.tasks import shards as _shards
from optbench.problems.tasks.flow import flow_segments

MAX_CHUNKS = 20
"""At most this many chunks (progress-bar updates) per call."""


class Part(NamedTuple):
    """One optimizer's runs in a training program: ``make_optimizer(hyperparameters)`` is
    called inside the program with a dict of traced scalars; ``hparams[k][i]`` (or one
    value for all) belongs to run ``i``, which starts from ``seeds[i]``."""

    make_optimizer: Callable[[dict], Any]
    hparams: dict[str, np.ndarray]
    seeds: np.ndarray

    def inputs(self, idx: np.ndarray, regularization: dict, dtype) -> tuple[dict, np.ndarray]:
        """A shard's traced inputs (the runs ``idx``): the optimizer's hyperparameters and
        the problem's regularisation values (``{"opt": ..., "reg": ...}``: problems that
        differ only in those share one compiled program), and the seeds."""
        n = len(self.seeds)

        def per_run(values: dict, kind=lambda k: dtype) -> dict:
            return {
                k: np.broadcast_to(np.asarray(v, kind(k)), (n,))[idx] for k, v in values.items()
            }

        reg = per_run(regularization, lambda k: bool if k == "augment" else dtype)
        return {"opt": per_run(self.hparams), "reg": reg}, self.seeds.astype(np.uint32)[idx]


@dataclass
class TaskResult:
    """The outcome of a group of runs (R runs, P curve points), as numpy arrays."""

    step: np.ndarray  # [P] optimizer step of each curve point
    epoch: np.ndarray | None  # [P] for dataset tasks
    curves: dict[str, np.ndarray]  # name -> [R, P]; NaN where not measured
    final_train_loss: np.ndarray  # [R]
    val_loss: np.ndarray  # [R]
    test_loss: np.ndarray  # [R]
    test_accuracy: np.ndarray  # [R]
    val_accuracy: np.ndarray  # [R]
    best_train_loss: np.ndarray  # [R]
    diverged: np.ndarray  # [R] bool
    stop_step: np.ndarray  # [R] int
    compile_s: float
    program: str  # the program's name in meta.json ("" when not cached)
    run_s: float
    flow_steps: np.ndarray | None = None  # [F] optimizer steps of the gradient-flow points
    flow: np.ndarray | None = None  # [R, F, P] (P = 0: the model has no probed positions)


@dataclass(frozen=True)
class Plan:
    """Where the curve points fall and how the program is chunked."""

    total_steps: int
    steps_per_epoch: int | None  # None for step tasks
    seg_units: int  # epochs (dataset) or steps (step tasks) per segment
    n_points: int
    points_per_chunk: int
    n_chunks: int
    budget: int

    def point_steps(self) -> np.ndarray:
        units = np.minimum(np.arange(1, self.n_points + 1) * self.seg_units, self.budget)
        return units * (self.steps_per_epoch or 1)

    def point_epochs(self) -> np.ndarray | None:
        if self.steps_per_epoch is None:
            return None
        return np.minimum(np.arange(1, self.n_points + 1) * self.seg_units, self.budget)


def make_plan(budget: int, log_every: int, steps_per_epoch: int | None) -> Plan:
    """Curve points and chunking for ``budget`` epochs (or steps when ``steps_per_epoch`` is
    None), recording every ``log_every`` steps."""
    if steps_per_epoch is None:
        seg = min(log_every, budget)
        total = budget
    else:
        seg = min(max(1, log_every // steps_per_epoch), budget)
        total = budget * steps_per_epoch
    n_points = math.ceil(budget / seg)
    ppc = math.ceil(n_points / min(n_points, MAX_CHUNKS))
    return Plan(total, steps_per_epoch, seg, n_points, ppc, math.ceil(n_points / ppc), budget)


def collect(
    plan: Plan,
    curves: dict[str, np.ndarray],
    diverged: np.ndarray,
    stop: np.ndarray,
    flow: np.ndarray,
    compile_s: float,
    program: str,
    run_s: float,
) -> TaskResult:
    """The typed result of a group from its curves (``name -> [R, P]``), outcome and
    gradient flow (``[R, F, P]``, at step 0 and at :func:`.flow.flow_segments`)."""
    train = curves["train_loss"]
    with np.errstate(all="ignore"):
        best = np.nanmin(np.where(np.isnan(train), np.inf, train), 1)
    return TaskResult(
        step=plan.point_steps(),
        epoch=plan.point_epochs(),
        curves=curves,
        final_train_loss=train[:, -1].copy(),
        val_loss=curves["val_loss"][:, -1].copy(),
        test_loss=curves["test_loss"][:, -1].copy(),
        test_accuracy=curves["test_accuracy"][:, -1].copy(),
        val_accuracy=curves["val_accuracy"][:, -1].copy(),
        best_train_loss=np.where(np.isinf(best), np.nan, best),
        diverged=np.asarray(diverged, bool),
        stop_step=np.asarray(stop).astype(np.int64),
        compile_s=compile_s,
        program=program,
        run_s=run_s,
        flow_steps=np.concatenate([[0], plan.point_steps()[flow_segments(plan.n_points)]]).astype(
            np.int64
        ),
        flow=flow,
    )


def execute(
    plan: Plan,
    call: Callable[[int, Any], tuple[Any, list[np.ndarray], Any]],
    shards: Sequence[tuple[Any, Any]],
    n_runs: Sequence[int],
    on_chunk: Callable[[int, int], None] | None,
    evaluate: Callable[[int, Any], list[np.ndarray]] | None = None,
) -> tuple[list[np.ndarray], list[Any], float]:
    """Run the chunks one after another, the shards of each at the same time, and (with
    ``evaluate``) evaluate each chunk's curve points in the background while the next chunk
    trains.

    ``shards``: ``(carry, inputs)`` per shard; ``call(c, shard) -> (carry, tables,
    snapshots)`` runs chunk ``c`` of one shard (``tables``: per part, numpy ``[per,
    points_per_chunk, 6]`` in :data:`.train.METRICS`' order); ``evaluate(i, snapshots)``,
    if given, measures shard ``i``'s snapshots (per part ``[per, points_per_chunk, 4]``,
    :data:`.evaluate.COLUMNS`, the tables' columns 1-4). A part's runs past its ``n_runs``
    pad its shards and are dropped; ``on_chunk(done, budget)`` after each chunk. Returns
    each part's metrics ``[n_runs, n_points, 6]``, the shards' last carries and the seconds
    spent (the progress callback's excluded).
    """
    carries, inputs = [c for c, _ in shards], [i for _, i in shards]
    chunks = []  # per chunk, per shard: the training's tables and the evaluation's future
    t0, aside = time.perf_counter(), 0.0
    for c in range(plan.n_chunks):
        done = _shards.run_shards(
            functools.partial(call, c), list(zip(carries, inputs, strict=True))
        )
        carries = [carry for carry, _, _ in done]
        chunks.append(
            [(t, None if evaluate is None else _shards.submit(evaluate, i, s))
             for i, (_, t, s) in enumerate(done)]
        )  # fmt: skip
        if on_chunk is not None:
            t1 = time.perf_counter()
            on_chunk(
                min((c + 1) * plan.points_per_chunk * plan.seg_units, plan.budget), plan.budget
            )
            aside += time.perf_counter() - t1

    def joined(tables: list[np.ndarray], measured: Future | None) -> list[np.ndarray]:
        if measured is None:
            return tables
        both = zip(tables, measured.result(), strict=True)
        # METRICS' order: train_loss, the evaluation's four columns, grad_norm_h0
        return [np.concatenate([t[..., :1], m, t[..., 5:]], -1) for t, m in both]

    outs = []
    for chunk in chunks:
        per_shard = [joined(tables, future) for tables, future in chunk]
        outs.append([np.concatenate([s[k] for s in per_shard])[:n] for k, n in enumerate(n_runs)])
    run_s = time.perf_counter() - t0 - aside
    tables = [np.concatenate(part, axis=1)[:, : plan.n_points] for part in zip(*outs, strict=True)]
    return tables, carries, run_s
