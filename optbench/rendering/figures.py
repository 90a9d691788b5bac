"""Static figures for the report and for papers: loss curves, learning-rate sensitivity,
task metrics. Each function returns a matplotlib Figure (Agg, no display)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from optbench.rendering import _inputs
from optbench.rendering._style import RC, set_scale
from optbench.rendering.levels import loss_axis


def _figure(w: float = 6.4, h: float = 3.6) -> Figure:
    import matplotlib as mpl

    with mpl.rc_context(RC):
        return Figure(figsize=(w, h), dpi=100, layout="constrained")


def _surface_min(res: Any, problem: str) -> tuple[float | None, bool]:
    if "surface" not in _inputs.problem_config(res, problem):
        return None, True
    try:
        s = res.surface(problem)
        return s.min_value, bool(s.bounded_below)
    except Exception:
        return None, True


def band(curves: pd.DataFrame, run_ids: list[str], metric: str) -> pd.DataFrame:
    """Median and interquartile range of ``metric`` over runs, per step."""
    c = curves[curves["run_id"].astype(str).isin(run_ids)]
    wide = c.pivot_table(index="step", columns="run_id", values=metric, aggfunc="first")
    wide = wide.ffill().where(~wide.isna() | wide.ffill().isna())  # frozen after the stop
    q = wide.quantile([0.25, 0.5, 0.75], axis=1).T
    q.columns = ["q25", "median", "q75"]
    return q.dropna(how="all")


def loss_curves(res: Any, problem: str, colors: dict[str, str], metric: str = "") -> Figure:
    """Loss vs step of each optimizer's selected runs: median line, interquartile band."""
    runs = _inputs.selected(res, problem)
    metric = metric or ("train_loss" if _inputs.is_task(runs).any() else "loss")
    min_value, bounded = _surface_min(res, problem)
    bands = {}
    for opt in _inputs.optimizers(res):
        ids = runs.loc[runs["optimizer"].astype(str) == opt, "run_id"].astype(str).tolist()
        if ids and metric in res.curves.columns:
            bands[opt] = band(res.curves, ids, metric)
    fig = _figure()
    ax = fig.subplots()
    vals = np.concatenate([b["median"].to_numpy() for b in bands.values()] or [np.ones(1)])
    la = loss_axis(vals, min_value=min_value, bounded_below=bounded, name=metric.replace("_", " "))
    for opt, b in bands.items():
        lr = runs.loc[runs["optimizer"].astype(str) == opt, "learning_rate"].iloc[0]
        x = b.index.to_numpy(dtype=float)
        ax.fill_between(
            x, la.transform(b["q25"]), la.transform(b["q75"]), color=colors[opt], alpha=0.2, lw=0
        )
        ax.plot(
            x, la.transform(b["median"]), color=colors[opt], lw=1.8, label=f"{opt} (lr {lr:.3g})"
        )
    la.apply(ax)
    set_scale(ax, "x", "symlog", linthresh=1.0, linscale=0.3)
    ax.set_xlim(left=0)
    ax.set_xlabel("step")
    ax.set_title(f"{problem}: median over seeds, band = interquartile range")
    ax.grid(True, color="0.9", lw=0.6)
    if bands:
        ax.legend(loc="best", frameon=False)
    return fig


def sensitivity(res: Any, problem: str, colors: dict[str, str]) -> Figure:
    """Final loss vs learning rate (log-log) per optimizer; diverged points as crosses on
    the top edge, the selected learning rate ringed. Each learning rate shows its best
    setting of the other hyperparameters."""
    r = res.runs[res.runs["problem"].astype(str) == problem]
    col = _inputs.objective(r)
    min_value, bounded = _surface_min(res, problem)
    fig = _figure()
    ax = fig.subplots()
    pts = {}
    for opt in _inputs.optimizers(res):
        g = r[r["optimizer"].astype(str) == opt]
        if g.empty:
            continue
        score = g[col].astype(float).where(~g["diverged"].astype(bool), np.inf)
        per = (
            g.assign(_s=score)
            .groupby("grid_index")
            .agg(lr=("learning_rate", "first"), s=("_s", "median"), sel=("selected", "any"))
        )
        best = per.sort_values("s").groupby("lr").first().sort_index()
        pts[opt] = best
    finite = np.concatenate([b["s"].to_numpy() for b in pts.values()] or [np.ones(1)])
    finite = finite[np.isfinite(finite)]
    la = loss_axis(
        finite if finite.size else np.ones(1),
        min_value=min_value,
        bounded_below=bounded,
        name=col.replace("_", " "),
    )
    la.apply(ax)
    set_scale(ax, "x", "log")
    shown = la.transform(finite) if finite.size else np.ones(1)
    shown = shown[np.isfinite(shown)]
    top = float(shown.max()) if shown.size else 1.0
    span = abs(top) + la.linthresh
    # diverged points sit in a strip above the data, each optimizer nudged sideways so
    # that coinciding crosses stay visible
    line, row, ceiling = (
        (top * 3.0, top * 12.0, top * 40.0)
        if la.scale == "log"
        else (top + 0.1 * span, top + 0.25 * span, top + 0.4 * span)
    )
    any_diverged = False
    for i, (opt, b) in enumerate(pts.items()):
        lr, y = b.index.to_numpy(float), la.transform(b["s"].to_numpy(float))
        ok = np.isfinite(y)
        ax.plot(lr[ok], y[ok], "o-", color=colors[opt], lw=1.5, ms=5, label=opt)
        if (~ok).any():
            any_diverged = True
            nudge = 10 ** (0.035 * (i - (len(pts) - 1) / 2))
            ax.plot(
                lr[~ok] * nudge,
                np.full((~ok).sum(), row),
                "X",
                color=colors[opt],
                ms=8,
                mec="black",
                mew=0.5,
            )
        sel = b["sel"].to_numpy(bool) & ok
        ax.plot(lr[sel], y[sel], "o", ms=12, mfc="none", mec=colors[opt], mew=1.5)
    lo = ax.get_ylim()[0]
    if any_diverged:
        ax.axhline(line, color="0.6", lw=0.8, ls=":")
        ax.text(
            0.01,
            row,
            "diverged",
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=8,
            color="0.35",
        )
        ax.set_ylim(lo, ceiling)
    else:
        ax.set_ylim(lo, line)
    ax.set_xlabel("learning rate")
    ax.set_title(f"{problem}: final loss vs learning rate (ring = selected)")
    ax.grid(True, color="0.9", lw=0.6)
    if pts:
        ax.legend(loc="best", frameon=False)
    return fig


TASK_METRICS = (
    ("train_loss", "train loss", "log"),
    ("val_loss", "validation loss", "log"),
    ("test_loss", "test loss", "log"),
    ("test_accuracy", "test accuracy", "linear"),
)


def task_curves(res: Any, problem: str, colors: dict[str, str]) -> Figure | None:
    """Train / validation / test loss and test accuracy of a task (median over seeds)."""
    runs = _inputs.selected(res, problem)
    ids = runs["run_id"].astype(str)
    c = res.curves[res.curves["run_id"].astype(str).isin(ids)]
    metrics = [m for m in TASK_METRICS if m[0] in c.columns and c[m[0]].notna().any()]
    if not metrics:
        return None
    xcol = "epoch" if "epoch" in c.columns and c["epoch"].notna().any() else "step"
    fig = _figure(9.0, 5.6)
    axes = fig.subplots(2, 2, squeeze=False).ravel()
    for ax, (m, title, scale) in zip(axes, metrics, strict=False):
        for opt in _inputs.optimizers(res):
            oid = runs.loc[runs["optimizer"].astype(str) == opt, "run_id"].astype(str).tolist()
            cc = c[c["run_id"].astype(str).isin(oid)].dropna(subset=[m])
            if cc.empty:
                continue
            b = cc.groupby(xcol)[m].quantile([0.25, 0.5, 0.75]).unstack()
            x = b.index.to_numpy(float)
            ax.fill_between(x, b[0.25], b[0.75], color=colors[opt], alpha=0.2, lw=0)
            ax.plot(x, b[0.5], color=colors[opt], lw=1.6, label=opt)
        if scale == "log" and (c[m].dropna() > 0).all():
            set_scale(ax, "y", "log")
        ax.set_title(title)
        ax.set_xlabel(xcol)
        ax.grid(True, color="0.9", lw=0.6)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    axes[0].legend(loc="best", frameon=False)
    fig.suptitle(f"{problem}: selected runs, median over seeds, band = interquartile range")
    return fig


def grad_norm(res: Any, problem: str, colors: dict[str, str]) -> Figure | None:
    """Gradient norm w.r.t. the first hidden state (recurrent tasks), log y."""
    runs = _inputs.selected(res, problem)
    c = res.curves[res.curves["run_id"].astype(str).isin(runs["run_id"].astype(str))]
    if "grad_norm_h0" not in c.columns or not c["grad_norm_h0"].notna().any():
        return None
    fig = _figure()
    ax = fig.subplots()
    for opt in _inputs.optimizers(res):
        oid = runs.loc[runs["optimizer"].astype(str) == opt, "run_id"].astype(str).tolist()
        cc = c[c["run_id"].astype(str).isin(oid)].dropna(subset=["grad_norm_h0"])
        if not cc.empty:
            med = cc.groupby("step")["grad_norm_h0"].median()
            ax.plot(med.index, med.to_numpy(), color=colors[opt], lw=1.6, label=opt)
    set_scale(ax, "y", "log")
    ax.set_xlabel("step")
    ax.set_ylabel("‖∂L/∂h₀‖")
    ax.set_title(f"{problem}: gradient reaching the first hidden state")
    ax.grid(True, color="0.9", lw=0.6)
    ax.legend(loc="best", frameon=False)
    return fig
