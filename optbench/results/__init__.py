"""Results: tidy DataFrames, the folder they live in, and the selection rule.

A results folder holds ``runs.csv`` (one row per run), ``curves.csv`` (loss and metrics
against the step), ``trajectories.csv`` (the 2-D paths, for animations), ``config.toml``
(the resolved config), ``meta.json`` (versions, machine, config hash, timings) and
``profiles.csv``/``scores.csv`` (time-to-target, performance profiles, scores: recomputed
from the others by :mod:`.scoring`). The columns, dtypes and meta keys are defined once, in
:mod:`.schema`; files are written atomically by :mod:`.files`; tidy curves are built by
:mod:`.records`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from optbench.results import checks, schema, scoring
from optbench.results.files import (
    atomic_path,
    concat,
    drop_parts,
    load_part,
    save_part,
    toml_safe,
    write_bytes,
    write_csv,
    write_text,
)
from optbench.results.folder import prepare_folder
from optbench.results.schema import FILES

__all__ = [
    "FILES",
    "Results",
    "atomic_path",
    "concat",
    "drop_parts",
    "load",
    "load_part",
    "prepare_folder",
    "save_part",
    "schema",
    "scoring",
    "select",
    "write_bytes",
    "write_csv",
    "write_scoring",
    "write_text",
]


@dataclass
class Results:
    """The tidy outcome of a sweep.

    Attributes:
        runs: one row per run (see the README for the columns).
        curves: ``run_id, step[, epoch]`` and one column per metric.
        trajectories: ``run_id, step, x, y`` for 2-D surfaces.
        gradient_flow: ``run_id, step, position, grad_norm`` for recurrent tasks and deep
            MLPs (:data:`.schema.GRADIENT_FLOW_COLUMNS`); empty otherwise.
        meta: versions, machine, config hash, date and per-group timings.
        config: the resolved config as plain data.
        path: the folder the results were loaded from or saved to, if any.
    """

    runs: pd.DataFrame
    curves: pd.DataFrame
    trajectories: pd.DataFrame
    meta: dict[str, Any]
    config: dict[str, Any]
    path: Path | None = field(default=None, compare=False)
    gradient_flow: pd.DataFrame = field(default_factory=schema.empty_gradient_flow)

    def __post_init__(self) -> None:
        # integer problem parameters stay integers where another problem lacks them
        ints = schema.integer_params(self.config or {})
        if ints and any(c in self.runs and self.runs[c].dtype != np.int64 for c in ints):
            self.runs = schema.normalize(self.runs, ints)

    def save(self, out: str | Path) -> Path:
        """Write the files of :data:`FILES` into ``out`` (created if needed), each
        atomically; ``profiles.csv`` and ``scores.csv`` are computed here."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        write_csv(folder / schema.RUNS, self.runs)
        write_csv(folder / schema.CURVES, self.curves)
        write_csv(folder / schema.TRAJECTORIES, self.trajectories)
        write_csv(folder / schema.GRADIENT_FLOW, self.gradient_flow)
        write_text(folder / schema.CONFIG, tomli_w.dumps(toml_safe(self.config)))
        write_text(folder / schema.META, json.dumps(self.meta, indent=2, default=str) + "\n")
        write_scoring(folder, self)
        self.path = folder
        return folder

    def scoring(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(profiles, scores)`` of these results (:func:`.scoring.compute`)."""
        return scoring.compute(self.runs, self.curves, self.config or {})

    def problem(self, label: str) -> dict[str, Any]:
        """The resolved config entry of the problem labelled ``label``."""
        for p in self.config.get("problem", []):
            if p.get("label") == label:
                return p
        labels = [p.get("label") for p in self.config.get("problem", [])]
        raise KeyError(f"no problem {label!r}; the problems are {labels}")

    def surface(self, label: str) -> Any:
        """Rebuild the :class:`optbench.surfaces.Surface` of the surface problem ``label``."""
        from optbench import surfaces

        spec = self.problem(label)
        if "surface" not in spec:
            raise KeyError(f"problem {label!r} is a task, not a surface")
        folders = [self.config["surfaces"]] if self.config.get("surfaces") else []
        return surfaces.catalogue(folders)[spec["surface"]].build(**spec.get("params", {}))


def load(folder: str | Path) -> Results:
    """Read a results folder written by :func:`optbench.run` or :meth:`Results.save`."""
    folder = Path(folder)
    # every file checked: missing, empty, truncated or damaged is a ConfigError naming it
    runs, curves, trajectories, meta, config, flow = checks.read_folder(folder)
    return Results(runs, curves, trajectories, meta, config, folder, flow)


def write_scoring(folder: str | Path, results: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``profiles.csv`` and ``scores.csv`` of ``results`` into ``folder`` (atomically;
    infinite times and ratios empty); returns ``(profiles, scores)`` with infinities."""
    folder = Path(folder)
    prof, scores = results.scoring()
    write_csv(folder / schema.PROFILES, scoring.for_csv(prof))
    write_csv(folder / schema.SCORES, scores)
    return prof, scores


def select(runs: pd.DataFrame, seeds: Sequence[int] | None = None) -> pd.Series:
    """Mark, per (problem, optimizer), the grid point with the lowest mean final loss.

    The mean runs over seeds and starts (only the ``seeds`` given, the config's
    ``selection_seeds``; default all); diverged runs (and NaN) count as +inf; ties go to
    the smaller learning rate. Tasks rank by ``val_loss`` when it was measured (never by the
    test set). Every run of the chosen grid point is marked, whatever its seed. Returns a
    boolean Series aligned with ``runs``.

    Example:
        >>> runs = pd.DataFrame({"problem": "p", "optimizer": "o", "grid_index": [0, 0, 1, 1],
        ...                      "learning_rate": [0.1, 0.1, 1.0, 1.0], "seed": [0, 1, 0, 1],
        ...                      "final_loss": [1.5, 0.1, 1.0, 1.0], "diverged": False})
        >>> select(runs).tolist(), select(runs, seeds=[0]).tolist()
        ([True, True, False, False], [False, False, True, True])
    """
    selected = pd.Series(False, index=runs.index)
    if runs.empty:
        return selected
    score = runs["final_loss"].astype(float)
    if "val_loss" in runs and "task" in runs:
        val = runs["val_loss"].astype(float)
        score = score.mask(runs["task"].notna() & val.notna(), val)
    score = score.where(~runs["diverged"].astype(bool) & np.isfinite(score), np.inf)
    frame = runs.assign(_score=score)
    if seeds is not None:
        chosen = frame["seed"].isin(list(seeds))
        frame = frame.assign(_score=frame["_score"].where(chosen))
    for _, group in frame.groupby(["problem", "optimizer"], sort=False):
        means = group.groupby("grid_index").agg(
            score=("_score", "mean"), lr=("learning_rate", "first")
        )
        means["score"] = means["score"].fillna(np.inf)
        best = means.sort_values(["score", "lr"], kind="stable").index[0]
        selected[group.index[group["grid_index"] == best]] = True
    return selected
