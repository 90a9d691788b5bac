"""GIFs and report together, spread over the CPU cores (what ``optbench run`` draws).

Drawing is single-threaded Python (matplotlib), so the work is split into jobs, one per
animation and one per report section, run in a pool of fresh worker processes; the main
process then writes the page. Starting the pool early (:func:`start_workers`, e.g. while a
sweep runs) hides the workers' start-up. With one core (or ``workers=1``) the jobs run in
turn in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.pool import Pool
from pathlib import Path

from optbench.rendering import _inputs, animation, page


def start_workers(workers: int | None = None) -> Pool | None:
    """A warmed-up pool of drawing processes (None when one core is all there is).

    Each worker imports the drawing stack and turns on the same JAX compilation cache as
    this process, so later jobs start at once. Stop it with ``pool.terminate()``: the
    workers hold nothing unwritten between jobs (every file is written atomically), and
    terminating spares the second or so that interpreters holding JAX take to exit.
    """
    workers = min(workers or 2, os.cpu_count() or 1)
    if workers <= 1:
        return None
    import jax

    cache = jax.config.jax_compilation_cache_dir
    ctx = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(cache,))
    for _ in range(workers):
        pool.apply_async(_warm)
    return pool


def render_and_report(
    dir: str | Path, *, workers: int | None = None, pool: Pool | None = None
) -> list[Path]:
    """Animate every 2-D surface problem and write the report; returns the files written.

    The same files as :func:`optbench.rendering.render` (when there is a 2-D surface)
    followed by :func:`optbench.rendering.report`, drawn on ``pool`` (or on a pool of
    ``workers`` processes started here; default one per core, at most two). The report's
    path is the last one returned.
    """
    folder = Path(dir)
    res = _inputs.load(folder)
    animated = _inputs.two_d_surfaces(res)
    jobs = [("gif", p) for p in animated] + [("section", p) for p in _inputs.problems(res)]
    own = pool is None and len(jobs) > 1
    if own:
        pool = start_workers(workers)
    try:
        if pool is None:
            done = [_job(folder, kind, label, animated) for kind, label in jobs]
        else:
            args = [(folder, kind, label, animated) for kind, label in jobs]
            done = [job.get() for job in [pool.apply_async(_job, a) for a in args]]
    finally:
        if own and pool is not None:
            pool.terminate()
    paths = [p for (kind, _), out in zip(jobs, done, strict=True) if kind == "gif" for p in out]
    sections = [out for (kind, _), out in zip(jobs, done, strict=True) if kind == "section"]
    return [*paths, page.write_page(res, folder, sections)]


def _init_worker(cache: str | None) -> None:
    if cache:
        from optbench.cli import enable_compilation_cache

        enable_compilation_cache(cache)


def _warm() -> None:
    """Pay the first-use costs (fonts, JAX's backend) before the first real job."""
    import jax.numpy as jnp
    from matplotlib.figure import Figure

    jnp.zeros(1).block_until_ready()
    Figure().text(0, 0, "warm")


def _job(folder: Path, kind: str, label: str, animated: list[str]) -> list[Path] | str:
    if kind == "gif":
        return animation.render(folder, problems=[label])
    res = _inputs.load(folder)
    return page.problem_section(res, label, folder, gif=label in animated)
