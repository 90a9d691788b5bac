"""GIFs and report together, spread over the CPU cores (what ``optbench run`` draws).

Drawing is single-threaded Python (matplotlib), so the work is split into jobs (each
problem's animation, its stills, its report section; the lecture's sections; the ranking
with its profile figure), shared between this process and a pool of fresh worker processes
(one fewer than the cores to use), each taking the next job when it is free; this process
then writes the page.
Starting the pool early (:func:`start_workers`, e.g. while a sweep runs) hides the
workers' start-up. With one core (or ``workers=1``) the jobs run in turn in this process.
"""

from __future__ import annotations

from pathlib import Path

from optbench.rendering import _inputs, animation, page
from optbench.rendering.pool import Workers, run, start_workers

__all__ = ["Workers", "render_and_report", "start_workers"]


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
    # the longest jobs first, so that both processes stay busy to the end
    jobs = [(kind, p) for kind in ("animation", "stills") for p in animated]
    jobs += [("ranking", ""), ("lecture", "")]
    jobs += [("problem", p) for p in _inputs.problems(res)]
    args = [(folder, kind, label, animated) for kind, label in jobs]
    done = run(_job, args, workers, pool)
    by = dict(zip(jobs, done, strict=True))
    paths = animation.in_order(animated, by)
    sections = [out for (kind, _), out in zip(jobs, done, strict=True) if kind == "problem"]
    page_path = page.write_page(
        res, folder, sections, lecture=by["lecture", ""], ranking=by["ranking", ""]
    )
    return [*paths, page_path]


def _job(
    folder: Path, kind: str, label: str, animated: list[str]
) -> list[Path] | str | dict[str, str]:
    if kind in ("animation", "stills"):
        return animation.draw(folder, label, kind, animation.DEFAULTS)
    return page.section_job(folder, kind, label, label in animated)
