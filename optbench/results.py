"""Results: tidy DataFrames and the files they live in.

A results folder holds ``runs.csv`` (one row per run), ``curves.csv`` (loss and metrics
against the step), ``trajectories.csv`` (the 2-D paths, for animations), ``config.toml``
(the resolved config) and ``meta.json`` (versions, machine, config hash, timings). Every
file is written atomically (a temporary file, then a rename), so a reader never sees half a
file and an interrupted sweep leaves only whole files behind.

While a sweep runs, each finished (problem, optimizer) group is kept in ``.parts/``; that is
what ``resume`` picks up after an interruption.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from optbench._errors import ConfigError

_UMASK = os.umask(0)
os.umask(_UMASK)

FILES = ("runs.csv", "curves.csv", "trajectories.csv", "config.toml", "meta.json")
PARTS = ".parts"


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
        write_csv(folder / "runs.csv", self.runs)
        write_csv(folder / "curves.csv", self.curves)
        write_csv(folder / "trajectories.csv", self.trajectories)
        write_text(folder / "config.toml", tomli_w.dumps(_toml_safe(self.config)))
        write_text(folder / "meta.json", json.dumps(self.meta, indent=2, default=str) + "\n")
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
    if not (folder / "runs.csv").is_file():
        raise ConfigError(
            "not a results folder (no runs.csv); give a folder written by `optbench run`",
            file=str(folder),
        )

    def csv(name: str) -> pd.DataFrame:
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame()
        return pd.read_csv(path)

    runs = csv("runs.csv")
    for col in ("diverged", "escaped", "selected"):
        if col in runs:
            runs[col] = runs[col].astype(bool)
    meta = (
        json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
    )
    config = (
        tomllib.loads((folder / "config.toml").read_text())
        if (folder / "config.toml").is_file()
        else {}
    )
    return Results(runs, csv("curves.csv"), csv("trajectories.csv"), meta, config, folder)


# --------------------------------------------------------------------------- selection


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


# --------------------------------------------------------------------------- atomic files


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it when the block succeeds.

    The temporary name keeps the suffix, so writers that infer the format from it (such
    as matplotlib's ``savefig``) work unchanged. On failure nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes private files; results are shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV atomically; floats in their shortest exact form (``repr``:
    reading the file back gives the same float64 values)."""
    write_text(path, frame.to_csv(index=False))


def _toml_safe(data: Any) -> Any:
    """Drop None values (TOML has no null) and turn numpy scalars into Python ones."""
    if isinstance(data, dict):
        return {k: _toml_safe(v) for k, v in data.items() if v is not None}
    if isinstance(data, (list, tuple)):
        return [_toml_safe(v) for v in data]
    if isinstance(data, np.generic):
        return data.item()
    return data


# --------------------------------------------------------------------------- parts (resume)


def part_dir(folder: Path, key: str) -> Path:
    """The folder of one finished group inside ``folder/.parts``."""
    return folder / PARTS / key


def save_part(
    folder: Path,
    key: str,
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    trajectories: pd.DataFrame,
    info: dict[str, Any],
) -> None:
    """Keep a finished group; ``group.json`` is written last and marks it complete."""
    where = part_dir(folder, key)
    write_csv(where / "runs.csv", runs)
    write_csv(where / "curves.csv", curves)
    write_csv(where / "trajectories.csv", trajectories)
    write_text(where / "group.json", json.dumps(info, indent=2, default=str))


def load_part(folder: Path, key: str, group_hash: str) -> tuple[pd.DataFrame, ...] | None:
    """A finished group of the same config (same hash), or None."""
    where = part_dir(folder, key)
    try:
        info = json.loads((where / "group.json").read_text())
    except (OSError, ValueError):
        return None
    if info.get("hash") != group_hash:
        return None

    def csv(name: str) -> pd.DataFrame:
        try:
            return pd.read_csv(where / name)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()

    return csv("runs.csv"), csv("curves.csv"), csv("trajectories.csv"), info


def prepare_folder(folder: Path, *, overwrite: bool, resume: bool) -> None:
    """Make ``folder`` ready for a sweep: refuse to touch an existing folder unless asked.

    ``overwrite`` empties a previous results folder (only one that optbench wrote);
    ``resume`` keeps it so that finished groups are skipped.
    """
    if overwrite and resume:
        raise ConfigError("give --overwrite or --resume, not both", key="--overwrite")
    if folder.exists() and not folder.is_dir():
        raise ConfigError("exists and is not a folder; choose another --out", file=str(folder))
    if folder.is_dir() and any(folder.iterdir()):
        ours = any((folder / n).exists() for n in (*FILES, PARTS))
        if resume:
            if not ours:
                raise ConfigError(
                    "is not an optbench results folder; nothing to resume", file=str(folder)
                )
            return
        if not overwrite:
            raise ConfigError(
                "already exists; pass --overwrite to replace it or --resume to finish it",
                file=str(folder),
            )
        if not ours:
            raise ConfigError(
                "is not an optbench results folder, refusing to overwrite it; choose another --out",
                file=str(folder),
            )
        _clear(folder)
    folder.mkdir(parents=True, exist_ok=True)


def drop_parts(folder: Path) -> None:
    """Remove the per-group copies once the sweep is complete (the top files hold it all)."""
    shutil.rmtree(folder / PARTS, ignore_errors=True)


def _clear(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate non-empty frames (an empty frame when there are none)."""
    frames = [f for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
