"""A small synthetic results folder for the rendering tests: numpy optimizers on two
surfaces and a fake recurrent task, written without running the engine.

``write_demo(folder)`` builds the tidy frames, puts them through
:func:`optbench.results.schema.normalize` and saves them with
:meth:`optbench.results.Results.save`, with a ``meta.json`` of the keys a real run writes;
:func:`demo_surface` is the matching stand-in for ``Results.surface`` (monkeypatch it in).
Imported by the tests as ``from demo import ...`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import optbench
from optbench.results import Results, schema, select

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


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def demo_meta(name: str, config_hash: str, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``meta.json`` with exactly the keys a real run writes (flat version keys)."""
    versions = {k: _version(k) for k in schema.VERSION_KEYS}
    versions.update(optbench=optbench.__version__, python=platform.python_version())
    machine = {
        "platform": "demo",
        "machine": "x86_64",
        "processor": "demo cpu",
        "cpu_count": 4,
        "device_kind": "cpu: cpu",
    }
    run = {
        "name": name,
        "config_hash": config_hash,
        "date": "2025-01-01T00:00:00+00:00",
        "complete": True,
        "wall_s": round(sum(g["compile_s"] + g["run_s"] for g in groups), 3),
        "groups": groups,
    }
    meta = {**versions, **machine, **run}
    assert set(meta) == {*schema.VERSION_KEYS, *schema.MACHINE_KEYS, *schema.RUN_KEYS}
    return meta


def _group(*values: Any) -> dict[str, Any]:
    """One entry of ``meta["groups"]``: the values of ``schema.GROUP_KEYS`` in order."""
    return dict(zip(schema.GROUP_KEYS, values, strict=True))


def write_demo(
    folder: str | Path,
    *,
    steps: int = 300,
    seeds: int = 2,
    noise: float = 0.5,
    surfaces: tuple[str, ...] = ("rosenbrock", "saddle"),
    task: bool = True,
) -> Path:
    """Write a synthetic results folder (the five files of the schema); returns it."""
    runs, curves, trajs, problems, groups = [], [], [], [], []
    for name in surfaces:
        s, surf = SURFACES[name], demo_surface(name)
        problems.append({"label": name, "surface": name, "params": {}, "noise": noise})
        for opt, lrs in OPTIMIZERS.items():
            runs_n = len(lrs) * seeds * len(s["start"])  # each start is a run of its own
            groups.append(_group(name, opt, runs_n, steps, 0.2, 0.05, f"p-{name}-{opt}"))
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
            groups.append(_group("lstm", opt, len(lrs) * seeds, 200, 2.0, 3.0, f"p-lstm-{opt}"))
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
    runs_df = schema.normalize(pd.DataFrame(runs))
    runs_df[schema.SELECTED] = select(runs_df)
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
    results = Results(
        runs=runs_df,
        curves=schema.normalize(pd.DataFrame(curves)),
        trajectories=schema.normalize(pd.DataFrame(trajs, columns=list(schema.TRAJECTORY_COLUMNS))),
        meta=demo_meta(config["name"], "0" * 16, groups),
        config=config,
    )
    return results.save(folder)
