"""What can go wrong with the files of a results folder, said in one line.

:func:`storage_error` turns an ``OSError`` of the file system (full, read-only, a name too
long, a path through a regular file, a link in the way) into a
:class:`~optbench.ConfigError` naming the file and the fix; :func:`read_csv`,
:func:`read_json`, :func:`read_toml` and :func:`read_folder` read a results folder's files
and refuse, the same way, one that is missing, empty, truncated, unparseable or that
disagrees with ``meta.json``.
"""

from __future__ import annotations

import errno
import json
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from optbench._errors import ConfigError
from optbench.results import schema
from optbench.results.schema import normalize

REASONS = {
    errno.ENOSPC: "the disk is full; free some space or choose another --out",
    errno.EDQUOT: "the disk quota is exhausted; free some space or choose another --out",
    errno.EFBIG: "the file is larger than this file system or a file-size limit allows; "
    "shrink the sweep or choose another --out",
    errno.EROFS: "the file system is read-only; choose another --out",
    errno.EACCES: "permission denied; choose another --out",
    errno.EPERM: "permission denied; choose another --out",
    errno.ENAMETOOLONG: "the name is too long for the file system; use a shorter name or label",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another --out",
    errno.EEXIST: "a part of the path is a file, not a folder; choose another --out",
    errno.EISDIR: "a folder is in the way; choose another --out",
    errno.EINVAL: "the file system refuses this name; use letters, digits, '-' and '_'",
    errno.ELOOP: "a link is in the way (optbench never writes through one in a results "
    "folder); remove it or choose another --out",
}


def storage_error(err: OSError, path: str | Path, action: str = "write") -> ConfigError:
    """The one-line error for an ``OSError`` from the file system at ``path``."""
    why = REASONS.get(err.errno or 0, f"{err.strerror or err}; choose another --out")
    return ConfigError(f"cannot {action} ({why})", file=str(path))


# --------------------------------------------------------------------------- careful reading

_REDO = "rerun the sweep with --resume (or --overwrite)"


def _not_special(path: Path) -> None:
    """A results file must be a regular file where there is one (a FIFO would block)."""
    if path.exists() and not path.is_file():
        raise ConfigError(f"is not a regular file: {_REDO}", file=str(path))


def read_csv(path: Path, required: Sequence[str] = ()) -> pd.DataFrame:
    """A results CSV file, normalized to the schema's dtypes, or a :class:`ConfigError`
    naming the file when it is missing, empty, truncated (optbench ends every file with a
    newline), unparseable or lacks one of the ``required`` columns."""
    _not_special(path)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size:
                f.seek(size - 1)
            last = f.read(1)
    except FileNotFoundError:
        raise ConfigError(
            f"is missing; the folder is incomplete: {_REDO}", file=str(path)
        ) from None
    except OSError as err:
        raise storage_error(err, path, "read") from None
    if size == 0:
        raise ConfigError(
            f"is empty; the sweep that wrote it did not finish: {_REDO}", file=str(path)
        )
    if last != b"\n":
        raise ConfigError(f"is truncated (no final newline): {_REDO}", file=str(path))
    try:
        frame = normalize(pd.read_csv(path))
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()  # an empty frame: optbench writes a single newline
    except (ValueError, TypeError, UnicodeDecodeError, pd.errors.ParserError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"is damaged ({reason}): {_REDO}", file=str(path)) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ConfigError(f"lacks the column(s) {', '.join(missing)}: {_REDO}", file=str(path))
    return frame


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` ({} when the file does not exist), or a ConfigError."""
    _not_special(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot be read ({err}): {_REDO}", file=str(path)) from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"is not valid JSON ({err}): {_REDO}", file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"is not a JSON object: {_REDO}", file=str(path))
    return data


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML table from ``path`` ({} when the file does not exist), or a ConfigError."""
    _not_special(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"is damaged ({err}): {_REDO}", file=str(path)) from None


_RUN_REQUIRED = ("run_id", "problem", "optimizer", "grid_index", "seed", "final_loss", "diverged")


def read_folder(
    folder: Path,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict, dict, pd.DataFrame]:
    """``(runs, curves, trajectories, meta, config, gradient_flow)`` of a results folder, each
    file checked (``gradient_flow.csv`` may be absent: folders written before it existed)
    (:func:`read_csv`, :func:`read_json`, :func:`read_toml`), and ``runs.csv`` against
    ``meta.json``: as many rows as its groups have runs (a file cut at a line break)."""
    if not (folder / schema.RUNS).is_file():
        raise ConfigError(
            "not a results folder (no runs.csv); give a folder written by `optbench run`",
            file=str(folder),
        )
    runs = read_csv(folder / schema.RUNS, _RUN_REQUIRED)
    if runs.empty or runs["run_id"].isna().any():
        raise ConfigError(
            f"has no runs or rows without a run_id: {_REDO}", file=str(folder / schema.RUNS)
        )
    curves = read_csv(folder / schema.CURVES, ("run_id", "step"))
    trajectories = read_csv(folder / schema.TRAJECTORIES, schema.TRAJECTORY_COLUMNS)
    meta = read_json(folder / schema.META)
    config = read_toml(folder / schema.CONFIG)
    groups = meta.get("groups")
    if isinstance(groups, list) and all(isinstance(g, dict) for g in groups):
        counts = [g.get("runs") for g in groups]
        if all(isinstance(n, int) for n in counts) and sum(counts) != len(runs):
            raise ConfigError(
                f"has {len(runs)} rows where meta.json counts {sum(counts)} runs (one of the two "
                f"was cut or replaced): {_REDO}",
                file=str(folder / schema.RUNS),
            )
    flow_path = folder / schema.GRADIENT_FLOW
    flow = (
        schema.normalize(read_csv(flow_path, schema.GRADIENT_FLOW_COLUMNS))
        if flow_path.is_file()
        else schema.empty_gradient_flow()
    )
    return runs, curves, trajectories, meta, config, flow
