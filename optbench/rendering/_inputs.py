"""Reading a results folder the way the renderers need it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench._errors import ConfigError
from optbench.rendering._style import file_stems, ordered
from optbench.results import schema


def load(path: str | Path) -> Any:
    """``optbench.results.load(path)``, with a clear error for a folder that is not one."""
    from optbench import results

    p = Path(path)
    if not (p / schema.RUNS).is_file():
        raise ConfigError(
            f"{p} is not a results folder (no {schema.RUNS}); pass the folder that "
            "`optbench run` wrote, e.g. results/quickstart",
            file=str(p),
        )
    return results.load(p)


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series([np.nan] * len(df), index=df.index)


def is_task(runs: pd.DataFrame) -> pd.Series:
    """Rows of task problems (a non-empty ``task`` column)."""
    t = _column(runs, "task")
    return t.notna() & (t.astype(str).str.len() > 0) & (t.astype(str) != "nan")


def problems(res: Any) -> list[str]:
    """Problem labels in config order (falling back to their order in runs.csv)."""
    seen = ordered(res.runs["problem"].astype(str))
    conf = [str(p.get("label", p.get("surface", p.get("task", "")))) for p in _problems(res)]
    return [p for p in conf if p in seen] + [p for p in seen if p not in conf]


def optimizers(res: Any) -> list[str]:
    """Optimizer labels in config order (this order fixes their colours everywhere)."""
    seen = ordered(res.runs["optimizer"].astype(str))
    conf = [str(k) for k in (res.config or {}).get("optimizer", {})]
    return [o for o in conf if o in seen] + [o for o in seen if o not in conf]


def _problems(res: Any) -> list[dict]:
    probs = (res.config or {}).get("problem", [])
    return list(probs) if isinstance(probs, list) else []


def problem_config(res: Any, label: str) -> dict:
    """The resolved config table of one problem ({} when absent)."""
    for p in _problems(res):
        if str(p.get("label", p.get("surface", p.get("task", "")))) == label:
            return dict(p)
    return {}


def two_d_surfaces(res: Any) -> list[str]:
    """Labels of the problems that have trajectories to animate (2-D surfaces)."""
    traj = res.trajectories
    if traj is None or len(traj) == 0:
        return []
    with_traj = set(traj["run_id"].astype(str))
    runs = res.runs[~is_task(res.runs)]
    out = []
    for label in problems(res):
        ids = runs.loc[runs["problem"].astype(str) == label, "run_id"].astype(str)
        if len(ids) and with_traj.intersection(ids):
            out.append(label)
    return out


def selected(res: Any, problem: str) -> pd.DataFrame:
    """The selected runs of a problem (all seeds and starts of each optimizer's best point)."""
    r = res.runs
    mask = (r["problem"].astype(str) == problem) & r["selected"].astype(bool)
    return r[mask]


def objective(runs: pd.DataFrame) -> str:
    """The column the selection minimised: ``val_loss`` for tasks, ``final_loss`` otherwise."""
    if is_task(runs).any() and "val_loss" in runs.columns and runs["val_loss"].notna().any():
        return "val_loss"
    return "final_loss"


def hyperparameters(runs: pd.DataFrame) -> list[str]:
    """Hyperparameter columns present in runs.csv (learning_rate first)."""
    return schema.hyperparameter_columns(runs)


def stem(res: Any, label: str) -> str:
    """The file name stem of problem ``label``'s GIF, stills and figures (distinct and safe
    for every label of the folder: :func:`~optbench.rendering._style.file_stems`)."""
    return file_stems(problems(res))[label]


def seeds(res: Any) -> tuple[list[int], list[int]]:
    """``(selecting, reported)``: the seeds that selected each grid point (the config's
    ``selection_seeds``) and those the summary reports: the others, or all of them when
    every seed selected."""
    found = sorted(int(s) for s in pd.unique(res.runs["seed"])) if len(res.runs) else []
    cfg = res.config or {}
    listed = (
        [int(s) for s in cfg.get("seeds", found)] if isinstance(cfg.get("seeds"), list) else found
    )
    chosen = cfg.get("selection_seeds")
    if chosen is None:
        return listed, listed
    selecting = listed[: int(chosen)] if isinstance(chosen, int) else [int(s) for s in chosen]
    held_out = [s for s in listed if s not in selecting]
    return selecting, held_out or listed


def schedule_text(runs: pd.DataFrame) -> str:
    """The schedule of an optimizer's runs in words: ``"cosine, warmup 100"`` ("" if none)."""
    spec = _column(runs, schema.SCHEDULE_SPEC).dropna()
    if spec.empty:
        kind = _column(runs, schema.SCHEDULE).dropna()
        return str(kind.iloc[0]) if len(kind) else ""
    try:
        table = json.loads(str(spec.iloc[0]))
    except ValueError:
        return str(spec.iloc[0])
    kind = str(table.pop("kind", "constant"))
    rest = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in table.items())
    return f"{kind}, {rest}" if rest else kind


def surface_kind(res: Any, label: str) -> tuple[bool, bool]:
    """``(has a known minimum, bounded below)`` of surface problem ``label``; read from the
    data when the surface cannot be rebuilt (a minimum is known if some run reached the
    tolerance; the surface is unbounded below if some run escaped)."""
    try:
        s = res.surface(label)
        return s.min_value is not None, bool(s.bounded_below)
    except Exception:
        r = res.runs[res.runs["problem"].astype(str) == label]
        reached = bool(_column(r, "steps_to_tol").notna().any())
        return reached, not bool(_column(r, "escaped").astype(bool).any())
