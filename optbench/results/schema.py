"""The results schema: the columns of every file, their dtypes, and the keys of meta.json.

This module is the one owner of the layout of a results folder. Writers (the engine, the
problems) build frames with these names; readers (``load``, resume, rendering) put every
frame through :func:`normalize`, so a column has the same dtype however the frame was made:
integers stay integers (nullable ``Int64`` where a column is empty for some rows, so a
resumed ``runs.csv`` writes ``1634``, never ``1634.0``) and flags stay booleans.

Example:
    >>> import pandas as pd
    >>> normalize(pd.DataFrame({"steps_to_tol": [1634.0, None], "diverged": [0, 1]}))
    ... # doctest: +NORMALIZE_WHITESPACE
       steps_to_tol  diverged
    0          1634     False
    1          <NA>      True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------- files

RUNS, CURVES, TRAJECTORIES = "runs.csv", "curves.csv", "trajectories.csv"
GRADIENT_FLOW = "gradient_flow.csv"
CONFIG, META = "config.toml", "meta.json"
PROFILES, SCORES = "profiles.csv", "scores.csv"
FILES = (RUNS, CURVES, TRAJECTORIES, GRADIENT_FLOW, CONFIG, META, PROFILES, SCORES)
"""The files every results folder holds (rendering adds GIFs, figures and the report)."""

# --------------------------------------------------------------------------- runs.csv

#: Identifying columns, in order. After ``problem`` comes the kind column (``surface`` or
#: ``task``) and one ``param_NAME`` per problem parameter; after ``algorithm`` one column per
#: hyperparameter; after ``start`` the start coordinates ``start_NAME``.
RUN_ID = ("run_id", "problem")
RUN_OPTIMIZER = ("optimizer", "algorithm")
RUN_INDEX = ("grid_index", "seed", "start")
#: The outcome of every run, in order.
OUTCOME = ("final_loss", "best_loss", "steps_to_tol", "diverged", "escaped", "stop_step")
#: Training tasks' final metrics, after the outcome (``val_accuracy``: NaN for regression).
TASK_METRICS = ("final_train_loss", "val_loss", "test_loss", "test_accuracy", "val_accuracy")
SELECTED = "selected"
KINDS = ("surface", "task")
PARAM_PREFIX, START_PREFIX = "param_", "start_"
#: The schedule of a scheduled optimizer: ``schedule`` (its kind) and ``schedule_spec``
#: (its whole table as JSON, see :func:`schedule_spec`).
SCHEDULE, SCHEDULE_SPEC = "schedule", "schedule_spec"


def hyperparameter_columns(runs: pd.DataFrame) -> list[str]:
    """The hyperparameter columns of a runs frame (numeric, ``learning_rate`` first): every
    column that is not an identifying, index, start, parameter, outcome or switch column."""
    fixed = {*RUN_ID, *KINDS, *RUN_OPTIMIZER, *RUN_INDEX, *OUTCOME, *TASK_METRICS, SELECTED}
    cols = [
        c
        for c in runs.columns
        if c not in fixed
        and not c.startswith((PARAM_PREFIX, START_PREFIX, SCHEDULE))
        and pd.api.types.is_numeric_dtype(runs[c])
        and not pd.api.types.is_bool_dtype(runs[c])  # switches (sqrt, centered, ...)
    ]
    return sorted(cols, key=lambda c: c != "learning_rate")


def schedule_spec(spec: Mapping[str, Any]) -> str:
    """A schedule table as the ``schedule_spec`` column holds it: compact, sorted JSON.

    Example:
        >>> schedule_spec({"warmup": 100, "kind": "cosine"})
        '{"kind":"cosine","warmup":100}'
    """
    return json.dumps(dict(spec), sort_keys=True, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------- curves.csv

CURVE_INDEX = ("run_id", "step", "epoch")
SURFACE_CURVES = ("loss",)
TASK_CURVES = (
    "train_loss",
    "val_loss",
    "test_loss",
    "test_accuracy",
    "val_accuracy",
    "grad_norm_h0",
)
TRAJECTORY_COLUMNS = ("run_id", "step", "x", "y")
#: ``gradient_flow.csv``: for recurrent tasks and deep MLPs, at a few optimizer steps (0: at
#: initialisation), the root mean square over a fixed batch of the per-example gradient
#: norm ``||dJ_i/dh||`` at each ``position`` (the timestep t = 1..T of the hidden state
#: h_t, or the hidden layer l = 1..depth whose output is h).
GRADIENT_FLOW_COLUMNS = ("run_id", "step", "position", "grad_norm")

# --------------------------------------------------------------------------- dtypes

INTEGER = ("grid_index", "seed", "start", "stop_step", "step", "epoch", "position")
"""Integer columns: int64, or nullable ``Int64`` where some rows have no value (``epoch``
of a sweep that mixes dataset and step tasks)."""
NULLABLE_INTEGER = ("steps_to_tol",)
"""Integer columns that are always nullable ``Int64`` (empty where never reached)."""
BOOLEAN = ("diverged", "escaped", "selected")
LABELS = ("problem", "optimizer")
"""Label columns: never missing, so an empty label (read back from CSV as NaN) is ``""``."""


def normalize(frame: pd.DataFrame, integers: tuple[str, ...] = ()) -> pd.DataFrame:
    """The schema's dtypes for the columns ``frame`` has (a new frame; others unchanged).

    ``integers``: more integer columns (such as :func:`integer_params` of the config), kept
    integers, nullable where some rows have none.
    """
    out = frame.copy()
    for col in LABELS:
        if col in out and out[col].isna().any():
            out[col] = out[col].fillna("")
    for col in BOOLEAN:
        if col in out and out[col].dtype != bool:
            out[col] = out[col].astype("boolean").fillna(False).astype(bool)
    for col in (*INTEGER, *NULLABLE_INTEGER, *integers):
        if col not in out or out[col].dtype == np.int64:
            continue
        if col in integers and not pd.api.types.is_numeric_dtype(out[col]):
            continue
        if col in NULLABLE_INTEGER or out[col].isna().any():
            out[col] = pd.array(out[col].to_numpy(dtype=object), dtype="Int64")
        else:
            out[col] = out[col].astype(np.int64)
    return out


def integer_params(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``param_NAME`` columns whose values are integers in every problem of ``config``
    (the resolved config keeps TOML's integers apart from its floats): they stay integers
    in ``runs.csv`` when a problem without that parameter leaves them empty.

    Example:
        >>> integer_params({"problem": [{"params": {"length": 50, "lr": 1.0}}, {}]})
        ('param_length',)
    """
    kinds: dict[str, bool] = {}
    for p in config.get("problem", []) or []:
        for name, value in (p.get("params") or {}).items():
            whole = isinstance(value, int | np.integer) and not isinstance(value, bool)
            kinds[name] = kinds.get(name, True) and whole
    return tuple(PARAM_PREFIX + name for name, whole in kinds.items() if whole)


def empty_trajectories() -> pd.DataFrame:
    """``trajectories.csv`` of a sweep without 2-D surfaces: the header only."""
    return pd.DataFrame(columns=list(TRAJECTORY_COLUMNS))


def empty_gradient_flow() -> pd.DataFrame:
    """``gradient_flow.csv`` of a sweep without recurrent or deep models: the header only."""
    return pd.DataFrame(
        {
            "run_id": pd.Series(dtype=object),
            "step": pd.Series(dtype=np.int64),
            "position": pd.Series(dtype=np.int64),
            "grad_norm": pd.Series(dtype=np.float64),
        }
    )


# --------------------------------------------------------------------------- meta.json

VERSION_KEYS = ("optbench", "jax", "jaxlib", "numpy", "pandas", "python")
"""Package versions, flat keys of meta.json."""
MACHINE_KEYS = ("platform", "machine", "processor", "cpu_count", "device_kind")
RUN_KEYS = ("name", "config_hash", "date", "complete", "wall_s", "groups")
GROUP_KEYS = ("problem", "optimizer", "runs", "steps", "compile_s", "run_s", "program")
"""The keys of each entry of ``meta["groups"]``: ``compile_s`` is 0 where the group's
program was reused (compiled by an earlier group of this process, or the first group of its
surface: a surface's optimizers run as one program, whose run time is shared out by number
of runs); groups with the same ``program`` ran the same compiled program."""


def versions(meta: Mapping[str, Any]) -> dict[str, str]:
    """The package versions recorded in ``meta`` (flat keys; an older nested
    ``versions`` table is read too)."""
    nested = meta.get("versions") if isinstance(meta.get("versions"), Mapping) else {}
    found = {k: meta.get(k, nested.get(k)) for k in VERSION_KEYS}
    return {k: str(v) for k, v in found.items() if v not in (None, "")}


# --------------------------------------------------------------------------- identity


def identity(**parts: Any) -> str:
    """A group's identity: a hash of everything that decides its numbers (``parts``: the
    problem's identity, file contents included; the optimizer's table; the sweep settings)
    and of the optbench and jax versions. ``resume`` reuses a finished group only when its
    identity is unchanged."""
    import jax

    from optbench._version import __version__

    ident = {**parts, "versions": [__version__, jax.__version__]}
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
