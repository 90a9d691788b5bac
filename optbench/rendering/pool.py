"""A pool of drawing processes and the queue they share with this process.

Drawing is single-threaded Python (matplotlib), so a figure-heavy command splits its work
into jobs (module-level functions and their arguments) and :func:`share` hands them to
this process and to the worker processes of :func:`start_workers`, each taking the next
job when it is free. The workers are fresh interpreters (``spawn``: JAX is not fork-safe),
so a script that starts them needs the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.pool import Pool

from optbench.compilation import enable_compilation_cache


@dataclass
class Workers:
    """A pool of ``size`` drawing processes (from :func:`start_workers`)."""

    pool: Pool
    size: int

    def terminate(self) -> None:
        """Stop the processes now (they hold nothing unwritten between jobs)."""
        self.pool.terminate()


def start_workers(workers: int | None = None) -> Workers | None:
    """A warmed-up pool of ``workers - 1`` drawing processes (default: two cores, so one
    process; None when one core is all there is): this process is the other worker.

    Each worker imports the drawing stack and turns on the same JAX compilation cache as
    this process, so later jobs start at once. Stop it with ``terminate()``: the workers
    hold nothing unwritten between jobs (every file is written atomically), and
    terminating spares the second or so that interpreters holding JAX take to exit.
    """
    helpers = min(workers or 2, os.cpu_count() or 1) - 1
    if helpers < 1:
        return None
    import jax

    cache = jax.config.jax_compilation_cache_dir
    ctx = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    pool = ctx.Pool(helpers, initializer=_init_worker, initargs=(cache,))
    for _ in range(helpers):
        pool.apply_async(_warm)
    return Workers(pool, helpers)


def run(fn: Callable, jobs: list[tuple], workers: int | None, pool: Workers | None = None) -> list:
    """``[fn(*job) for job in jobs]``, computed by this process and ``pool``, or by a pool
    started here (``workers`` processes in all; None: one per core, at most two; 1: this
    process alone) when there are more than two jobs, stopped at the end."""
    own = pool is None and len(jobs) > 2 and workers != 1
    if own:
        pool = start_workers(workers)
    try:
        return share(fn, jobs, pool)
    finally:
        if own and pool is not None:
            pool.terminate()


def share(fn: Callable, jobs: list[tuple], workers: Workers | None) -> list:
    """``[fn(*job) for job in jobs]``, computed here and on ``workers`` at the same time.

    Each worker process is handed one job at a time and the next when it returns, while
    this process takes jobs from the same queue, so nobody idles while work is left.
    ``fn`` must be a module-level function (it is pickled to the workers).
    """
    queue = collections.deque(enumerate(jobs))
    done: list = [None] * len(jobs)
    lock = threading.Lock()
    all_done = threading.Event()
    left = [len(jobs)]
    failed: list[BaseException] = []

    def take() -> tuple[int, tuple] | None:
        with lock:
            return queue.popleft() if queue and not failed else None

    def finish(i: int, out: object) -> None:
        with lock:
            done[i] = out
            left[0] -= 1
            if left[0] == 0:
                all_done.set()

    def fail(e: BaseException) -> None:
        failed.append(e)
        all_done.set()

    def feed() -> None:
        item = take()
        if item is not None and workers is not None:
            i, job = item
            workers.pool.apply_async(
                fn, job, callback=lambda out: (finish(i, out), feed()), error_callback=fail
            )

    # A worker gets its first job once it is up (the no-op queues behind its start-up), so
    # this process starts on the first jobs at once: a fresh pool takes 3.5 s to start here.
    for _ in range(workers.size if workers is not None else 0):
        workers.pool.apply_async(_ready, callback=lambda _: feed(), error_callback=fail)
    while (item := take()) is not None:
        i, job = item
        finish(i, fn(*job))
    if jobs:
        all_done.wait()
    if failed:
        raise failed[0]
    return done


def _init_worker(cache: str | None) -> None:
    # Ctrl-C reaches every process of the terminal's group: only the main process answers
    # it (it then terminates the workers), so the workers print no tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cache:
        enable_compilation_cache(cache)


def _ready() -> None:
    """Nothing: the task a worker runs before its first job (see :func:`share`)."""


def _warm() -> None:
    """Pay the first-use costs (fonts, JAX's backend) before the first real job."""
    import jax.numpy as jnp
    from matplotlib.figure import Figure

    jnp.zeros(1).block_until_ready()
    Figure().text(0, 0, "warm")
