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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from optbench._version import __version__
from optbench.config import Config, load_config
from optbench.engine import Group, groups, run_surface_group, run_task_group
from optbench.results import (
    Results,
    concat,
    drop_parts,
    load_part,
    prepare_folder,
    save_part,
)

CHECKPOINT_S = 10.0
"""Finished groups are copied to the folder's ``.parts`` (for ``--resume``) at most this
often, and always when a sweep stops early (Ctrl-C or an error); a sweep that completes
writes only its final files. A hard kill loses at most this many seconds of groups."""

#: ``progress(event, **info)``: events "start" (groups=N), "group" (index, group, skipped),
#: "chunk" (done, total) for tasks, and "done" (info) after each group.
Progress = Callable[..., None]


def run(
    config: str | Path | Mapping[str, Any] | Config,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: Progress | None = None,
) -> Results:
    """Run a benchmark sweep and return its :class:`Results`.

    Args:
        config: a path to a TOML file, the name of a built-in config (``"quickstart"``), TOML
            text, a dict of the same shape, or a :class:`optbench.config.Config`.
        out: the results folder; nothing is written when None.
        overwrite: replace an existing results folder.
        resume: keep the finished groups of an existing folder and run only the rest.
        progress: an optional callback for progress reports.

    An interrupted sweep (Ctrl-C) saves the groups it finished before re-raising
    ``KeyboardInterrupt``.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    folder = Path(out) if out is not None else None
    if folder is not None:
        prepare_folder(folder, overwrite=overwrite, resume=resume)
    todo = groups(cfg)
    report = progress or (lambda *a, **k: None)
    report("start", groups=len(todo))
    parts: list[tuple[pd.DataFrame, ...]] = []
    unsaved: list[tuple[str, tuple[pd.DataFrame, ...]]] = []  # finished, not yet in .parts
    surfaces_cache: dict[str, Any] = {}
    t_start = t_saved = time.perf_counter()
    complete = False
    try:
        for index, group in enumerate(todo):
            found = load_part(folder, group.key, group.hash) if folder is not None else None
            report("group", index=index, group=group, skipped=found is not None)
            if found is None:
                found = _run_group(group, cfg, surfaces_cache, report)
                if folder is not None:
                    unsaved.append((group.key, found))
                    if time.perf_counter() - t_saved >= CHECKPOINT_S:
                        _save_parts(folder, unsaved)
                        t_saved = time.perf_counter()
            parts.append(found)
            report("done", info=found[3])
        complete = True
    finally:
        if folder is not None and not complete:
            _save_parts(folder, unsaved)
        results = _assemble(cfg, parts, complete, time.perf_counter() - t_start)
        if folder is not None and parts:
            results.save(folder)
            if complete:
                drop_parts(folder)
    return results


def _save_parts(folder: Path, unsaved: list[tuple[str, tuple[pd.DataFrame, ...]]]) -> None:
    """Copy finished groups into ``folder/.parts`` (what ``--resume`` reads); empties the list."""
    for key, found in unsaved:
        save_part(folder, key, *found)
    unsaved.clear()


def _run_group(
    group: Group, cfg: Config, cache: dict[str, Any], report: Progress
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    p = group.problem
    if p.kind == "task":
        return run_task_group(group, cfg, report)
    if p.label not in cache:
        from optbench import surfaces

        folders = [cfg.surfaces] if cfg.surfaces else []
        cache[p.label] = surfaces.catalogue(folders)[p.surface].build(**p.params)
    return run_surface_group(group, cfg, cache[p.label], report)


def _assemble(
    cfg: Config, parts: list[tuple[pd.DataFrame, ...]], complete: bool, wall_s: float
) -> Results:
    runs = concat(p[0] for p in parts)
    curves = concat(p[1] for p in parts)
    trajectories = concat(p[2] for p in parts)
    if trajectories.empty:
        trajectories = pd.DataFrame(columns=["run_id", "step", "x", "y"])
    for col in ("diverged", "escaped", "selected"):
        if col in runs:
            runs[col] = runs[col].astype(bool)
    group_info = [{k: v for k, v in p[3].items() if k != "hash"} for p in parts]
    meta = machine_meta()
    meta.update(
        name=cfg.name,
        config_hash=cfg.hash(),
        complete=complete,
        groups=group_info,
        wall_s=round(wall_s, 3),
    )
    return Results(runs, curves, trajectories, meta, cfg.to_dict())


def machine_meta() -> dict[str, Any]:
    """Versions, machine and date, as ``meta.json`` records them."""
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
