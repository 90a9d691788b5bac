"""A small synthetic results folder (numpy optimizers on two surfaces and a fake task).

Used by the tests and the rendering benchmark to exercise the renderers without running
the engine. ``write_demo(folder)`` writes the five files; :func:`demo_surface` is the
matching stand-in for ``Results.surface``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SURFACES = {
    "rosenbrock": {
        "fn": lambda p: (1 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2,
        "grad": lambda p: np.array(
            [-2 * (1 - p[0]) - 400 * p[0] * (p[1] - p[0] ** 2), 200 * (p[1] - p[0] ** 2)]
        ),
        "bounds": [[-2.0, 2.0], [-1.0, 3.0]],
        "start": [[-1.5, 2.0]],
        "minima": [((1.0, 1.0), 0.0)],
    },
    "saddle": {
        "fn": lambda p: p[0] ** 2 - p[1] ** 2,
        "grad": lambda p: np.array([2 * p[0], -2 * p[1]]),
        "bounds": [[-1.0, 1.0], [-1.0, 1.0]],
        "start": [[0.9, 1e-3], [-0.7, -0.01]],
        "minima": [],
    },
}


@dataclass(eq=False)
class DemoSurface:
    """The attributes of ``optbench.surfaces.Surface`` that the renderers read."""

    name: str
    fn: Any
    start: np.ndarray
    plot_bounds: np.ndarray
    escape_bounds: np.ndarray
    minima: list = field(default_factory=list)
    dim: int = 2
    coords: tuple[str, ...] = ("x", "y")
    description: str = ""

    @property
    def min_value(self) -> float | None:
        return min((v for _, v in self.minima), default=None)

    @property
    def bounded_below(self) -> bool:
        return bool(self.minima)


def demo_surface(name: str) -> DemoSurface:
    """The stand-in surface ``name`` ("rosenbrock" or "saddle")."""
    s = SURFACES[name]
    b = np.array(s["bounds"])
    c, h = b.mean(axis=1, keepdims=True), (b[:, 1:] - b[:, :1]) / 2
    return DemoSurface(
        name,
        s["fn"],
        np.array(s["start"]),
        b,
        np.hstack([c - 10 * h, c + 10 * h]),
        [(np.array(p), v) for p, v in s["minima"]],
    )


OPTIMIZERS = {"sgd": [1e-4, 1e-3, 3e-3], "momentum": [1e-4, 1e-3, 3e-3], "adam": [1e-2, 1e-1]}


def _path(kind: str, lr: float, grad, x0, steps, noise, seed, box) -> tuple[np.ndarray, int, str]:
    rng = np.random.default_rng(seed)
    p, m, v = np.array(x0, dtype=float), np.zeros(2), np.zeros(2)
    out = [p.copy()]
    for t in range(1, steps + 1):
        g = grad(p) + noise * rng.standard_normal(2)
        if kind == "sgd":
            p = p - lr * g
        elif kind == "momentum":
            m = 0.9 * m + g
            p = p - lr * m
        else:
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            p = p - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        out.append(p.copy())
        if not np.isfinite(p).all() or (p < box[:, 0]).any() or (p > box[:, 1]).any():
            return np.array(out), t, "left"
    return np.array(out), steps, "ok"


def _schedule(stop: int) -> np.ndarray:
    dense = np.arange(min(stop, 60) + 1)
    tail = np.unique(np.geomspace(61, max(stop, 61), 80).astype(int))
    return np.unique(np.concatenate([dense, tail[tail <= stop], [stop]]))


def write_demo(
    folder: str | Path,
    *,
    steps: int = 300,
    seeds: int = 2,
    noise: float = 0.5,
    surfaces: tuple[str, ...] = ("rosenbrock", "saddle"),
    task: bool = True,
) -> Path:
    """Write a synthetic results folder: runs, curves, trajectories, config, meta."""
    from optbench.results import select

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    runs, curves, trajs, problems, groups = [], [], [], [], []
    for name in surfaces:
        s, surf = SURFACES[name], demo_surface(name)
        problems.append({"label": name, "surface": name, "params": {}, "noise": noise})
        for opt, lrs in OPTIMIZERS.items():
            groups.append(
                {
                    "problem": name,
                    "optimizer": opt,
                    "runs": len(lrs) * seeds,
                    "steps": steps,
                    "compile_s": 0.2,
                    "run_s": 0.05,
                }
            )
            for gi, lr in enumerate(lrs):
                for seed in range(seeds):
                    for si, x0 in enumerate(s["start"]):
                        rid = f"{name}-{opt}-{gi}-{seed}-{si}"
                        xy, stop, how = _path(
                            opt, lr, s["grad"], x0, steps, noise, seed, surf.escape_bounds
                        )
                        loss = np.array([surf.fn(p) for p in xy])
                        div = how == "left" and surf.bounded_below
                        esc = how == "left" and not surf.bounded_below
                        fin = float("inf") if div else float(loss[stop])
                        tol = np.flatnonzero(loss - (surf.min_value or 0) < 1e-3)
                        runs.append(
                            {
                                "run_id": rid,
                                "problem": name,
                                "surface": name,
                                "task": np.nan,
                                "optimizer": opt,
                                "algorithm": opt,
                                "learning_rate": lr,
                                "grid_index": gi,
                                "seed": seed,
                                "start": si,
                                "start_x": x0[0],
                                "start_y": x0[1],
                                "final_loss": fin,
                                "best_loss": float(np.nanmin(loss)),
                                "steps_to_tol": int(tol[0])
                                if surf.bounded_below and len(tol)
                                else np.nan,
                                "diverged": div,
                                "escaped": esc,
                                "stop_step": stop,
                            }
                        )
                        for k in _schedule(stop):
                            trajs.append((rid, int(k), *xy[k]))
                        for k in sorted({*range(0, stop + 1, 10), stop}):
                            curves.append({"run_id": rid, "step": k, "loss": loss[k]})
    if task:
        problems.append({"label": "lstm", "task": "adding", "params": {}, "steps": 200})
        for opt, lrs in OPTIMIZERS.items():
            groups.append(
                {
                    "problem": "lstm",
                    "optimizer": opt,
                    "runs": len(lrs) * seeds,
                    "steps": 200,
                    "compile_s": 2.0,
                    "run_s": 3.0,
                }
            )
            for gi, lr in enumerate(lrs):
                for seed in range(seeds):
                    rid = f"lstm-{opt}-{gi}-{seed}"
                    rate = 1.0 + 20 * lr + 0.1 * seed
                    st = np.arange(0, 201, 20)
                    tr = 0.2 * np.exp(-rate * st / 100) + 0.01
                    runs.append(
                        {
                            "run_id": rid,
                            "problem": "lstm",
                            "surface": np.nan,
                            "task": "adding",
                            "optimizer": opt,
                            "algorithm": opt,
                            "learning_rate": lr,
                            "grid_index": gi,
                            "seed": seed,
                            "start": 0,
                            "start_x": np.nan,
                            "start_y": np.nan,
                            "final_loss": tr[-1],
                            "best_loss": tr.min(),
                            "steps_to_tol": np.nan,
                            "diverged": False,
                            "escaped": False,
                            "stop_step": 200,
                            "final_train_loss": tr[-1],
                            "val_loss": tr[-1] * 1.1,
                            "test_loss": tr[-1] * 1.12,
                            "test_accuracy": 1 - tr[-1],
                        }
                    )
                    for k, v in zip(st, tr, strict=True):
                        curves.append(
                            {
                                "run_id": rid,
                                "step": int(k),
                                "train_loss": v,
                                "val_loss": v * 1.1,
                                "test_loss": v * 1.12,
                                "test_accuracy": 1 - v,
                                "grad_norm_h0": 1e-6 * np.exp(rate * k / 80),
                            }
                        )
    runs_df = pd.DataFrame(runs)
    runs_df["selected"] = select(runs_df)
    runs_df.to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(curves).to_csv(folder / "curves.csv", index=False)
    pd.DataFrame(trajs, columns=["run_id", "step", "x", "y"]).to_csv(
        folder / "trajectories.csv", index=False
    )
    config = {
        "name": "demo",
        "steps": steps,
        "seeds": list(range(seeds)),
        "log_every": 10,
        "tolerance": 1e-3,
        "dtype": "float32",
        "problem": problems,
        "optimizer": {o: {"name": o, "learning_rate": lrs} for o, lrs in OPTIMIZERS.items()},
    }
    import tomli_w

    (folder / "config.toml").write_text(tomli_w.dumps(config))
    meta = {
        "versions": {
            "optbench": "0.1.0",
            "jax": "0",
            "jaxlib": "0",
            "numpy": np.__version__,
            "python": "3",
        },
        "platform": "demo",
        "device_kind": "cpu",
        "config_hash": "0" * 16,
        "date": "2025-01-01T00:00:00",
        "groups": groups,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder
