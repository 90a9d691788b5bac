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

from optbench._version import __version__
from optbench.config import Config, load_config
from optbench.engine import GroupResult, Progress, sweep
from optbench.results import Results, concat, drop_parts, prepare_folder, schema


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
        progress: an optional callback for progress reports (see :data:`engine.Progress`).

    An interrupted sweep (Ctrl-C) saves the groups it finished before re-raising
    ``KeyboardInterrupt``.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    folder = Path(out) if out is not None else None
    if folder is not None:
        prepare_folder(folder, overwrite=overwrite, resume=resume)
    parts: list[GroupResult] = []
    complete = False
    t_start = time.perf_counter()
    try:
        for result, done in sweep(cfg, folder, progress):
            parts.append(result)
            complete = done
    finally:
        results = _assemble(cfg, parts, complete, time.perf_counter() - t_start)
        if folder is not None and parts:
            results.save(folder)
            if complete:
                drop_parts(folder)
    return results


def _assemble(cfg: Config, parts: list[GroupResult], complete: bool, wall_s: float) -> Results:
    runs = schema.normalize(concat(p.runs for p in parts))
    curves = schema.normalize(concat(p.curves for p in parts))
    trajectories = concat(p.trajectories for p in parts)
    if trajectories.empty:
        trajectories = schema.empty_trajectories()
    group_info = [{k: p.info[k] for k in schema.GROUP_KEYS} for p in parts]
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
