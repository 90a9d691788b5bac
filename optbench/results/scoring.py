"""Scoring: time-to-target per run, performance profiles and one score per optimizer.

The definitions (``DESIGN.md``, "Scoring"):

- *Target* of a problem: for a surface bounded below, the loss within ``tolerance`` of the
  known minimum (the run's ``steps_to_tol``); for a surface unbounded below, escaping (its
  ``stop_step`` when ``escaped``); for a task, its ``target = { metric, value }`` on a
  validation metric, met at the first curve point where ``val_loss <= value`` (or
  ``val_accuracy >= value``). A run that never meets it, or diverges first, takes forever.
- *Time* = the step at which the target is first met, plus one (the number of loss
  evaluations: a start already on target counts 1).
- Per (problem, optimizer): for each seed (each (seed, start) pair), the best time over the
  grid points; then numpy's median over the seeds, infinities included.
- *Ratio* r = t / (the smallest t of any optimizer on that problem); infinite when t is.
- *Profile* rho(tau) = the fraction of problems with r <= tau, tau in [1, r_max].
- *Score* B = (1/n) sum over problems of max(0, r_max - r) / (r_max - 1): the area under
  the profile over [1, r_max], normalised to [0, 1].

A task without a ``target`` has no time-to-target: it is left out of the profile (and the
report says so). ``profiles.csv`` and ``scores.csv`` are recomputed from a results folder's
``runs.csv``, ``curves.csv`` and ``config.toml`` alone.

Example:
    >>> import numpy as np, pandas as pd
    >>> prof = pd.DataFrame({"problem": ["a", "a", "b", "b"], "optimizer": ["x", "y"] * 2,
    ...                      "time_to_target": [10.0, 20.0, np.inf, 5.0]})
    >>> scores(with_ratios(prof), max_ratio=4.0)
      optimizer     score  solved
    0         x  0.500000     0.5
    1         y  0.833333     1.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from optbench._errors import ConfigError

DEFAULT_MAX_RATIO = 4.0
"""r_max of the profile when the config does not set ``max_ratio`` (AlgoPerf's value)."""

#: The metrics a task's target may name, and whether lower (``min``) or higher is better.
TARGET_METRICS = {"val_loss": "min", "val_accuracy": "max"}

PROFILE_COLUMNS = ("problem", "optimizer", "time_to_target", "ratio", "selected_time")
"""``profiles.csv``: per (problem, optimizer) the time-to-target (AlgoPerf's rule), its
ratio to the best optimizer's, and the time of the ``selected`` grid point (median over
the seeds, for comparison: the rule credits larger grids). Empty where infinite."""
SCORE_COLUMNS = ("optimizer", "score", "solved")
"""``scores.csv``: the score B in [0, 1] and the fraction of problems with a finite ratio."""


def _ordered(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def targets(config: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Problem label -> its target: ``{"kind": "surface"}`` (tolerance or escape) or a
    task's ``{"kind": "task", "metric": ..., "value": ...}``; None for a task without one."""
    out: dict[str, dict[str, Any] | None] = {}
    for p in config.get("problem", []) or []:
        label = str(p.get("label", p.get("surface", p.get("task", ""))))
        if "task" in p:
            t = p.get("target")
            out[label] = {"kind": "task", **t} if isinstance(t, Mapping) else None
        else:
            out[label] = {"kind": "surface"}
    return out


def run_times(runs: pd.DataFrame, curves: pd.DataFrame, config: Mapping[str, Any]) -> pd.Series:
    """Per run (aligned with ``runs``): the time to its problem's target, ``inf`` if never;
    NaN for runs of a problem without a target."""
    goal = targets(config)
    out = pd.Series(np.nan, index=runs.index, dtype=float)
    if runs.empty:
        return out
    problem = runs["problem"].astype(str)
    is_task = runs["task"].notna() if "task" in runs else pd.Series(False, index=runs.index)
    for label in problem.unique():
        rows = problem == label
        target = goal.get(label, {"kind": "task"} if is_task[rows].any() else {"kind": "surface"})
        if target is None or (target["kind"] == "task" and "metric" not in target):
            continue
        if target["kind"] == "surface":
            out[rows] = _surface_times(runs[rows])
        else:
            out[rows] = _task_times(runs[rows], curves, target["metric"], target["value"])
    return out


def _surface_times(runs: pd.DataFrame) -> np.ndarray:
    hit = pd.to_numeric(runs["steps_to_tol"], errors="coerce").to_numpy(float)
    stop = runs["stop_step"].to_numpy(float)
    diverged = runs["diverged"].to_numpy(bool)
    escaped = runs["escaped"].to_numpy(bool)
    reached = np.isfinite(hit) & (~diverged | (hit < stop))  # reached before diverging
    return np.where(reached, hit + 1, np.where(escaped, stop + 1, np.inf))


def _task_times(runs: pd.DataFrame, curves: pd.DataFrame, metric: str, value: float) -> np.ndarray:
    if metric not in TARGET_METRICS:
        raise ConfigError(
            f"unknown target metric {metric!r}; use one of {sorted(TARGET_METRICS)}",
            key="target.metric",
        )
    if curves.empty or metric not in curves:
        return np.full(len(runs), np.inf)
    c = curves[curves["run_id"].isin(runs["run_id"])]
    m = c[metric].astype(float)
    met = m <= value if TARGET_METRICS[metric] == "min" else m >= value
    first = c[met.to_numpy()].groupby("run_id")["step"].min()
    return runs["run_id"].map(first).astype(float).add(1).fillna(np.inf).to_numpy()


def times(runs: pd.DataFrame, curves: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """Per (problem, optimizer) of the problems with a target: ``time_to_target`` (best grid
    point per seed, median over seeds) and ``selected_time`` (the ``selected`` grid point's
    time, median over seeds); problems and optimizers in their order in ``runs``."""
    t = run_times(runs, curves, config)
    frame = runs.assign(_t=t)
    frame = frame[t.notna().to_numpy()]
    problems = _ordered(frame["problem"])
    optimizers = _ordered(runs["optimizer"]) if not runs.empty else []
    # a problem that lists its optimizers (``optimizers = [...]``) is scored for those only
    listed = {
        q.get("label"): q["optimizers"] for q in config.get("problem", []) if "optimizers" in q
    }
    rows = []
    for p in problems:
        pr = frame[frame["problem"].astype(str) == p]
        for o in (o for o in optimizers if o in listed.get(p, (o,))):
            g = pr[pr["optimizer"].astype(str) == o]
            if g.empty:  # not run on this problem: it never got there
                rows.append({"problem": p, "optimizer": o, "time_to_target": np.inf})
                rows[-1].update(selected_time=np.inf)
                continue
            best = g.groupby(["seed", "start"])["_t"].min().to_numpy(float)
            sel = g[g["selected"].astype(bool)]["_t"].to_numpy(float)
            rows.append(
                {
                    "problem": p,
                    "optimizer": o,
                    "time_to_target": float(np.median(best)),
                    "selected_time": float(np.median(sel)) if sel.size else np.inf,
                }
            )
    return pd.DataFrame(rows, columns=["problem", "optimizer", "time_to_target", "selected_time"])


def with_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (``problem, optimizer, time_to_target``) with ``ratio``: the time over the
    smallest time on that problem; infinite when the time is (and for every optimizer on a
    problem none solves)."""
    t = frame["time_to_target"].astype(float)
    best = t.groupby(frame["problem"]).transform("min")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(t) & np.isfinite(best), t / best, np.inf)
    out = frame.copy()
    out.insert(out.columns.get_loc("time_to_target") + 1, "ratio", ratio)
    return out


def profiles(runs: pd.DataFrame, curves: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of ``profiles.csv`` (:data:`PROFILE_COLUMNS`), infinities as ``inf``."""
    frame = with_ratios(times(runs, curves, config))
    return frame[list(PROFILE_COLUMNS)]


def scores(profile: pd.DataFrame, max_ratio: float = DEFAULT_MAX_RATIO) -> pd.DataFrame:
    """The rows of ``scores.csv``: per optimizer, ``score`` = (1/n) sum over the n problems
    of max(0, r_max - r) / (r_max - 1) and ``solved`` = the fraction with a finite r (the n
    problems it runs on: a problem that lists its optimizers counts for those only)."""
    rows = []
    for opt in _ordered(profile["optimizer"]):
        r = profile.loc[profile["optimizer"].astype(str) == opt, "ratio"].to_numpy(float)
        credit = np.where(np.isfinite(r), np.maximum(0.0, max_ratio - r), 0.0)
        rows.append(
            {
                "optimizer": opt,
                "score": float(np.mean(credit / (max_ratio - 1.0))),
                "solved": float(np.mean(np.isfinite(r))),
            }
        )
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def rho(profile: pd.DataFrame, taus: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """The performance profile: one column per optimizer, rho_o(tau) = the fraction of
    problems with r <= tau, one row per tau (the index)."""
    taus = np.asarray(taus, dtype=float)
    out = {}
    for opt in _ordered(profile["optimizer"]):
        r = profile.loc[profile["optimizer"].astype(str) == opt, "ratio"].to_numpy(float)
        out[opt] = (r[None, :] <= taus[:, None]).mean(axis=1) if r.size else np.zeros(len(taus))
    return pd.DataFrame(out, index=pd.Index(taus, name="tau"))


def max_ratio(config: Mapping[str, Any]) -> float:
    """The config's ``max_ratio`` (r_max), or :data:`DEFAULT_MAX_RATIO`."""
    return float(config.get("max_ratio", DEFAULT_MAX_RATIO) or DEFAULT_MAX_RATIO)


def compute(
    runs: pd.DataFrame, curves: pd.DataFrame, config: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(profiles, scores)`` of a sweep, as :func:`profiles` and :func:`scores`."""
    prof = profiles(runs, curves, config)
    return prof, scores(prof, max_ratio(config))


def for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as the CSV files hold it: infinite values empty."""
    return frame.replace([np.inf, -np.inf], np.nan)


def from_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """``profiles.csv`` read back: empty times and ratios are infinite again."""
    out = frame.copy()
    for col in ("time_to_target", "ratio", "selected_time"):
        if col in out:
            out[col] = out[col].astype(float).fillna(np.inf)
    return out
