"""One compiled program over a group's runs, in shards that execute at the same time.

XLA's CPU runtime runs the kernels of one program one after another, and the small
kernels of a training step (a recurrent cell's 64-row matmuls) mostly on one core. The runs
of a group are independent, so they are split into equal shards, one per core, and the one
compiled program (its shapes are those of a shard: still one compile per group) is executed
on every shard at the same time, each call in a thread of its own; the calls release the
GIL. A shard that the runs do not fill is padded with copies of the last run, whose results
are dropped.

Used by the training tasks. A surface sweep's vmapped program already keeps both cores
busy (its large fused loops are split across them); sharding it measured no faster.

Example:
    >>> split(5, 2).tolist()
    [[0, 1, 2], [3, 4, 4]]
    >>> run_shards(lambda a: a * 10, [1, 2])
    [10, 20]
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import jax
import numpy as np

T = TypeVar("T")
R = TypeVar("R")


_FIXED: contextvars.ContextVar[int | None] = contextvars.ContextVar("shards", default=None)


def workers() -> int:
    """How many shards a group's runs are split into: the CPU cores this process may use
    (or the count fixed by :func:`fixed`)."""
    count = _FIXED.get()
    if count is not None:
        return count
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def fixed(n_shards: int) -> Iterator[None]:
    """Split runs into ``n_shards`` shards in this block (this thread), whatever the cores: a
    cluster worker uses the driver's count, so a run's numbers do not depend on the machine
    that ran it (float32 rounding follows the shard width)."""
    token = _FIXED.set(max(1, int(n_shards)))
    try:
        yield
    finally:
        _FIXED.reset(token)


def layouts(sizes: Sequence[int]) -> list[np.ndarray]:
    """Per part (``sizes``: its number of runs) the run indices of each shard (``[shards,
    per_shard]``, the same number of shards for every part), for a program jitted by
    :func:`jit`.

    With several local devices (GPUs, or CPU devices forced with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) a part's runs are one shard,
    padded to a multiple of the device count, and the program is a ``shard_map`` over them:
    each device runs its slice of the runs. With one device, one shard per core
    (:func:`split`), executed in threads by :func:`run_shards`; a part with fewer runs than
    cores keeps its own layout (a run's numbers follow its shard's width) and repeats its
    last shard in the others (dropped).
    """
    n = len(jax.local_devices())
    if n == 1:
        each = [split(k) for k in sizes]
        count = max(len(layout) for layout in each)
        return [np.concatenate([a, np.repeat(a[-1:], count - len(a), 0)]) for a in each]
    return [np.minimum(np.arange(-(-k // n) * n), k - 1)[None] for k in sizes]


def idle_core(layout: np.ndarray) -> bool:
    """Whether a layout's shards (``[shards, per_shard]``, from :func:`layouts`) leave a
    CPU core idle: fewer shards than cores, on one device."""
    return len(jax.local_devices()) == 1 and len(layout) < workers()


def jit(program: Callable, split: Sequence[bool]) -> Callable:
    """``program`` jitted; with several local devices a ``shard_map`` over them: the
    arguments flagged in ``split`` divided along their first (run) axis, the others
    replicated, the outputs joined along the run axis."""
    devices = jax.local_devices()
    if len(devices) == 1:
        return jax.jit(program)
    from jax.sharding import Mesh, PartitionSpec

    runs, same = PartitionSpec("runs"), PartitionSpec()
    mapped = jax.shard_map(
        program,
        mesh=Mesh(np.asarray(devices), ("runs",)),
        in_specs=tuple(runs if s else same for s in split),
        out_specs=runs,
        check_vma=False,  # the first chunk initialises the carry inside a lax.cond
    )
    return jax.jit(mapped)


def split(n_runs: int, n_shards: int | None = None) -> np.ndarray:
    """Run indices ``[shards, per_shard]``: ``min(workers(), n_runs)`` equal shards in
    order, the last padded by repeating run ``n_runs - 1``."""
    n = min(n_shards or workers(), n_runs)
    per = -(-n_runs // n)
    return np.minimum(np.arange(n * per), n_runs - 1).reshape(n, per)


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="optbench-shard")


def run_shards(fn: Callable[[T], R], shards: Sequence[T]) -> list[R]:
    """``[fn(s) for s in shards]``, the calls at the same time in worker threads (in this
    thread when there is one shard), under this thread's ``jax_enable_x64``. ``fn`` should
    block until its result is ready (turn it into numpy arrays), so that the shards' work
    overlaps."""
    if len(shards) == 1:
        return [fn(shards[0])]
    x64 = jax.config.jax_enable_x64  # thread-local when set by jax.enable_x64: pass it on

    def call(shard: T) -> R:
        with jax.enable_x64(x64):
            return fn(shard)

    futures = [_pool().submit(call, s) for s in shards]
    return [f.result() for f in futures]


@functools.cache
def _background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="optbench-eval")


def submit(fn: Callable[..., R], *args: Any) -> Future[R]:
    """``fn(*args)`` in a background thread, under this thread's ``jax_enable_x64``: work
    that runs beside the next calls of :func:`run_shards` (the curve points' evaluation)."""
    x64 = jax.config.jax_enable_x64

    def call() -> R:
        with jax.enable_x64(x64):
            return fn(*args)

    return _background().submit(call)
