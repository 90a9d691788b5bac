"""Results files: atomic writes, the marker's list of them, the per-group parts resume reads.

Every file is written atomically (a temporary file beside it, named ``.optbench-tmp-*``,
then a rename), so a reader never sees half a file and an interrupted sweep leaves only
whole files behind; inside :func:`together` several files are replaced as one (all or
none). Every file written into a marked results folder (see :mod:`.folder`) is listed in
its marker, so that ``overwrite`` deletes only what optbench wrote. While a sweep runs, each
finished (problem, optimizer) group is kept in ``.parts/``; that is what ``resume`` picks up
after an interruption. A file system that refuses a write (full, read-only, a name too
long, a path through a regular file) is a :class:`~optbench.ConfigError` naming the file and
the fix (:mod:`.checks`, which also reads results files carefully).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench._errors import ConfigError
from optbench.results.checks import REASONS, read_csv, storage_error

_UMASK = os.umask(0)
os.umask(_UMASK)

PARTS = ".parts"
MARKER = ".optbench"
"""The file that marks a results folder as optbench's (see :mod:`.folder`)."""
TMP_PREFIX = ".optbench-tmp-"
"""Temporary files start with this; the next run removes any a killed process left."""
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_PART_FILES = ("runs.csv", "curves.csv", "trajectories.csv", "gradient_flow.csv", "group.json")
_MAX_NAME = 120  # part folder names longer than this are shortened (file systems allow 255)


def make_folder(folder: Path) -> None:
    """``mkdir -p folder``, or a :class:`ConfigError` saying why the folder cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except ValueError:  # an embedded NUL
        raise ConfigError(
            "is not a valid folder name; choose another --out", file=repr(str(folder))
        ) from None
    except OSError as err:
        raise storage_error(err, folder, "create this folder") from None
    if not folder.is_dir():
        raise ConfigError("exists and is not a folder; choose another --out", file=str(folder))


# --------------------------------------------------------------------------- atomic files

_staged = threading.local()


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Replace every file written in this block (in this thread) as one, at its end.

    Each write goes to its temporary file as usual; the renames wait until the block ends
    and then happen in a row (with Ctrl-C held back), so a failure or an interruption
    anywhere in the block (a full disk on the third file) leaves every old file as it was
    and no temporary file behind.
    """
    outer = getattr(_staged, "pending", None)
    pending: list[tuple[Path, Path]] = []
    _staged.pending = pending if outer is None else outer
    try:
        yield
    except BaseException:
        if outer is None:
            for tmp, _ in pending:
                tmp.unlink(missing_ok=True)
        raise
    finally:
        if outer is None:
            _staged.pending = None
    if outer is None:
        with _no_sigint():
            for tmp, path in pending:
                os.replace(tmp, path)
                _record(path)


@contextlib.contextmanager
def _no_sigint() -> Iterator[None]:
    main = threading.current_thread() is threading.main_thread()
    if not main or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it when the block succeeds.

    The temporary name keeps the suffix, so writers that infer the format from it (such
    as matplotlib's ``savefig``) work unchanged. On failure nothing is left behind; a file
    system error (full, read-only, ...) becomes a :class:`ConfigError` naming ``path``.
    """
    path = Path(path)
    make_folder(path.parent)
    stem = path.stem[:40]
    try:
        fd, name = tempfile.mkstemp(
            dir=path.parent, prefix=f"{TMP_PREFIX}{stem}-", suffix=path.suffix
        )
    except OSError as err:
        raise storage_error(err, path) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes private files; results are shared
        pending = getattr(_staged, "pending", None)
        if pending is not None:
            pending.append((tmp, path))
            return
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in REASONS:
            raise storage_error(err, path) from None
        raise
    _record(path)


def _record(path: Path) -> None:
    """List ``path`` in the marker of the results folder it lies in (up to 3 levels up)."""
    root = path.parent
    for _ in range(3):
        if is_regular(root / MARKER):
            rel = path.relative_to(root)
            if rel.parts[0] != PARTS and rel.name != MARKER:
                append_line(root / MARKER, {"file": rel.as_posix()})
            return
        root = root.parent


def is_regular(path: Path) -> bool:
    """A regular file, not a link to one (a link planted in a results folder could point
    anywhere: optbench never writes through one)."""
    return path.is_file() and not path.is_symlink()


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` (one ``write`` in append mode: concurrent writers
    never interleave); a file system error is ignored (the record is a convenience)."""
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | NOFOLLOW)  # never into a link's target
    except OSError:
        return
    try:
        os.write(fd, data)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV atomically, streamed in chunks (never the whole text in
    memory); floats in their shortest exact form (``repr``: reading the file back gives the
    same float64 values)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n", chunksize=100_000)


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
    """The folder of one finished group inside ``folder/.parts`` (a long key is shortened,
    keeping a digest of the whole, so every name fits the file system)."""
    if len(key.encode()) > _MAX_NAME:
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        key = key.encode()[: _MAX_NAME - 13].decode(errors="ignore") + "-" + digest
    return folder / PARTS / key


def save_part(
    folder: Path,
    key: str,
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    trajectories: pd.DataFrame,
    gradient_flow: pd.DataFrame,
    info: dict[str, Any],
) -> None:
    """Keep a finished group; ``group.json`` is written last and marks it complete."""
    where = part_dir(folder, key)
    for name, frame in zip(_PART_FILES, (runs, curves, trajectories, gradient_flow), strict=False):
        write_csv(where / name, frame)
    write_text(where / "group.json", json.dumps(info, indent=2, default=str))


def load_part(folder: Path, key: str, group_hash: str) -> tuple[pd.DataFrame, ...] | None:
    """A finished group of the same config (same hash), or None (also when any of its
    files is damaged: the group is then run again)."""
    where = part_dir(folder, key)
    try:
        info = json.loads((where / "group.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("hash") != group_hash:
        return None
    try:
        frames = [read_csv(where / n) for n in _PART_FILES[:4]]
    except ConfigError:
        return None
    return (*frames, info)


def drop_parts(folder: Path) -> None:
    """Remove the per-group copies once the sweep is complete (the top files hold it all)."""
    shutil.rmtree(folder / PARTS, ignore_errors=True)


def concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate non-empty frames (an empty frame when there are none)."""
    frames = [f for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
