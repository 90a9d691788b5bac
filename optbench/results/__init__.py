"""Results: tidy DataFrames, the folder they live in, and the selection rule.

A results folder holds ``runs.csv`` (one row per run), ``curves.csv`` (loss and metrics
against the step), ``trajectories.csv`` (the 2-D paths, for animations), ``config.toml``
(the resolved config) and ``meta.json`` (versions, machine, config hash, timings). The
columns, dtypes and meta keys are defined once, in :mod:`.schema`; files are written
atomically by :mod:`.files`; tidy curves are built by :mod:`.records`.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from optbench._errors import ConfigError
from optbench.results import schema
from optbench.results.files import (
    atomic_path,
    concat,
    drop_parts,
    load_part,
    prepare_folder,
    save_part,
    toml_safe,
    write_bytes,
    write_csv,
    write_text,
)
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
    "select",
    "write_bytes",
    "write_csv",
    "write_text",
]


@dataclass
class Results:
    """The tidy outcome of a sweep.

    Attributes:
        runs: one row per run (see the README for the columns).
        curves: ``run_id, step[, epoch]`` and one column per metric.
        trajectories: ``run_id, step, x, y`` for 2-D surfaces.
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

    def save(self, out: str | Path) -> Path:
        """Write the five files into ``out`` (created if needed), each atomically."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        write_csv(folder / schema.RUNS, self.runs)
        write_csv(folder / schema.CURVES, self.curves)
        write_csv(folder / schema.TRAJECTORIES, self.trajectories)
        write_text(folder / schema.CONFIG, tomli_w.dumps(toml_safe(self.config)))
        write_text(folder / schema.META, json.dumps(self.meta, indent=2, default=str) + "\n")
        self.path = folder
        return folder

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
    if not (folder / schema.RUNS).is_file():
        raise ConfigError(
            "not a results folder (no runs.csv); give a folder written by `optbench run`",
            file=str(folder),
        )

    def csv(name: str) -> pd.DataFrame:
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame()
        return schema.normalize(pd.read_csv(path))

    meta_path, config_path = folder / schema.META, folder / schema.CONFIG
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    config = tomllib.loads(config_path.read_text()) if config_path.is_file() else {}
    return Results(
        csv(schema.RUNS), csv(schema.CURVES), csv(schema.TRAJECTORIES), meta, config, folder
    )


def select(runs: pd.DataFrame) -> pd.Series:
    """Mark, per (problem, optimizer), the grid point with the lowest mean final loss.

    The mean runs over seeds and starts; diverged runs (and NaN) count as +inf; ties go to
    the smaller learning rate. Tasks rank by ``val_loss`` when it was measured (never by the
    test set). Returns a boolean Series aligned with ``runs``.
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
    for _, group in frame.groupby(["problem", "optimizer"], sort=False):
        means = group.groupby("grid_index").agg(
            score=("_score", "mean"), lr=("learning_rate", "first")
        )
        means["score"] = means["score"].fillna(np.inf)
        best = means.sort_values(["score", "lr"], kind="stable").index[0]
        selected[group.index[group["grid_index"] == best]] = True
    return selected
