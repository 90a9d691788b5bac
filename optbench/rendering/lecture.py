"""The lecture's figures, drawn from the results only: the gradient flowing back through
time and depth, and the learning-rate schedules (the problems of one task side by side are
in :mod:`optbench.rendering.compare`; :mod:`optbench.rendering.chapters` puts them all on
the page).

Each figure has a data function (plain numbers, what the tests check) and a drawing
function returning a matplotlib Figure (Agg, no display), or None when the results hold
nothing to show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from optbench.rendering import _inputs
from optbench.rendering._style import PALETTE, RC, set_scale
from optbench.rendering.tables import sig
from optbench.results import schema

#: ``gradient_flow`` positions: timesteps of recurrent tasks, hidden layers of deep MLPs.
FLOWS = ("time", "depth")
#: Most points drawn per schedule line (longer budgets are sampled evenly).
MAX_POINTS = 4001


def _figure(w: float, h: float) -> Figure:
    import matplotlib as mpl

    with mpl.rc_context(RC):
        return Figure(figsize=(w, h), dpi=100, layout="constrained")


def _first(runs: pd.DataFrame, col: str) -> Any:
    """The first non-missing value of ``col`` (None when absent or all missing)."""
    if col not in runs:
        return None
    v = runs[col].dropna()
    v = v[v.astype(str).str.len() > 0]
    return v.iloc[0] if len(v) else None


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0", "yes")


def _score(runs: pd.DataFrame) -> pd.Series:
    """The selection's objective per run, +inf where diverged or not finite."""
    s = runs[_inputs.objective(runs)].astype(float)
    return s.where(~runs["diverged"].astype(bool) & np.isfinite(s), np.inf)


def best_optimizer(res: Any, runs: pd.DataFrame) -> str | None:
    """Of the selected ``runs`` (one problem), the optimizer whose runs have the lowest mean
    objective (validation loss for tasks); ties to the first in config order."""
    runs = runs[runs["selected"].astype(bool)]
    if runs.empty:
        return None
    means = runs.assign(_s=_score(runs)).groupby("optimizer")["_s"].mean()
    order = [o for o in _inputs.optimizers(res) if o in means.index]
    return min(order, key=lambda o: (means[o], order.index(o)))


# --------------------------------------------------------------------------- gradient flow


def flow_kind(runs: pd.DataFrame) -> str:
    """``"time"`` for a recurrent problem (a ``cell`` or ``length`` parameter), else
    ``"depth"`` (a deep MLP: positions are its hidden layers)."""
    if _first(runs, "param_cell") is not None or _first(runs, "param_length") is not None:
        return "time"
    if _first(runs, "param_depth") is not None:
        return "depth"
    task = str(_first(runs, "task") or "")
    return "time" if any(w in task for w in ("adding", "rnn", "lstm", "gru")) else "depth"


@dataclass
class FlowLine:
    """One line of a gradient-flow panel: ``y[i]`` is the median over ``runs`` runs of
    ``grad_norm(position) / grad_norm(last position)`` at ``x[i] = last - position``."""

    problem: str
    optimizer: str
    label: str
    step: int
    x: np.ndarray
    y: np.ndarray
    runs: int
    residual: bool | None = None


def _ratios(f: pd.DataFrame, when: str) -> pd.Series | None:
    """One run's rows at step 0 (``"init"``) or its last step (``"late"``), as
    ``x -> grad_norm / grad_norm at the last position`` (None when not measurable)."""
    step = 0 if when == "init" else int(f["step"].max())
    if when == "late" and step <= 0:
        return None
    g = f[f["step"] == step].groupby("position")["grad_norm"].first().astype(float)
    if g.empty:
        return None
    last = float(g.iloc[-1])
    if not (np.isfinite(last) and last > 0):
        return None
    pos = g.index.to_numpy(int)
    return pd.Series(g.to_numpy() / last, index=pos.max() - pos, name=step)


def flow_lines(res: Any, flow: str, when: str) -> list[FlowLine]:
    """The lines of a gradient-flow panel: per problem of kind ``flow`` (:data:`FLOWS`) with
    gradient-flow rows, its best optimizer's selected runs (:func:`best_optimizer`) at
    initialisation (``when="init"``, step 0) or at each run's last measured step
    (``"late"``), normalised to 1 at the last position, median over the runs."""
    frame = getattr(res, "gradient_flow", None)
    if frame is None or len(frame) == 0:
        return []
    frame = frame.assign(run_id=frame["run_id"].astype(str))
    measured = set(frame["run_id"])
    lines = []
    for problem in _inputs.problems(res):
        runs = _inputs.selected(res, problem)
        runs = runs[runs["run_id"].astype(str).isin(measured)]
        if runs.empty or flow_kind(runs) != flow:
            continue
        opt = best_optimizer(res, runs)
        ids = runs.loc[runs["optimizer"].astype(str) == opt, "run_id"].astype(str)
        per_run = [_ratios(f, when) for _, f in frame[frame["run_id"].isin(ids)].groupby("run_id")]
        per_run = [s for s in per_run if s is not None]
        if not per_run:
            continue
        wide = pd.concat(per_run, axis=1).sort_index()
        y = wide.where(wide > 0).median(axis=1, skipna=True)
        y = y[np.isfinite(y) & (y > 0)]
        steps = sorted({int(s.name) for s in per_run})
        residual = _first(runs, "param_residual")
        residual = None if residual is None else _flag(residual)
        cell = _first(runs, "param_cell")
        label = (
            f"{problem} ({_CELLS.get(str(cell), cell)}; {opt})" if cell else f"{problem} ({opt})"
        )
        if flow == "depth" and residual is not None:
            depth = _first(runs, "param_depth")
            kind = "residual" if residual else "plain"
            label = (
                f"{problem} ({kind}{f', depth {int(depth)}' if depth is not None else ''}; {opt})"
            )
        lines.append(
            FlowLine(
                problem,
                str(opt),
                label,
                steps[-1],
                y.index.to_numpy(float),
                y.to_numpy(),
                len(per_run),
                residual,
            )
        )
    return lines


#: How the legend names a recurrent cell.
_CELLS = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}
_FLOW_AXES = {
    "time": (
        "steps back from the last timestep, T − t",
        r"$\Vert\partial J/\partial h_t\Vert \;/\; \Vert\partial J/\partial h_T\Vert$",
    ),
    "depth": (
        "layers back from the last hidden layer, depth − l",
        r"$\Vert\partial J/\partial h_l\Vert \;/\; "
        r"\Vert\partial J/\partial h_{\mathrm{depth}}\Vert$",
    ),
}
_FLOW_TITLES = {
    "time": "Gradient flowing back through time",
    "depth": "Gradient flowing back through depth",
}


def _steps_text(lines: list[FlowLine]) -> str:
    steps = sorted({ln.step for ln in lines})
    return f"step {steps[0]:,}" if len(steps) == 1 else f"steps {steps[0]:,}–{steps[-1]:,}"


def gradient_flow(res: Any, flow: str = "time") -> Figure | None:
    """Gradient norm at each hidden state relative to the last one, against the distance
    back from it, log y: at initialisation and late in training (two panels, one line per
    problem of kind ``flow``: :func:`flow_lines`); None without such data."""
    panels = [(w, flow_lines(res, flow, w)) for w in ("init", "late")]
    panels = [(w, lines) for w, lines in panels if lines]
    if not panels:
        return None
    problems = list(dict.fromkeys(ln.problem for _, lines in panels for ln in lines))
    colour = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(problems)}
    fig = _figure(4.6 * len(panels) + 2.6, 3.9)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    xlabel, ylabel = _FLOW_AXES[flow]
    handles: dict[str, Any] = {}
    for ax, (when, lines) in zip(axes, panels, strict=True):
        ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
        for ln in lines:
            dashed = ln.residual is False
            many = len(ln.x) > 25
            (h,) = ax.plot(
                ln.x,
                ln.y,
                color=colour[ln.problem],
                lw=1.8,
                ls="--" if dashed else "-",
                marker=None if many else "o",
                ms=3.5,
                label=ln.label,
            )
            handles.setdefault(ln.label, h)
        set_scale(ax, "y", "log")
        ax.set_xlim(left=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        title = "at initialisation (step 0)" if when == "init" else "late in training"
        ax.set_title(title if when == "init" else f"{title} ({_steps_text(lines)})")
        ax.grid(True, color="0.9", lw=0.6)
    axes[0].set_ylabel(ylabel)
    fig.suptitle(f"{_FLOW_TITLES[flow]}: median over the seeds of each problem's selected runs")
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside right center",
        frameon=False,
        title="problem (cell; optimizer)" if flow == "time" else "problem (blocks; optimizer)",
    )
    return fig


# --------------------------------------------------------------------------- schedules


@dataclass
class ScheduleLine:
    """One optimizer's learning rate ``lr[i]`` at update ``steps[i]`` (from 0) of its
    selected runs on ``problem`` (``total_steps`` updates): peak rate x multiplier."""

    optimizer: str
    problem: str
    text: str
    peak: float
    total_steps: int
    steps: np.ndarray
    lr: np.ndarray


def schedule_spec(res: Any, optimizer: str) -> dict | None:
    """The ``schedule`` table of ``optimizer``: the resolved config's, else the runs'
    ``schedule_spec`` column; None when it has none."""
    table = ((res.config or {}).get("optimizer") or {}).get(optimizer) or {}
    if isinstance(table.get("schedule"), dict):
        return dict(table["schedule"])
    mine = res.runs[res.runs["optimizer"].astype(str) == optimizer]
    spec = _first(mine, schema.SCHEDULE_SPEC)
    if spec is not None:
        try:
            return dict(json.loads(str(spec)))
        except (ValueError, TypeError):
            return None
    kind = _first(mine, schema.SCHEDULE)
    return {"kind": str(kind)} if kind is not None else None


def total_steps(res: Any, problem: str, optimizer: str) -> int | None:
    """Optimizer steps per run of (``problem``, ``optimizer``): meta.json's group, else the
    problem's (or the top-level) ``steps``, else the longest ``stop_step`` of its runs."""
    for g in (res.meta or {}).get("groups") or []:
        if str(g.get("problem")) == problem and str(g.get("optimizer")) == optimizer:
            if isinstance(g.get("steps"), int | np.integer) and g["steps"] > 0:
                return int(g["steps"])
    spec = _inputs.problem_config(res, problem)
    steps = spec.get("steps", (res.config or {}).get("steps") if "epochs" not in spec else None)
    if isinstance(steps, int) and steps > 0:
        return steps
    r = res.runs
    stop = r.loc[(r["problem"].astype(str) == problem) & (r["optimizer"] == optimizer)]
    stop = pd.to_numeric(stop.get("stop_step", pd.Series(dtype=float)), errors="coerce").max()
    return int(stop) if pd.notna(stop) and stop > 0 else None


def schedule_lines(res: Any) -> list[ScheduleLine]:
    """Per scheduled optimizer (config order): its learning rate against the update count,
    on its first problem (config order) with selected runs, at the selected learning rate,
    with the multiplier of :func:`optbench.schedules.from_config` fitted to that problem's
    budget."""
    specs = {o: schedule_spec(res, o) for o in _inputs.optimizers(res)}
    specs = {o: spec for o, spec in specs.items() if spec is not None}
    if not specs:
        return []
    from optbench import schedules  # JAX: only when there is a schedule to evaluate

    lines = []
    for opt, spec in specs.items():
        for problem in _inputs.problems(res):
            sel = _inputs.selected(res, problem)
            sel = sel[sel["optimizer"].astype(str) == opt]
            total = total_steps(res, problem, opt) if len(sel) else None
            if total is None or "learning_rate" not in sel:
                continue
            try:
                multiplier = schedules.from_config(spec, total_steps=total)
            except ValueError:
                continue
            steps = np.arange(total + 1)
            if len(steps) > MAX_POINTS:
                steps = np.unique(np.linspace(0, total, MAX_POINTS).astype(np.int64))
            peak = float(sel["learning_rate"].iloc[0])
            lr = peak * np.asarray(multiplier(steps), dtype=float)
            text = _inputs.schedule_text(sel) or str(spec.get("kind", "constant"))
            lines.append(ScheduleLine(opt, problem, text, peak, total, steps, lr))
            break
    return lines


def lr_schedules(
    res: Any, colors: dict[str, str], lines: list[ScheduleLine] | None = None
) -> Figure | None:
    """The learning rate of every scheduled optimizer against the update count, one line
    each (``lines``, default :func:`schedule_lines`), as steps (the rate is constant during
    an update), linear y; one panel per optimizer, stacked, when the peaks differ more than
    tenfold. None when no optimizer has a schedule."""
    lines = schedule_lines(res) if lines is None else lines
    if not lines:
        return None
    peaks = [ln.peak for ln in lines if ln.peak > 0]
    apart = len(lines) > 1 and bool(peaks) and max(peaks) > 10 * min(peaks)
    fig = _figure(8.6, 1.9 * len(lines) + 0.8 if apart else 3.6)
    axes = fig.subplots(len(lines) if apart else 1, 1, sharex=True, squeeze=False)[:, 0]
    for i, ln in enumerate(lines):
        ax = axes[i if apart else 0]
        ax.plot(
            ln.steps,
            ln.lr,
            color=colors.get(ln.optimizer, "0.3"),
            lw=1.9,
            drawstyle="steps-post",
            label=f"{ln.optimizer}: {ln.text}\n(peak lr {sig(ln.peak)}, on {ln.problem})",
        )
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.set_xlim(0, max(ln.total_steps for ln in lines))
        ax.set_ylabel("learning rate")
        ax.grid(True, color="0.9", lw=0.6)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    axes[-1].set_xlabel("optimizer step t (updates done)")
    axes[0].set_title("Learning-rate schedules of the selected runs")
    fig.legend(loc="outside right center", frameon=False, title="optimizer: schedule")
    return fig
