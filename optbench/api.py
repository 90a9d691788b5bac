"""The Python API: ``optbench.run(config, out)`` from config to results, and its metadata.

Example::

    import optbench

    res = optbench.run('''
    steps = 200
    [[problem]]
    surface = "rosenbrock"
    [optimizer.adam]
    learning_rate = [1e-2, 3e-2, 1e-1]
    ''')
    print(res.runs[res.runs.selected][["optimizer", "learning_rate", "final_loss"]])
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from optbench import compilation, engine, executors, sizes
from optbench._errors import ConfigError
from optbench._version import __version__
from optbench.config import Config, load_config
from optbench.engine import GroupResult, Progress, sweep
from optbench.executors import Executor
from optbench.results import Results, concat, drop_parts, files, load, schema
from optbench.results import folder as folder_mod


def run(
    config: str | Path | Mapping[str, Any] | Config,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    cluster: Any = None,
) -> Results:
    """Run a benchmark sweep and return its :class:`Results`.

    Args:
        config: a path to a TOML file, the name of a built-in config (``"quickstart"``), TOML
            text, a dict of the same shape, or a :class:`optbench.config.Config`.
        out: the results folder; nothing is written when None (but JAX's compilation cache,
            on by default in the user's cache folder: see :mod:`optbench.compilation`).
        overwrite: replace an existing results folder.
        resume: keep the finished groups of an existing folder and run only the rest (a
            complete folder of the same config: nothing is run and nothing rewritten).
        force: run a sweep the size guards refuse (:func:`optbench.sizes.check`: more than
            half the machine's memory, more than a few GB of files, more than the free disk).
        progress: an optional callback for progress reports (see :data:`engine.Progress`).
        cluster: where the batches run (:func:`optbench.executors.connect`): None, this
            process; an int N, a local Dask cluster of N worker processes, closed at the end;
            a scheduler address (``"tcp://host:8786"``), a ``distributed.Client`` or a Dask
            cluster object. Needs the dask extra (``pip install "optbench[dask]"``).

    The folder is claimed before anything is written (:func:`optbench.results.folder.claim`:
    its marker, its lock: a second writer gets a :class:`ConfigError`), and its files are
    replaced all together at the end. An interrupted sweep (Ctrl-C) saves the groups it
    finished before re-raising ``KeyboardInterrupt``.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    compilation.enable_default_cache()
    where = Path(out) if out is not None else None
    sizes.check(cfg, where, force=force)
    with executors.connect(cluster) as executor:  # a missing extra: before anything is written
        if where is None:
            return _run(cfg, None, progress, executor)
        with folder_mod.claim(where, overwrite=overwrite, resume=resume):
            if resume:
                kept = _reuse_complete(cfg, where)
                if kept is not None:
                    return kept
            return _run(cfg, where, progress, executor)


def _run(
    cfg: Config, folder: Path | None, progress: Progress | None, executor: Executor | None = None
) -> Results:
    """The sweep itself, and the final files (all replaced together)."""
    parts: list[GroupResult] = []
    complete = False
    t_start = time.perf_counter()
    try:
        for result, done in sweep(cfg, folder, progress, executor):
            parts.append(result)
            complete = done
    finally:
        results = _assemble(cfg, parts, complete, time.perf_counter() - t_start)
        if folder is not None and parts:
            with files.together():
                results.save(folder)
            if complete:
                drop_parts(folder)
                folder_mod.record_complete(folder, _completion(cfg, parts))
    return results


def _completion(cfg: Config, parts: list[GroupResult]) -> dict[str, Any]:
    """What the marker keeps of a complete sweep (see :func:`folder.completed`)."""
    sets: dict[tuple[str, ...], int] = {}
    columns = {}
    todo = engine.groups(cfg)
    for group, part in zip(todo, parts, strict=True):
        frames = (part.runs, part.curves, part.trajectories, part.gradient_flow)
        columns[group.key] = [sets.setdefault(tuple(f.columns), len(sets)) for f in frames]
    return {
        "complete": {g.key: g.hash for g in todo},
        "columns": columns,
        "column_sets": [list(c) for c in sets],
    }


def _reuse_complete(cfg: Config, where: Path) -> Results | None:
    """``resume`` of a complete folder: its results when every group of ``cfg`` is there with
    the same identity (nothing runs, nothing is rewritten); else None, after copying the
    groups that are unchanged into ``.parts`` so that only the others run."""
    record = folder_mod.completed(where)
    recorded, columns = record.get("complete", {}), record.get("columns", {})
    todo = engine.groups(cfg)
    same = [g for g in todo if recorded.get(g.key) == g.hash]
    if not same:
        return None
    try:
        old = load(where)
    except ConfigError:  # damaged since: run it all again
        return None
    unchanged = old.meta.get("complete") and old.meta.get("config_hash") == cfg.hash()
    if unchanged and len(same) == len(todo) == len(recorded):
        return old
    info = {(str(i.get("problem")), str(i.get("optimizer"))): i for i in old.meta.get("groups", [])}
    problem, optimizer = old.runs["problem"].astype(str), old.runs["optimizer"].astype(str)
    for g in same:
        entry = info.get((g.problem.label, g.optimizer.label))
        try:
            cols = [record["column_sets"][i] for i in columns[g.key]]
        except (KeyError, IndexError, TypeError):
            continue  # an older record: this group runs again
        mine = old.runs[(problem == g.problem.label) & (optimizer == g.optimizer.label)]
        if entry is None or mine.empty:
            continue
        ids = set(mine["run_id"].astype(str))
        try:
            frames = [
                frame.loc[frame["run_id"].astype(str).isin(ids), c].reset_index(drop=True)
                for frame, c in zip(
                    (old.runs, old.curves, old.trajectories, old.gradient_flow), cols, strict=True
                )
            ]
        except KeyError:  # a column is gone: this group runs again
            continue
        files.save_part(where, g.key, *frames, {**entry, "hash": g.hash})
    return None


def _assemble(cfg: Config, parts: list[GroupResult], complete: bool, wall_s: float) -> Results:
    runs = schema.normalize(concat(p.runs for p in parts))
    curves = schema.normalize(concat(p.curves for p in parts))
    trajectories = concat(p.trajectories for p in parts)
    if trajectories.empty:
        trajectories = schema.empty_trajectories()
    flow = schema.normalize(concat(p.gradient_flow for p in parts))
    if flow.empty:
        flow = schema.empty_gradient_flow()
    group_info = [{k: p.info.get(k) for k in schema.GROUP_KEYS} for p in parts]
    meta = machine_meta()
    meta.update(
        name=cfg.name,
        config_hash=cfg.hash(),
        complete=complete,
        groups=group_info,
        wall_s=round(wall_s, 3),
    )
    return Results(runs, curves, trajectories, meta, cfg.to_dict(), gradient_flow=flow)


def machine_meta() -> dict[str, Any]:
    """Versions, machine and date, as ``meta.json`` records them (keys: ``schema.VERSION_KEYS``,
    ``schema.MACHINE_KEYS`` and ``date``)."""
    import jaxlib

    device = jax.devices()[0]
    return {
        "optbench": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "device_kind": f"{device.platform}: {device.device_kind}",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
