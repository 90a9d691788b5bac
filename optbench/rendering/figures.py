"""Static figures for the report and for papers: loss curves, learning-rate sensitivity,
task metrics, the gradient reaching the first hidden state and the performance profile.
Each function returns a matplotlib Figure (Agg, no display).

Every log axis has labelled ticks however narrow its range
(:func:`~optbench.rendering._style.log_ticks`); limits come from the data; the step axis of
a surface is symmetric-log (the first steps matter), that of a task linear, in epochs for
dataset tasks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from optbench.rendering import _inputs
from optbench.rendering._style import RC, set_scale
from optbench.rendering.levels import escape_floor, loss_axis
from optbench.rendering.tables import sig

#: Line styles of the profile, so that coinciding profiles stay visible.
_DASHES = ("-", "--", "-.", ":")


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


def legend(opt: str, runs: pd.DataFrame) -> str:
    """``"adam (lr 0.0100)"``, or ``"adam (peak lr 0.0100, cosine, warmup 100)"``."""
    mine = runs[runs["optimizer"].astype(str) == opt]
    if mine.empty or "learning_rate" not in mine:
        return opt
    schedule = _inputs.schedule_text(mine)
    lr = sig(mine["learning_rate"].iloc[0])
    return f"{opt} (peak lr {lr}, {schedule})" if schedule else f"{opt} (lr {lr})"


def band(curves: pd.DataFrame, run_ids: list[str], metric: str) -> pd.DataFrame:
    """Median and interquartile range of ``metric`` over runs, per step (empty when no run
    has a finite value, as for a run whose loss is not finite at its start)."""
    c = curves[curves["run_id"].astype(str).isin(run_ids)]
    c = c[np.isfinite(c[metric].astype(float))] if metric in c else c.iloc[:0]
    if c.empty:
        return pd.DataFrame(columns=["q25", "median", "q75"], dtype=float)
    wide = c.pivot_table(index="step", columns="run_id", values=metric, aggfunc="first")
    wide = wide.ffill().where(~wide.isna() | wide.ffill().isna())  # frozen after the stop
    q = wide.quantile([0.25, 0.5, 0.75], axis=1).T
    q.columns = ["q25", "median", "q75"]
    return q.dropna(how="all")


def _step_axis(ax: Any, task: bool, xcol: str, x_max: float) -> None:
    """A surface's steps on a symmetric-log axis; a task's steps or epochs on a linear one."""
    if task:
        from matplotlib.ticker import MaxNLocator

        ax.set_xlabel(xcol)
        ax.set_xlim(0, max(x_max, 1.0) * 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs and steps
    else:
        set_scale(ax, "x", "symlog", linthresh=1.0, linscale=0.3)
        ax.set_xlim(left=0)
        ax.set_xlabel("step")


def _xcol(curves: pd.DataFrame) -> str:
    return "epoch" if "epoch" in curves.columns and curves["epoch"].notna().any() else "step"


def loss_curves(res: Any, problem: str, colors: dict[str, str], metric: str = "") -> Figure:
    """Loss vs step (epoch for dataset tasks) of each optimizer's selected runs: median
    line, interquartile band."""
    runs = _inputs.selected(res, problem)
    task = bool(_inputs.is_task(runs).any())
    metric = metric or ("train_loss" if task else "loss")
    min_value, bounded = _surface_min(res, problem)
    curves = res.curves
    xcol = "step"
    if task:
        curves = curves[curves["run_id"].astype(str).isin(runs["run_id"].astype(str))]
        xcol = _xcol(curves)
        if xcol == "epoch":
            curves = curves.assign(step=curves["epoch"])
    bands = {}
    for opt in _inputs.optimizers(res):
        ids = runs.loc[runs["optimizer"].astype(str) == opt, "run_id"].astype(str).tolist()
        if ids and metric in curves.columns:
            b = band(curves, ids, metric)
            if not b.empty:
                bands[opt] = b
    fig = _figure()
    ax = fig.subplots()
    medians = [b["median"].to_numpy(float) for b in bands.values()]
    vals = np.concatenate(medians or [np.ones(1)])
    floor = None if bounded else escape_floor(medians)
    if floor is not None:  # runs far below the others leave through the bottom (a triangle)
        vals = vals[vals >= floor]
    la = loss_axis(vals, min_value=min_value, bounded_below=bounded, name=metric.replace("_", " "))
    off = []
    for opt, b in bands.items():
        x, med = b.index.to_numpy(dtype=float), b["median"].to_numpy(float)
        ax.fill_between(
            x, la.transform(b["q25"]), la.transform(b["q75"]), color=colors[opt], alpha=0.2, lw=0
        )
        label = legend(opt, runs)
        if floor is not None and np.nanmin(med) < floor:
            i = int(np.flatnonzero(med < floor)[0])
            label += f" (off the axis at step {x[i]:g}: {sig(np.nanmin(med))})"
            off.append((x[i], colors[opt]))
        ax.plot(x, la.transform(med), color=colors[opt], lw=1.8, label=label)
    la.apply(ax)
    if floor is not None:
        bottom = float(la.transform(np.array([floor]))[0]) * 1.3 - la.linthresh
        ax.set_ylim(bottom=bottom)
        for x0, c in off:
            ax.plot([x0], [bottom], "v", color=c, ms=9, mec="black", mew=0.6, clip_on=False)
    x_max = max((float(b.index.max()) for b in bands.values()), default=1.0)
    _step_axis(ax, task, xcol, x_max)
    ax.set_title(f"{problem}: median over seeds, band = interquartile range")
    ax.grid(True, color="0.9", lw=0.6)
    if bands:
        ax.legend(loc="best", frameon=False)
    else:
        _empty(ax, "no finite loss to show (every selected run diverged at its start)")
    return fig


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def _log_pad(lo: float, hi: float, frac: float) -> float:
    """A factor that pads a log axis by ``frac`` of its span (at least a fifth of a decade)."""
    span = max(math.log10(hi / lo) if lo > 0 and hi > lo else 0.0, 0.2)
    return 10 ** (frac * span)


def sensitivity(res: Any, problem: str, colors: dict[str, str]) -> Figure | None:
    """Final loss vs learning rate (log-log) per optimizer with two or more learning rates
    (None when none has); diverged points as crosses in a strip above the data, the selected
    learning rate ringed. Each learning rate shows its best setting of the other
    hyperparameters. The limits follow the data."""
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
        per = per.sort_values("s").groupby("lr").first().sort_index()
        if len(per) >= 2:  # a one-point grid has no sensitivity to show
            pts[opt] = per
    if not pts:
        return None
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
    if la.scale == "log":
        shown = shown[shown > 0]
    lo, hi = (float(shown.min()), float(shown.max())) if shown.size else (0.5, 2.0)
    if la.scale == "log":
        pad = _log_pad(lo, hi, 1.0)
        bottom, top = lo / pad**0.06, hi * pad**0.06
        line, row, ceiling = hi * pad**0.09, hi * pad**0.17, hi * pad**0.25
    else:
        span = max(hi - lo, la.linthresh, abs(hi) * 1e-3)
        bottom, top = lo - 0.06 * span, hi + 0.06 * span
        line, row, ceiling = hi + 0.09 * span, hi + 0.17 * span, hi + 0.25 * span
    any_diverged = False
    for i, (opt, b) in enumerate(pts.items()):
        lr, y = b.index.to_numpy(float), la.transform(b["s"].to_numpy(float))
        ok = np.isfinite(y)
        ax.plot(lr[ok], y[ok], "o-", color=colors[opt], lw=1.5, ms=5, label=opt)
        if (~ok).any():
            any_diverged = True
            # each optimizer nudged sideways so that coinciding crosses stay visible
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
        ax.set_ylim(bottom, ceiling)
    else:
        ax.set_ylim(bottom, top)
    lrs = np.concatenate([b.index.to_numpy(float) for b in pts.values()] or [np.ones(1)])
    ax.set_xlim(
        lrs.min() / _log_pad(lrs.min(), lrs.max(), 0.06),
        lrs.max() * _log_pad(lrs.min(), lrs.max(), 0.06),
    )
    ax.set_xlabel("learning rate" + (" (the peak of a schedule)" if _has_schedule(r) else ""))
    ax.set_title(f"{problem}: {col.replace('_', ' ')} vs learning rate (ring = selected)")
    ax.grid(True, color="0.9", lw=0.6)
    if pts:
        ax.legend(loc="best", frameon=False)
    return fig


def _has_schedule(runs: pd.DataFrame) -> bool:
    return "schedule" in runs and runs["schedule"].notna().any()


TASK_METRICS = (
    ("train_loss", "train loss", "log"),
    ("val_loss", "validation loss", "log"),
    ("test_loss", "test loss", "log"),
    ("test_accuracy", "accuracy (solid: test, dashed: validation)", "linear"),
)


def task_curves(res: Any, problem: str, colors: dict[str, str]) -> Figure | None:
    """Train / validation / test loss and accuracy of a task (median over seeds, band =
    interquartile range), against epochs for dataset tasks; the time-to-target goal as a
    dotted line."""
    runs = _inputs.selected(res, problem)
    ids = runs["run_id"].astype(str)
    c = res.curves[res.curves["run_id"].astype(str).isin(ids)]
    metrics = [m for m in TASK_METRICS if m[0] in c.columns and c[m[0]].notna().any()]
    if not metrics:
        return None
    xcol = _xcol(c)
    target = _inputs.problem_config(res, problem).get("target") or {}
    # no empty panel: one row for up to three metrics (adding has no accuracy)
    rows, cols = (1, len(metrics)) if len(metrics) <= 3 else (2, 2)
    fig = _figure(9.0 if cols == 2 else 4.3 * cols, 5.6 if rows == 2 else 3.4)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (m, title, scale) in zip(axes, metrics, strict=False):
        shown = [(m, "-")]
        if m == "test_accuracy" and "val_accuracy" in c and c["val_accuracy"].notna().any():
            shown.append(("val_accuracy", "--"))
        for opt in _inputs.optimizers(res):
            oid = runs.loc[runs["optimizer"].astype(str) == opt, "run_id"].astype(str).tolist()
            for name, ls in shown:
                cc = c[c["run_id"].astype(str).isin(oid)].dropna(subset=[name])
                if cc.empty:
                    continue
                b = cc.groupby(xcol)[name].quantile([0.25, 0.5, 0.75]).unstack()
                x = b.index.to_numpy(float)
                if ls == "-":
                    ax.fill_between(x, b[0.25], b[0.75], color=colors[opt], alpha=0.2, lw=0)
                label = opt if ls == "-" else None
                ax.plot(x, b[0.5], color=colors[opt], lw=1.6, ls=ls, label=label)
        goal = target.get("metric")
        if goal and goal in (m, "val_accuracy" if m == "test_accuracy" else m):
            ax.axhline(float(target["value"]), color="0.3", lw=0.9, ls=":")
            ax.annotate(
                "target",
                (0.01, float(target["value"])),
                xycoords=("axes fraction", "data"),
                ha="left",
                va="bottom",
                fontsize=8,
                color="0.3",
            )
        if scale == "log" and (c[m].dropna() > 0).all():
            set_scale(ax, "y", "log")
        ax.set_title(title)
        _step_axis(ax, True, xcol, float(c[xcol].max()))
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
    xcol = _xcol(c)
    fig = _figure()
    ax = fig.subplots()
    for opt in _inputs.optimizers(res):
        oid = runs.loc[runs["optimizer"].astype(str) == opt, "run_id"].astype(str).tolist()
        cc = c[c["run_id"].astype(str).isin(oid)].dropna(subset=["grad_norm_h0"])
        if not cc.empty:
            med = cc.groupby(xcol)["grad_norm_h0"].median()
            ax.plot(med.index, med.to_numpy(), color=colors[opt], lw=1.6, label=opt)
    set_scale(ax, "y", "log")
    _step_axis(ax, True, xcol, float(c[xcol].max()))
    ax.set_ylabel("‖∂L/∂h₀‖")
    ax.set_title(f"{problem}: gradient reaching the first hidden state")
    ax.grid(True, color="0.9", lw=0.6)
    ax.legend(loc="best", frameon=False)
    return fig


def profile(
    profiles: pd.DataFrame, scores: pd.DataFrame, colors: dict[str, str], max_ratio: float
) -> Figure:
    """The performance profile (Dolan and Moré 2002): per optimizer, the fraction of
    problems whose time-to-target is within a factor tau of the fastest optimizer's, for tau
    in [1, ``max_ratio``]; the legend gives each score B (the normalised area)."""
    from optbench.results import scoring

    ratios = profiles["ratio"].to_numpy(float)
    inside = ratios[np.isfinite(ratios) & (ratios <= max_ratio)]
    taus = np.unique(np.r_[np.linspace(1.0, max_ratio, 301), inside])
    rho = scoring.rho(profiles, taus)
    n = profiles["problem"].nunique()
    fig = _figure(8.4, 3.8)
    ax = fig.subplots()
    by_opt = scores.set_index("optimizer")
    order = sorted(rho.columns, key=lambda o: -float(by_opt.loc[o, "score"]))
    for i, opt in enumerate(order):
        b, solved = by_opt.loc[opt, "score"], by_opt.loc[opt, "solved"]
        label = f"{opt}: {b:.2f} (solved {round(solved * n)}/{n})"
        ax.plot(
            taus,
            rho[opt].to_numpy(),
            drawstyle="steps-post",
            color=colors.get(opt, "0.3"),
            lw=2.4 - 1.2 * i / max(len(order) - 1, 1),
            ls=_DASHES[i % 4],
            label=label,
        )
    ax.set_xlim(1.0, max_ratio)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ: time to target within a factor τ of the fastest optimizer's")
    ax.set_ylabel("fraction of problems")
    ax.set_title(f"Performance profile over {n} problems (higher is better)")
    ax.grid(True, color="0.9", lw=0.6)
    fig.legend(loc="outside right center", frameon=False, fontsize=8.5, title="score B")
    return fig
