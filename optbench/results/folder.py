"""The results folder itself: its marker, the list of the files optbench wrote, its lock.

A results folder is optbench's when it holds the marker file ``.optbench``, written first,
before anything else, when a sweep claims a new or empty folder. The marker is a JSON-lines
file: a header, then one line per file optbench wrote there (``{"file": "runs.csv"}``,
appended by every atomic write, drawing processes included) and, when a sweep completes,
the identities of its groups (``{"complete": {key: hash}, ...}``, what makes ``resume``
of a complete folder a no-op). ``overwrite`` deletes only the files listed there, the group
copies in ``.parts`` and temporary files; everything else in the folder stays.

While a sweep writes a folder it holds ``.optbench.lock`` (an exclusive ``flock``, with the
writer's pid inside): a second writer gets one line naming that pid. The kernel releases
the lock when its process dies, however it dies, so a stale lock is taken over at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from optbench._errors import ConfigError
from optbench.results import checks, files
from optbench.results.files import MARKER, PARTS, TMP_PREFIX

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK = ".optbench.lock"
HEADER = {"optbench": "results folder", "format": 1}
_HELD: dict[str, int] = {}  # folders this process holds the lock of -> nesting depth


# --------------------------------------------------------------------------- the marker


def is_marked(folder: Path) -> bool:
    """Whether ``folder`` carries optbench's marker."""
    return files.is_regular(folder / MARKER)


def mark(folder: Path) -> None:
    """Write a fresh marker (the header alone) into ``folder``."""
    files.write_text(folder / MARKER, json.dumps(HEADER, sort_keys=True) + "\n")


def _records(folder: Path) -> list[dict[str, Any]]:
    try:
        lines = (folder / MARKER).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a full disk: skip it
        if isinstance(record, dict):
            out.append(record)
    return out


def written(folder: Path) -> list[str]:
    """The files optbench wrote in ``folder``, relative paths as listed in its marker
    (only paths inside the folder: no absolute paths, no ``..``)."""
    out = []
    for record in _records(folder):
        name = record.get("file")
        if not isinstance(name, str) or not name:
            continue
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or rel.parts[0] in (MARKER, LOCK):
            continue
        out.append(name)
    return list(dict.fromkeys(out))


def completed(folder: Path) -> dict[str, Any]:
    """The record of the last sweep that completed in ``folder`` ({} if none):
    ``complete`` maps each group key to its identity hash; ``columns`` maps it to the
    indices, in ``column_sets``, of the columns of its rows in ``runs.csv``, ``curves.csv``,
    ``trajectories.csv`` and ``gradient_flow.csv`` (what lets ``resume`` cut a group out of
    the files exactly)."""
    found: dict[str, Any] = {}
    for record in _records(folder):
        if isinstance(record.get("complete"), dict):
            found = record
    return found


def record_complete(folder: Path, record: dict[str, Any]) -> None:
    """Note in the marker that a sweep completed (the record :func:`completed` returns)."""
    files.append_line(folder / MARKER, record)


# --------------------------------------------------------------------------- cleaning


def remove_temporary(folder: Path) -> list[Path]:
    """Delete the temporary files a killed process left in ``folder`` (up to 3 levels deep)
    and any link planted in ``.parts`` (group copies are never written through a link);
    only call it while holding the folder's lock. Returns what was removed."""
    removed = []
    parts = folder / PARTS
    links = [parts] if parts.is_symlink() else list(parts.iterdir()) if parts.is_dir() else []
    for link in links:
        if link.is_symlink():  # never followed: only the link goes
            link.unlink()
            removed.append(link)
    root_depth = len(folder.parts)
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        if len(here.parts) - root_depth >= 3:
            dirnames.clear()
        for name in filenames:
            if name.startswith(TMP_PREFIX):
                with contextlib.suppress(OSError):
                    (here / name).unlink()
                    removed.append(here / name)
    return removed


def clear(folder: Path) -> None:
    """Delete what optbench wrote in ``folder`` (the files its marker lists, the group
    copies, temporary files) and folders that leaves empty; then write a fresh marker.
    Anything else stays where it is."""
    parents: set[Path] = set()
    real = os.path.realpath(folder)
    for name in written(folder):
        path = folder / name
        if os.path.realpath(path.parent) != os.path.join(real, *PurePosixPath(name).parent.parts):
            continue  # a folder on the way was replaced by a link: not ours to follow
        if path.is_file() or path.is_symlink():  # a symlink is removed, never its target
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            parents.update(p for p in path.parents if p != folder and folder in p.parents)
    parts = folder / PARTS
    if parts.is_dir() and not parts.is_symlink():
        for group in parts.iterdir():
            if group.is_dir() and not group.is_symlink():
                for name in files._PART_FILES:
                    with contextlib.suppress(FileNotFoundError):
                        (group / name).unlink()
                parents.add(group)
        parents.add(parts)
    remove_temporary(folder)
    for path in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            path.rmdir()  # only when empty
    mark(folder)


# --------------------------------------------------------------------------- the lock


@contextlib.contextmanager
def lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the block (re-entrant within a process).

    Raises :class:`ConfigError` naming the holder's pid when another process holds it. The
    lock file is removed when the block ends.
    """
    key = os.path.realpath(folder)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path = Path(key) / LOCK
    fd = _acquire(path, folder)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                path.unlink()
        os.close(fd)


def holds_lock(folder: Path) -> bool:
    """Whether this process holds ``folder``'s lock."""
    return os.path.realpath(folder) in _HELD


def _acquire(path: Path, folder: Path) -> int:
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | files.NOFOLLOW, 0o666)
        except OSError as err:
            raise checks.storage_error(err, path) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise ConfigError(
                    f"is being written by another optbench process{holder}; wait for it to "
                    "finish or choose another --out",
                    file=str(folder),
                ) from None
            except OSError:  # a file system without locks: go on unlocked
                pass
        # A holder that just finished unlinked the file we opened: lock the new one instead.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    return fd


def _holder(fd: int) -> str:
    try:
        pid, _, host = os.pread(fd, 200, 0).decode().strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        return ""
    if not pid.isdigit():
        return ""
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f" (pid {pid}{where})"


# --------------------------------------------------------------------------- claiming


def _state(folder: Path) -> str:
    """``"absent"``, ``"empty"`` (nothing but a lock or temporary files), ``"ours"`` or
    ``"theirs"``."""
    try:
        os.stat(folder)
    except FileNotFoundError:
        return "absent"
    except OSError as err:
        raise checks.storage_error(err, folder, "use this folder") from None
    if not folder.is_dir():
        raise ConfigError("exists and is not a folder; choose another --out", file=str(folder))
    try:
        # a lock and temporary files alone: a process killed before it wrote the marker
        names = {p.name for p in folder.iterdir() if not _debris(p.name)}
    except OSError as err:
        raise checks.storage_error(err, folder, "read this folder") from None
    if not names:
        return "empty"
    return "ours" if MARKER in names and is_marked(folder) else "theirs"


def _debris(name: str) -> bool:
    return name == LOCK or name.startswith(TMP_PREFIX)


def _refuse(folder: Path, state: str, overwrite: bool, resume: bool) -> None:
    if state == "theirs":
        what = "nothing to resume" if resume else "refusing to overwrite it" if overwrite else ""
        raise ConfigError(
            f"is not an optbench results folder (it has no {MARKER} marker)"
            + (f", {what}" if what else "")
            + "; choose another --out",
            file=str(folder),
        )
    if state == "ours" and not (overwrite or resume):
        raise ConfigError(
            "already exists; pass --overwrite to replace it or --resume to finish it",
            file=str(folder),
        )


@contextlib.contextmanager
def claim(folder: Path, *, overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """Make ``folder`` ready for a sweep and hold its lock for the block.

    A new or empty folder gets the marker first; an existing one must be optbench's and is
    touched only with ``overwrite`` (what optbench wrote there is deleted) or ``resume``
    (kept: its finished groups are skipped). Temporary files left by a killed process are
    removed. Within a block that already holds the lock (the CLI holds it through the
    sweep and the drawing), claiming again does nothing.
    """
    if overwrite and resume:
        raise ConfigError("give --overwrite or --resume, not both", key="--overwrite")
    folder = Path(folder)
    if "\0" in str(folder):
        raise ConfigError(
            "is not a valid folder name; choose another --out", file=repr(str(folder))
        )
    if holds_lock(folder):
        yield folder
        return
    _refuse(folder, _state(folder), overwrite, resume)  # before creating anything
    files.make_folder(folder)
    with lock(folder):
        state = _state(folder)  # again, now that no other writer can change it
        _refuse(folder, state, overwrite, resume)
        if state == "ours" and overwrite:
            clear(folder)
        else:
            remove_temporary(folder)
            if state != "ours":
                mark(folder)
        yield folder


def prepare_folder(folder: Path, *, overwrite: bool, resume: bool) -> None:
    """Make ``folder`` ready for a sweep (:func:`claim`, without keeping the lock)."""
    with claim(folder, overwrite=overwrite, resume=resume):
        pass
