"""``render(dir)``: one animated contour plot per 2-D surface problem, plus its last frame."""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from optbench._errors import ConfigError
from optbench.rendering import _inputs, _style, pool
from optbench.rendering._save import save_png_pdf
from optbench.rendering.gif import animate, delays, frame_steps
from optbench.rendering.levels import background, escape_floor, evaluate_points, loss_axis
from optbench.rendering.scene import Frame, Scene, Track
from optbench.results import atomic_path


def render(
    dir: str | Path,
    *,
    frames: int = 100,
    duration: float = 8.0,
    hold: float = 2.5,
    size: tuple[int, int] = (1000, 500),
    max_bytes: int = 2_000_000,
    schedule: str = "log",
    problems: list[str] | None = None,
    mp4: bool = True,
    workers: int | None = 1,
) -> list[Path]:
    """Animate every 2-D surface problem of a results folder; return the files written.

    For each problem: ``DIR/<stem>.gif`` (the stem is the label, or for a label that is not
    a safe file name its slug and a hash: :func:`~optbench.rendering._style.file_stems`;
    all optimizers' selected runs on one contour
    plot beside a loss-vs-step panel; ``frames`` frames on a ``"log"`` or ``"linear"``
    step schedule over ``duration`` seconds, the last held ``hold`` seconds; at most
    ``max_bytes``), its last frame as ``.png`` and ``.pdf``, and ``.mp4`` when
    ``imageio-ffmpeg`` is installed. Raises ``ConfigError`` when the folder has no 2-D
    surface problem. ``workers``: the number of processes that draw (default 1, this
    process; None: one per core, at most two, as ``optbench render`` does: fresh worker
    processes, so a script calling it needs the ``if __name__ == "__main__":`` guard).

    Example::

        import optbench
        res = optbench.run("quickstart", out="results/quickstart")
        optbench.render("results/quickstart")
    """
    if schedule not in ("log", "linear"):
        raise ConfigError(f"unknown frame schedule {schedule!r}; use 'log' or 'linear'")
    if frames < 2:
        raise ConfigError(f"frames must be at least 2, got {frames}", key="frames")
    res = _inputs.load(dir)
    labels = _inputs.two_d_surfaces(res)
    if not labels:
        raise ConfigError(
            "no 2-D surface problem to animate (only tasks or higher-dimensional surfaces); "
            f"use `optbench report {dir}` for loss curves and tables instead",
            file=str(dir),
        )
    if problems is not None:
        unknown = [p for p in problems if p not in labels]
        if unknown:
            raise ConfigError(
                f"no 2-D surface problem {unknown[0]!r}; " + _style_closest(unknown[0], labels),
                key="problems",
            )
        labels = [p for p in labels if p in problems]
    options = {
        "frames": frames,
        "duration": duration,
        "hold": hold,
        "size": size,
        "max_bytes": max_bytes,
        "schedule": schedule,
        "mp4": mp4,
    }
    folder = Path(dir)
    if len(labels) > 1 and workers != 1:  # each problem's two halves as jobs
        jobs = [(folder, label, part, options) for part in _PARTS for label in labels]
        done = pool.run(draw, jobs, workers)
        drawn = {(part, label): out for (_, label, part, _), out in zip(jobs, done, strict=True)}
    else:  # each problem set up once for both halves
        drawn = {}
        for label in labels:
            halves = _draw(res, folder, label, _PARTS, options)
            drawn.update({(part, label): out for part, out in halves.items()})
    return in_order(labels, drawn)


#: The drawing options of :func:`render` (its keyword arguments but ``problems`` and
#: ``workers``) and the two halves of a problem's drawing (see :func:`draw`).
_OPTIONS = ("frames", "duration", "hold", "size", "max_bytes", "schedule", "mp4")
_PARTS = ("animation", "stills")
#: :func:`render`'s drawing options at their defaults (what ``optbench run`` draws).
DEFAULTS: dict[str, Any] = {
    k: p.default for k, p in inspect.signature(render).parameters.items() if k in _OPTIONS
}


def in_order(labels: list[str], drawn: dict[tuple[str, str], list[Path]]) -> list[Path]:
    """:func:`render`'s files from its halves (``(part, label) -> files`` of :func:`draw`):
    per problem the GIF, its stills, then the MP4 if one was written."""
    out: list[Path] = []
    for label in labels:
        gif, *more = drawn[("animation", label)]
        out += [gif, *drawn[("stills", label)], *more]
    return out


def draw(folder: Path, label: str, part: str, options: dict[str, Any]) -> list[Path]:
    """One half of :func:`render` for one problem, with ``render``'s keyword ``options``:
    ``part="animation"``, the GIF (then the MP4 when that is written); ``"stills"``, the
    last frame as PNG and PDF. The halves are independent, so two processes can draw them
    at the same time (:func:`render` with ``workers``)."""
    return _draw(_inputs.load(folder), folder, label, (part,), options)[part]


def _draw(
    res: Any, folder: Path, label: str, parts: tuple[str, ...], options: dict[str, Any]
) -> dict[str, list[Path]]:
    """The files of each of ``parts`` of one problem, its scene built once."""
    scene, tracks = build(res, label, _style.colors(_inputs.optimizers(res)))
    base = folder / _inputs.stem(res, label)
    size = options["size"]
    out: dict[str, list[Path]] = {}
    if "animation" in parts:
        gif = base.parent / f"{base.name}.gif"
        animate(scene, tracks, gif, **{k: options[k] for k in _OPTIONS if k != "mp4"})
        out["animation"] = [gif]
        if options["mp4"] and importlib.util.find_spec("imageio_ffmpeg") is not None:
            out["animation"] += _mp4(
                scene,
                tracks,
                base,
                options["frames"],
                options["duration"],
                options["hold"],
                size,
                options["schedule"],
            )
    if "stills" in parts:  # the GIF's last frame: every schedule ends on the last step
        last = max((int(t.steps[-1]) for t in tracks if len(t.steps)), default=0)
        out["stills"] = _stills(scene, tracks, base, size, last)
    return out


def _style_closest(name: str, valid: list[str]) -> str:
    from optbench._errors import closest

    return closest(name, valid)


def build(res: Any, label: str, colors: dict[str, str]) -> tuple[Scene, list[Track]]:
    """The scene (background, marks, loss axis) and tracks of one problem."""
    surf = res.surface(label)
    runs = _inputs.selected(res, label)
    traj = res.trajectories
    traj = traj[traj["run_id"].astype(str).isin(runs["run_id"].astype(str))]
    by_run = {rid: g.sort_values("step") for rid, g in traj.groupby(traj["run_id"].astype(str))}
    noisy = float(_inputs.problem_config(res, label).get("noise", 0) or 0) > 0
    tracks: list[Track] = []
    for opt in _inputs.optimizers(res):
        rows = runs[runs["optimizer"].astype(str) == opt].sort_values(["seed", "start"])
        if rows.empty:
            continue
        first_seed = rows["seed"].iloc[0]
        lr = rows["learning_rate"].iloc[0] if "learning_rate" in rows else float("nan")
        first = True
        for _, r in rows.iterrows():
            g = by_run.get(str(r["run_id"]))
            faint = r["seed"] != first_seed
            if g is None or len(g) == 0 or (faint and not noisy):
                continue
            xy = g[["x", "y"]].to_numpy(dtype=float)
            status = (
                "diverged" if bool(r["diverged"]) else "escaped" if bool(r["escaped"]) else "ok"
            )
            legend = f"{opt}  lr={_style.fmt(lr)}"
            if schedule := _inputs.schedule_text(rows):
                legend = f"{opt}  peak lr={_style.fmt(lr)}, {schedule}"
            if status != "ok" and not faint:
                legend += f" ({status} at {int(r['stop_step']):,})"
            loss = evaluate_points(surf.fn, xy)
            tracks.append(
                Track(
                    legend,
                    colors[opt],
                    g["step"].to_numpy(dtype=np.int64),
                    xy,
                    loss,
                    status=status,
                    faint=faint,
                    legend=first and not faint,
                )
            )
            first = first and faint
    bounds = np.asarray(surf.plot_bounds, dtype=float)
    bg = background(
        surf.fn, bounds, min_value=surf.min_value, bounded_below=bool(surf.bounded_below)
    )
    starts = _starts(runs, surf, tracks)
    minima = np.array([np.asarray(p, dtype=float)[:2] for p, _ in (surf.minima or [])])
    main = [t.loss for t in tracks if not t.faint] or [np.ones(1)]
    losses = np.concatenate(main)
    floor = None if surf.bounded_below else escape_floor(main)
    if floor is not None:  # runs that leave far below the others do not set the scale
        losses = losses[losses >= floor]
    axis = loss_axis(losses, min_value=surf.min_value, bounded_below=bool(surf.bounded_below))
    coords = tuple(getattr(surf, "coords", None) or ("x", "y"))[:2]
    title = label if label == surf.name else f"{label} ({surf.name})"
    return (
        Scene(
            bg, title, starts=starts, minima=minima.reshape(-1, 2), loss_axis=axis, coords=coords
        ),
        tracks,
    )


def _starts(runs: Any, surf: Any, tracks: list[Track]) -> np.ndarray:
    """The start points ``[n, 2]``: the runs' ``start_<coord>`` columns for the surface's
    own coordinate names, else the first point of each path."""
    coords = tuple(getattr(surf, "coords", None) or ("x", "y"))[:2]
    cols = [f"start_{c}" for c in coords]
    if all(c in runs for c in cols) and runs[cols].notna().all(axis=None):
        return runs[cols].drop_duplicates().to_numpy(dtype=float)
    firsts = [t.xy[0] for t in tracks if len(t.xy)]
    return np.unique(np.asarray(firsts, dtype=float).reshape(-1, 2), axis=0)


def _stills(scene: Scene, tracks: list[Track], base: Path, size, step: int) -> list[Path]:
    fig = Frame(scene, tracks, size=size).finish(step)
    return save_png_pdf(fig, base, dpi=150)


def _mp4(scene, tracks, base: Path, frames, duration, hold, size, schedule) -> list[Path]:
    try:
        import imageio.v2 as iio2

        steps = frame_steps(np.concatenate([t.steps for t in tracks]), frames, schedule)
        frame = Frame(scene, tracks, size=size)
        fps = 1000.0 / delays(len(steps), duration, hold)[0]
        held = round(hold * fps)
        imgs = [frame.rgb(int(s)) for s in steps]
        imgs += [imgs[-1]] * held
        path = base.parent / f"{base.name}.mp4"
        with (
            atomic_path(path) as tmp,
            iio2.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=2) as w,
        ):
            for im in imgs:
                w.append_data(im)
        return [path]
    except Exception as e:  # optional output: never fail the GIFs for it
        warnings.warn(f"MP4 not written ({e})", stacklevel=2)
        return []
