"""``optbench render`` as a user runs it, against the same drawing done the textbook way.

Default: the quickstart's results (``optbench run --no-render``, untimed) animated by a
fresh ``optbench render DIR`` process, against a fresh process of
``benchmarks/render_textbook.py`` (matplotlib's ``FuncAnimation`` redrawing the whole
two-panel figure every frame, ``PillowWriter``, then the last frame as PNG and PDF) drawing
the same runs at the same frame steps. Paired repetitions alternating which side goes
first, each into a fresh copy of the results folder; wall seconds from the outside,
medians with their ranges. Both sides had one untimed run first (fonts, the compilation
cache). The textbook side draws no held last frame (optbench holds it 2.5 s), no MP4.

``--kernel``: the drawing alone, in this process (*kernel figures*): six optimizers
(numpy loops) on Rosenbrock, the same frame steps and pixel size for both: optbench's GIF
writer (background drawn once, blitting, one global palette, delta frames) against
``FuncAnimation`` + ``PillowWriter`` (full redraw and per-frame palette).

    python benchmarks/render.py                 # fresh processes, 5 pairs
    python benchmarks/render.py --repeats 1     # smoke run
    python benchmarks/render.py --kernel        # 6 optimizers x 200 frames at 600x600 px
    python benchmarks/render.py --kernel --frames 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np

from optbench.rendering import _inputs, _style
from optbench.rendering.animation import DEFAULTS, build
from optbench.rendering.gif import animate, delays, frame_steps
from optbench.rendering.levels import background
from optbench.rendering.scene import Scene, Track


def rosenbrock(p):
    return (1 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def _grad(p):
    return np.array([-2 * (1 - p[0]) - 400 * p[0] * (p[1] - p[0] ** 2), 200 * (p[1] - p[0] ** 2)])


def trajectories(steps: int) -> dict[str, np.ndarray]:
    """Six optimizers' paths from (-1.5, 2) over ``steps`` steps, shape [steps + 1, 2]."""
    out = {}
    specs = {
        "sgd": 1e-3,
        "momentum": 1e-3,
        "nesterov": 1e-3,
        "adagrad": 0.5,
        "rmsprop": 1e-2,
        "adam": 5e-2,
    }
    for name, lr in specs.items():
        p, m, v = np.array([-1.5, 2.0]), np.zeros(2), np.zeros(2)
        path = [p.copy()]
        for t in range(1, steps + 1):
            g = _grad(p)
            if name == "sgd":
                p = p - lr * g
            elif name in ("momentum", "nesterov"):
                m = 0.9 * m + g
                p = p - lr * (g + 0.9 * m if name == "nesterov" else m)
            elif name == "adagrad":
                v = v + g * g
                p = p - lr * g / (np.sqrt(v) + 1e-10)
            elif name == "rmsprop":
                v = 0.9 * v + 0.1 * g * g
                p = p - lr * g / (np.sqrt(v) + 1e-8)
            else:
                m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
                p = p - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
            path.append(p.copy())
        out[name] = np.array(path)
    return out


def naive(bg, paths, steps, size, path: Path, fps: float) -> None:
    """The textbook way: FuncAnimation redraws the whole figure, PillowWriter encodes."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, ax = plt.subplots(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    ax.contourf(bg.x, bg.y, bg.z, levels=bg.levels, cmap="viridis", alpha=0.5)
    ax.contour(bg.x, bg.y, bg.z, levels=bg.levels, colors="0.35", linewidths=0.5)
    colors = _style.colors(list(paths))
    lines = {k: ax.plot([], [], "-", color=colors[k], lw=2, label=k)[0] for k in paths}
    heads = {k: ax.plot([], [], "o", color=colors[k])[0] for k in paths}
    text = ax.text(0.03, 0.97, "", transform=ax.transAxes, va="top")
    ax.legend(loc="lower right")

    def update(i):
        s = int(steps[i])
        for k, xy in paths.items():
            lines[k].set_data(xy[: s + 1, 0], xy[: s + 1, 1])
            heads[k].set_data(xy[s : s + 1, 0], xy[s : s + 1, 1])
        text.set_text(f"step {s}")
        return [*lines.values(), *heads.values(), text]

    anim = FuncAnimation(fig, update, frames=len(steps))
    anim.save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)


def kernel(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="render.py --kernel")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--size", type=int, default=600, help="square frame side in px")
    args = ap.parse_args(argv)
    size = (args.size, args.size)
    paths = trajectories(args.steps)
    bounds = np.array([[-2.0, 2.0], [-1.0, 3.0]])
    bg = background(rosenbrock, bounds, min_value=0.0)
    steps = frame_steps(np.arange(args.steps + 1), args.frames)
    colors = _style.colors(list(paths))
    tracks = [
        Track(k, colors[k], np.arange(len(xy)), xy, np.array([rosenbrock(p) for p in xy]))
        for k, xy in paths.items()
    ]
    scene = Scene(bg, "", starts=np.array([[-1.5, 2.0]]), minima=np.array([[1.0, 1.0]]))
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "optbench.gif", Path(tmp) / "naive.gif"
        t0 = time.perf_counter()
        info = animate(
            scene,
            tracks,
            ours,
            frames=len(steps),
            size=size,
            max_bytes=10**9,
            duration=len(steps) * 0.05,
            hold=0.05,
        )
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        naive(bg, paths, steps, size, theirs, fps=20)
        t_naive = time.perf_counter() - t0
        b_ours, b_naive = ours.stat().st_size, theirs.stat().st_size
    print(f"{len(paths)} optimizers x {info.frames} frames at {size[0]}x{size[1]} px")
    print(f"optbench   {t_ours:8.2f} s  {b_ours:>10,} bytes")
    print(f"matplotlib {t_naive:8.2f} s  {b_naive:>10,} bytes  (FuncAnimation + PillowWriter)")
    print(
        f"speed-up   {t_naive / t_ours:8.1f} x   size ratio (naive / optbench) "
        f"{b_naive / b_ours:.2f}"
    )


HERE = Path(__file__).resolve().parent
PEER = HERE / "render_textbook.py"
SURFACES = HERE.parent / "surfaces"


def spec(folder: Path) -> dict:
    """What the textbook script needs to draw what optbench draws, per 2-D surface problem:
    the surface (its file's formula, the run's parameters), the frame steps of optbench's
    GIF and its frame rate."""
    import optbench

    res = optbench.load(folder)
    colors = _style.colors(_inputs.optimizers(res))
    out = {}
    for label in _inputs.two_d_surfaces(res):
        surf = res.surface(label)
        scene, tracks = build(res, label, colors)
        n, schedule = DEFAULTS["frames"], DEFAULTS["schedule"]
        steps = frame_steps(np.concatenate([t.steps for t in tracks]), n, schedule)
        out[label] = {
            "formula": tomllib.loads((SURFACES / f"{surf.name}.toml").read_text())["formula"],
            "params": {k: float(v) for k, v in surf.params.items()},
            "bounds": np.asarray(surf.plot_bounds, dtype=float).tolist(),
            "bounded_below": bool(surf.bounded_below),
            "start": scene.starts.tolist(),
            "minima": scene.minima.tolist(),
            "frames": [int(s) for s in steps],
            "fps": 1000 / delays(len(steps), DEFAULTS["duration"], DEFAULTS["hold"])[0],
        }
    return out


def fresh(cmd: list[str], env: dict) -> float:
    """Wall seconds of one fresh process."""
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def main() -> None:
    if sys.argv[1:2] == ["--kernel"]:
        kernel(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "XDG_CACHE_HOME": str(root / "cache")}
        env.pop("OPTBENCH_COMPILATION_CACHE", None)
        base = root / "base"
        optbench_cmd = [sys.executable, "-m", "optbench"]
        subprocess.run(
            [*optbench_cmd, "run", "--no-render", "--out", str(base)],
            env=env,
            check=True,
            capture_output=True,
        )
        spec_file = root / "spec.json"
        problems = spec(base)
        spec_file.write_text(json.dumps(problems))

        def ours(i: int) -> float:
            folder = root / f"ours{i}"
            shutil.copytree(base, folder)
            wall = fresh([*optbench_cmd, "render", str(folder)], env)
            assert len(list(folder.glob("*.gif"))) == len(problems)
            return wall

        def theirs(i: int) -> float:
            folder = root / f"theirs{i}"
            folder.mkdir()
            wall = fresh([sys.executable, str(PEER), str(base), str(spec_file), str(folder)], env)
            assert len(list(folder.glob("*.pdf"))) == len(problems)
            return wall

        ours(-1), theirs(-1)  # untimed: fonts, the compilation cache, the page cache
        rows = []
        for i in range(args.repeats):
            sides = [("ours", ours), ("theirs", theirs)]
            if i % 2:
                sides.reverse()
            times = {name: fn(i) for name, fn in sides}
            times["load"] = os.getloadavg()[0]
            rows.append(times)
            print(
                f"  pair {i}: optbench {times['ours']:6.2f} s  textbook "
                f"{times['theirs']:6.2f} s  load {times['load']:.1f}",
                flush=True,
            )
    ratios = [r["theirs"] / r["ours"] for r in rows]

    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs):6.2f} ({min(xs):.2f}-{max(xs):.2f})"

    print(
        f"`optbench render` of the quickstart ({len(problems)} problems), fresh processes, "
        f"{args.repeats} pairs"
    )
    print(f"  optbench render   {med([r['ours'] for r in rows])} s")
    print(f"  textbook          {med([r['theirs'] for r in rows])} s")
    print(f"  speed-up          {med(ratios)} x (median of paired ratios)")


if __name__ == "__main__":
    main()
