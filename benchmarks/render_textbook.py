"""The peer of ``optbench render``: the same animations drawn the textbook way.

What a user writes with matplotlib alone, reading the tidy files of a results folder: for
each 2-D surface problem, a figure of two panels (the contour plot with the selected runs'
paths, the start and the minimum; the loss along each path against the step on a log
axis, a dashed line at the current step; one legend below), animated by ``FuncAnimation``
(the whole figure redrawn every frame, the layout computed once) and written by
``PillowWriter``; then its last frame saved as PNG (150 dpi) and PDF (TrueType fonts
embedded, as optbench's stills). It imports numpy, pandas and matplotlib, not optbench.

``SPEC`` is a JSON file written by ``benchmarks/render.py`` (untimed): per problem, the
surface's formula, parameters, plot bounds, start and minima, the GIF's frame steps and its
frame rate, so that both sides draw the same frames of the same runs.

    python benchmarks/render_textbook.py RESULTS_DIR SPEC OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.animation import FuncAnimation, PillowWriter

NUMPY = {name: getattr(np, name) for name in ("sin", "cos", "exp", "log", "sqrt", "abs", "pi")}


def surface(formula: str, params: dict):
    """The surface as a numpy function of x and y."""
    return lambda x, y: eval(formula, NUMPY, {"x": x, "y": y, **params})


def draw(problem: str, spec: dict, runs: pd.DataFrame, traj: pd.DataFrame, out: Path) -> None:
    f = surface(spec["formula"], spec["params"])
    (x0, x1), (y0, y1) = spec["bounds"]
    X, Y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    Z = f(X, Y)
    if spec["bounded_below"]:
        Zt = np.log10(Z - Z.min() + 1e-3 * (Z.max() - Z.min()))
    else:  # a saddle: a symmetric log of the values
        Zt = np.sign(Z) * np.log10(1 + np.abs(Z) / (0.02 * np.abs(Z).max()))

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 5), dpi=100)
    fig.suptitle(problem)
    ax.contourf(X, Y, Zt, levels=24, cmap="viridis", alpha=0.5)
    ax.contour(X, Y, Zt, levels=24, colors="0.35", linewidths=0.4)
    ax.plot(*np.array(spec["start"]).T, "o", mfc="white", mec="black", label="start")
    if spec["minima"]:
        ax.plot(*np.array(spec["minima"]).T, "*", ms=14, mec="black", label="minimum")
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y")
    text = ax.text(
        0.03,
        0.97,
        "",
        transform=ax.transAxes,
        va="top",
        family="monospace",
        bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8},
    )

    paths = []
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (_, r) in enumerate(runs.iterrows()):
        color = cycle[i % len(cycle)]
        t = traj[traj["run_id"] == r["run_id"]].sort_values("step")
        xy = t[["x", "y"]].to_numpy()
        loss = f(xy[:, 0], xy[:, 1])
        label = f"{r['optimizer']}  lr={r['learning_rate']:.3g}"
        line = ax.plot([], [], "-", color=color, lw=2, label=label)[0]
        head = ax.plot([], [], "o", color=color, mec="white")[0]
        curve = ax2.plot([], [], "-", color=color, lw=1.5)[0]
        dot = ax2.plot([], [], "o", color=color, mec="white")[0]
        paths.append((t["step"].to_numpy(), xy, loss, line, head, curve, dot))
    losses = np.concatenate([p[2] for p in paths])
    ax2.set_xscale("symlog", linthresh=1)
    ax2.set_xlim(0, max(spec["frames"]) * 1.5)
    if spec["bounded_below"]:
        ax2.set_yscale("log")
        ax2.set_ylim(max(losses.min(), 1e-12) / 3, losses.max() * 3)
    else:
        ax2.set_yscale("symlog")
        ax2.set_ylim(losses.min() * 1.5, max(losses.max(), 1) * 1.5)
    ax2.set(xlabel="step", ylabel="loss")
    ax2.grid(alpha=0.3)
    now = ax2.axvline(0, ls="--", color="0.3")
    fig.legend(loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))  # once: room for the legend below

    def update(i: int):
        s = spec["frames"][i]
        for steps, xy, loss, line, head, curve, dot in paths:
            k = np.searchsorted(steps, s, side="right")
            line.set_data(xy[:k, 0], xy[:k, 1])
            head.set_data(xy[k - 1 : k, 0], xy[k - 1 : k, 1])
            curve.set_data(steps[:k], loss[:k])
            dot.set_data(steps[k - 1 : k], loss[k - 1 : k])
        now.set_xdata([s, s])
        text.set_text(f"step {s}")

    anim = FuncAnimation(fig, update, frames=len(spec["frames"]))
    anim.save(out / f"{problem}.gif", writer=PillowWriter(fps=spec["fps"]))
    update(len(spec["frames"]) - 1)
    fig.savefig(out / f"{problem}.png", dpi=150)
    fig.savefig(out / f"{problem}.pdf")
    plt.close(fig)


def main() -> None:
    folder, spec_file, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    plt.rcParams["pdf.fonttype"] = 42  # TrueType in the PDF, as optbench's stills
    specs = json.loads(spec_file.read_text())
    runs = pd.read_csv(folder / "runs.csv")
    traj = pd.read_csv(folder / "trajectories.csv")
    for problem, spec in specs.items():
        chosen = runs[(runs["problem"] == problem) & runs["selected"]]
        draw(problem, spec, chosen, traj[traj["run_id"].isin(chosen["run_id"])], out)


if __name__ == "__main__":
    main()
