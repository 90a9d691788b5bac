"""The summary table: one row per (problem, optimizer), as ``summary.csv`` and, through
:mod:`.tables`, as HTML and booktabs LaTeX.

Each row describes the optimizer's *selected* grid point (``selected`` in ``runs.csv``: the
lowest mean final loss, validation loss for tasks, over the config's ``selection_seeds``),
reported over the other seeds when some were held out from selection (all seeds
otherwise). Statistics are the mean and a 95% t-interval over the finite values of the
runs that did not diverge (each (seed, start) pair is a run); diverged runs are counted
apart. Columns that do not apply to a problem are empty: losses within tolerance and
steps to it for surfaces with a known minimum, escapes for surfaces unbounded below,
validation and test metrics for tasks (accuracy for classification only).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from optbench.rendering import _inputs
from optbench.rendering.tables import tex_escape, to_latex

__all__ = ["edge", "edge_warning", "mean_ci", "summary", "tex_escape", "to_latex"]

#: Statistics of every summarised metric: mean, 95% t-interval, median and quartiles.
STATS = ("mean", "ci_low", "ci_high", "median", "q25", "q75")
SURFACE_METRICS = ("final_loss", "best_loss")
TASK_METRICS = ("val_loss", "test_loss", "test_accuracy", "final_train_loss")


def mean_ci(values: Any, level: float = 0.95) -> dict[str, float]:
    """Mean, t-interval (``ci_low``, ``ci_high``; NaN with fewer than two values), median
    and quartiles of the finite ``values``.

    Example:
        >>> {k: round(v, 3) for k, v in mean_ci([1.0, 2.0, 3.0, np.inf]).items()}
        {'mean': 2.0, 'ci_low': -0.484, 'ci_high': 4.484, 'median': 2.0, 'q25': 1.5, 'q75': 2.5}
    """
    from scipy import special  # not scipy.stats: its import took 0.7-1.1 s, this one 0.2 s

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return dict.fromkeys(STATS, math.nan)
    mean = float(v.mean())
    half = math.nan
    if v.size >= 2:
        t = special.stdtrit(v.size - 1, 0.5 + level / 2)  # the t quantile, as stats.t.ppf
        half = float(t * v.std(ddof=1) / math.sqrt(v.size))
    q25, median, q75 = (float(q) for q in np.quantile(v, [0.25, 0.5, 0.75]))
    return {
        "mean": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "median": median,
        "q25": q25,
        "q75": q75,
    }


def edge(group: pd.DataFrame, selected: pd.DataFrame) -> list[str]:
    """The gridded hyperparameters (3 or more values) whose selected value is the smallest
    or largest of its grid, as ``"learning_rate largest of 7"``."""
    if selected.empty:
        return []
    out = []
    for h in _inputs.hyperparameters(group):
        grid = np.unique(group[h].astype(float).dropna().to_numpy())
        if grid.size < 3:
            continue
        value = float(selected[h].iloc[0])
        if value == grid[0]:
            out.append(f"{h} smallest of {grid.size}")
        elif value == grid[-1]:
            out.append(f"{h} largest of {grid.size}")
    return out


def _point(group: pd.DataFrame, selected: pd.DataFrame) -> str:
    """The selected values of the gridded hyperparameters other than the learning rate."""
    if selected.empty:
        return ""
    parts = []
    for h in _inputs.hyperparameters(group):
        if h != "learning_rate" and group[h].nunique() > 1:
            parts.append(f"{h}={float(selected[h].iloc[0]):.4g}")
    return ", ".join(parts)


def summary(res: Any) -> pd.DataFrame:
    """One row per (problem, optimizer) of ``res`` (see the module docstring): ``problem,
    kind, optimizer, algorithm, schedule, learning_rate`` (the peak of a schedule),
    ``point`` (the other gridded values), ``grid_size, grid_edge, grid_edge_at``, the
    reported ``runs`` and ``seeds``, ``diverged`` (count) and ``diverged_fraction``,
    ``METRIC_STAT`` for the kind's metrics, and ``steps_to_tol_median``,
    ``reached_fraction``, ``escaped_fraction`` where they apply."""
    rows = []
    r = res.runs
    _, reported = _inputs.seeds(res)
    for problem in _inputs.problems(res):
        pr = r[r["problem"].astype(str) == problem]
        task = bool(_inputs.is_task(pr).any())
        has_min, bounded = (False, True) if task else _inputs.surface_kind(res, problem)
        for opt in _inputs.optimizers(res):
            g = pr[pr["optimizer"].astype(str) == opt]
            if g.empty:
                continue
            sel = g[g["selected"].astype(bool)]
            rep = sel[sel["seed"].isin(reported)]
            div = rep["diverged"].astype(bool)
            edges = edge(g, sel)
            row: dict[str, Any] = {
                "problem": problem,
                "kind": "task" if task else "surface",
                "optimizer": opt,
                "algorithm": str(g["algorithm"].iloc[0]) if "algorithm" in g else opt,
                "schedule": _inputs.schedule_text(g),
                "learning_rate": float(sel["learning_rate"].iloc[0]) if len(sel) else np.nan,
                "point": _point(g, sel),
                "grid_size": int(g["grid_index"].nunique()),
                "grid_edge": bool(edges),
                "grid_edge_at": "; ".join(edges),
                "runs": len(rep),
                "seeds": int(rep["seed"].nunique()),
                "diverged": int(div.sum()),
                "diverged_fraction": float(div.mean()) if len(rep) else np.nan,
            }
            kept = rep[~div.to_numpy()]
            for metric in (*SURFACE_METRICS, *TASK_METRICS) if task else SURFACE_METRICS:
                values = kept[metric] if metric in kept else pd.Series(dtype=float)
                for k, v in mean_ci(values.astype(float)).items():
                    row[f"{metric}_{k}"] = v
            tol = rep["steps_to_tol"].astype(float)
            row["steps_to_tol_median"] = (
                float(tol.median()) if has_min and tol.notna().any() else np.nan
            )
            row["reached_fraction"] = float(tol.notna().mean()) if has_min and len(rep) else np.nan
            escaped = rep["escaped"].astype(bool)
            row["escaped_fraction"] = float(escaped.mean()) if not bounded and len(rep) else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def edge_warning(table: pd.DataFrame, shown: int = 3) -> str | None:
    """One line naming the selections at the edge of their grid (``grid_edge``), or None.

    Example:
        >>> t = pd.DataFrame({"problem": ["p"], "optimizer": ["sgd"], "grid_edge": [True],
        ...                   "grid_edge_at": ["learning_rate largest of 7"]})
        >>> print(edge_warning(t))  # doctest: +ELLIPSIS
        1 selected grid point at the edge of its grid: p x sgd (learning_rate largest of 7); ...
    """
    if table.empty or not table["grid_edge"].any():
        return None
    edges = table[table["grid_edge"].astype(bool)]
    named = [f"{r.problem} x {r.optimizer} ({r.grid_edge_at})" for r in edges.itertuples()]
    more = f" and {len(named) - shown} more" if len(named) > shown else ""
    n = len(named)
    points, their = ("points", "their") if n > 1 else ("point", "its")
    return (
        f"{n} selected grid {points} at the edge of {their} grid: {'; '.join(named[:shown])}"
        f"{more}; widen the grid (summary.csv: grid_edge)"
    )
