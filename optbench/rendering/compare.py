"""The problems of one task side by side (the lecture's normalization and regularization):
train and validation loss of each problem's best runs, and their final values.

A data function per figure (plain numbers, what the tests check) and a drawing function
returning a matplotlib Figure (Agg, no display), or None when there is nothing to show.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from optbench.rendering import _inputs
from optbench.rendering._style import PALETTE, set_scale
from optbench.rendering.lecture import _figure, _first, best_optimizer
from optbench.results import schema

#: The problem parameters of normalization and regularization.
REGULARIZATION = ("batchnorm", "bn_alpha", "dropout", "dropout_mode", "l1", "l2", "augment")


def task_groups(res: Any) -> dict[str, list[str]]:
    """The tasks with two or more problems in the sweep, each with its problems (config
    order)."""
    runs = res.runs[_inputs.is_task(res.runs)]
    groups: dict[str, list[str]] = {}
    for problem in _inputs.problems(res):
        task = _first(runs[runs["problem"].astype(str) == problem], "task")
        if task is not None:
            groups.setdefault(str(task), []).append(problem)
    return {t: ps for t, ps in groups.items() if len(ps) >= 2}


def varied(res: Any, problems: list[str]) -> list[str]:
    """The problem parameters (``param_NAME`` without the prefix) that differ among the
    ``problems`` that have them: a parameter absent (NaN) from a problem does not apply to
    it (the registry drops a cell's biases from the cells without that gate), so it counts
    only where it is set."""
    runs = res.runs[res.runs["problem"].astype(str).isin(problems)]
    out = []
    for col in (c for c in runs.columns if c.startswith(schema.PARAM_PREFIX)):
        values = {_first(runs[runs["problem"].astype(str) == p], col) for p in problems}
        if len({str(v) for v in values if v is not None}) > 1:  # None: absent, NaN
            out.append(col[len(schema.PARAM_PREFIX) :])
    return out


def split_groups(res: Any) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """:func:`task_groups` split in two: those whose problems differ in a normalization or
    regularization parameter (:data:`REGULARIZATION`: the lecture's normalization and
    regularization), and the others (the architectures of the vanishing gradient: the
    adding problem's cells, plain and residual MLPs)."""
    reg: dict[str, list[str]] = {}
    other: dict[str, list[str]] = {}
    for task, problems in task_groups(res).items():
        side = reg if set(varied(res, problems)) & set(REGULARIZATION) else other
        side[task] = problems
    return reg, other


def _chosen(res: Any, problem: str) -> tuple[str | None, pd.DataFrame]:
    sel = _inputs.selected(res, problem)
    opt = best_optimizer(res, sel)
    return opt, sel[sel["optimizer"].astype(str) == str(opt)]


def comparison_table(res: Any, problems: list[str]) -> pd.DataFrame:
    """Per problem: its best optimizer (:func:`best_optimizer`), the selected learning rate,
    the number of seeds, and the medians over those runs of the final train loss, validation
    loss, their gap (validation - train) and the test accuracy."""
    rows = []
    for problem in problems:
        opt, runs = _chosen(res, problem)
        if runs.empty:
            continue
        train_col = "final_train_loss" if "final_train_loss" in runs else "final_loss"
        train = float(runs[train_col].astype(float).median())
        val = float(runs["val_loss"].astype(float).median()) if "val_loss" in runs else np.nan
        acc = runs["test_accuracy"].astype(float) if "test_accuracy" in runs else pd.Series([])
        rows.append(
            {
                "problem": problem,
                "optimizer": opt,
                "learning_rate": float(runs["learning_rate"].iloc[0]),
                "seeds": int(runs["seed"].nunique()),
                "train_loss": train,
                "val_loss": val,
                "gap": val - train,
                "test_accuracy": float(acc.median()) if acc.notna().any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def comparison_curves(res: Any, problem: str) -> tuple[str, pd.DataFrame]:
    """``(x column, frame)``: per epoch (or step), the medians of ``train_loss`` and
    ``val_loss`` over the selected runs of ``problem``'s best optimizer."""
    _, runs = _chosen(res, problem)
    c = res.curves[res.curves["run_id"].astype(str).isin(runs["run_id"].astype(str))]
    xcol = "epoch" if "epoch" in c and c["epoch"].notna().any() else "step"
    cols = [m for m in ("train_loss", "val_loss") if m in c and c[m].notna().any()]
    if not cols:
        return xcol, pd.DataFrame(columns=["train_loss", "val_loss"], dtype=float)
    med = c.dropna(subset=[xcol]).groupby(xcol)[cols].median()
    med.index = med.index.astype(float)
    return xcol, med.reindex(columns=["train_loss", "val_loss"])


def comparison(res: Any, task: str, problems: list[str]) -> Figure | None:
    """Train (solid) and validation (dashed) loss of each of ``problems`` (one task), one
    colour per problem (:func:`comparison_curves`); log y when every loss is positive."""
    curves = {p: comparison_curves(res, p) for p in problems}
    curves = {p: xc for p, xc in curves.items() if not xc[1].dropna(how="all").empty}
    if not curves:
        return None
    fig = _figure(8.6, 4.0)
    ax = fig.subplots()
    values = []
    for i, (problem, (_, med)) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        label: str | None = f"{problem} ({_chosen(res, problem)[0]})"
        x = med.index.to_numpy(float)
        for col, ls in (("train_loss", "-"), ("val_loss", "--")):
            y = med[col].to_numpy(float)
            ok = np.isfinite(y)
            if ok.any():
                ax.plot(x[ok], y[ok], color=colour, lw=1.8, ls=ls, label=label)
                values.append(y[ok])
                label = None
    vals = np.concatenate(values) if values else np.ones(1)
    if (vals > 0).all():
        set_scale(ax, "y", "log")
    xcols = {xc for xc, _ in curves.values()}
    ax.set_xlabel("epoch" if xcols == {"epoch"} else "step")
    ax.set_xlim(left=0)
    ax.set_ylabel("loss")
    ax.set_title(f"{task}: train (solid) vs validation (dashed) loss, best optimizer per problem")
    ax.grid(True, color="0.9", lw=0.6)
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside right center", frameon=False, title="problem (optimizer)"
    )
    style = [Line2D([], [], color="0.25", ls=ls, lw=1.8) for ls in ("-", "--")]
    ax.legend(style, ["train", "validation"], loc="lower left", frameon=False)
    return fig
