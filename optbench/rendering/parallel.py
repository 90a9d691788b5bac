"""GIFs and report together, spread over the CPU cores (what ``optbench run`` draws).

Drawing is single-threaded Python (matplotlib), so the work is split into jobs (each
problem's animation, its stills, its report section; the lecture's sections), shared
between this process and a pool of fresh worker processes (one fewer than the cores to
use), each taking the next job when it is free; this process then writes the page.
Starting the pool early (:func:`start_workers`, e.g. while a sweep runs) hides the
workers' start-up. With one core (or ``workers=1``) the jobs run in turn in this process.
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
from pathlib import Path

from optbench.compilation import enable_compilation_cache
from optbench.rendering import _inputs, _style, animation, chapters, page


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


def render_and_report(
    dir: str | Path, *, workers: int | None = None, pool: Workers | None = None
) -> list[Path]:
    """Animate every 2-D surface problem and write the report; returns the files written.

    The same files as :func:`optbench.rendering.render` (when there is a 2-D surface)
    followed by :func:`optbench.rendering.report`, drawn by this process together with
    ``pool`` (or with a pool started here: ``workers`` processes in all, default one per
    core, at most two). The report's path is the last one returned.
    """
    folder = Path(dir)
    res = _inputs.load(folder)
    animated = _inputs.two_d_surfaces(res)
    jobs = [(kind, p) for kind in ("animation", "stills") for p in animated]
    jobs += [("section", p) for p in _inputs.problems(res)]
    jobs.append(("lecture", ""))
    done = _run(folder, jobs, animated, DEFAULTS, workers, pool)
    by = dict(zip(jobs, done, strict=True))
    paths = _render_order(animated, by)
    sections = [out for (kind, _), out in zip(jobs, done, strict=True) if kind == "section"]
    return [*paths, page.write_page(res, folder, sections, lecture=done[-1])]


def report(dir: str | Path, *, workers: int | None = None) -> Path:
    """:func:`optbench.rendering.report` with the problems' sections and the lecture's drawn
    by this process and a pool of ``workers - 1`` processes (default: one per core, at most
    two); the sections show the GIFs that are in the folder."""
    folder = Path(dir)
    res = _inputs.load(folder)
    labels = _inputs.problems(res)
    animated = [p for p in labels if (folder / f"{_inputs.stem(res, p)}.gif").is_file()]
    jobs = [("section", p) for p in labels] + [("lecture", "")]
    done = _run(folder, jobs, animated, DEFAULTS, workers, None)
    return page.write_page(res, folder, done[:-1], lecture=done[-1])


def render_problems(
    folder: Path, labels: list[str], options: dict, *, workers: int | None = None
) -> list[Path]:
    """:func:`optbench.rendering.render` of ``labels`` (its keyword ``options``), each
    problem's animation and stills drawn as two jobs shared between this process and a pool
    of ``workers - 1`` processes; the files in ``render``'s order."""
    jobs = [(kind, p) for kind in ("animation", "stills") for p in labels]
    done = _run(folder, jobs, labels, options, workers, None)
    return _render_order(labels, dict(zip(jobs, done, strict=True)))


#: ``render``'s drawing options at their defaults (what ``optbench run`` draws).
DEFAULTS = {
    "frames": 100,
    "duration": 8.0,
    "hold": 2.5,
    "size": (1000, 500),
    "max_bytes": 2_000_000,
    "schedule": "log",
    "mp4": True,
}


def _render_order(labels: list[str], by: dict) -> list[Path]:
    """Per problem the GIF, its stills, then the MP4 if one was written."""
    out: list[Path] = []
    for p in labels:
        gif, *more = by[("animation", p)]
        out += [gif, *by[("stills", p)], *more]
    return out


def _run(
    folder: Path,
    jobs: list[tuple[str, str]],
    animated: list[str],
    options: dict,
    workers: int | None,
    pool: Workers | None,
) -> list:
    """The jobs' results, drawn here and on ``pool`` (or on a pool started for them)."""
    own = pool is None and len(jobs) > 2  # the lecture job alone is no reason to start one
    if own:
        pool = start_workers(workers)
    try:
        return _share(
            _job, [(folder, kind, label, animated, options) for kind, label in jobs], pool
        )
    finally:
        if own and pool is not None:
            pool.terminate()


def _share(fn: Callable, jobs: list[tuple], workers: Workers | None) -> list:
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
    """Nothing: the task a worker runs before its first job (see :func:`_share`)."""


def _warm() -> None:
    """Pay the first-use costs (fonts, JAX's backend) before the first real job."""
    import jax.numpy as jnp
    from matplotlib.figure import Figure

    jnp.zeros(1).block_until_ready()
    Figure().text(0, 0, "warm")


def _job(
    folder: Path, kind: str, label: str, animated: list[str], options: dict
) -> list[Path] | str | dict[str, str]:
    if kind in ("animation", "stills"):
        return animation.draw(folder, label, kind, options)
    res = _inputs.load(folder)
    if kind == "lecture":
        return chapters.sections(res, folder, _style.colors(_inputs.optimizers(res)))
    return page.problem_section(res, label, folder, gif=label in animated)
