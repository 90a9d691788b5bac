"""Results files: atomic writes, the per-group parts that resume reads, the folder's guard.

Every file is written atomically (a temporary file beside it, then a rename), so a reader
never sees half a file and an interrupted sweep leaves only whole files behind. While a
sweep runs, each finished (problem, optimizer) group is kept in ``.parts/``; that is what
``resume`` picks up after an interruption.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench._errors import ConfigError
from optbench.results.schema import FILES, normalize

_UMASK = os.umask(0)
os.umask(_UMASK)

PARTS = ".parts"


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


def toml_safe(data: Any) -> Any:
    """Drop None values (TOML has no null) and turn numpy scalars into Python ones."""
    if isinstance(data, dict):
        return {k: toml_safe(v) for k, v in data.items() if v is not None}
    if isinstance(data, (list, tuple)):
        return [toml_safe(v) for v in data]
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
            return normalize(pd.read_csv(where / name))
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
