"""Size guards: a sweep's peak memory and output size, estimated before anything runs.

:func:`estimate` counts, from the config alone (nothing is laid out or compiled), the runs,
the rows of ``curves.csv`` and ``trajectories.csv`` and the parameters of the task models,
and turns them into bytes with per-row costs measured on this code (a surface sweep of
10,000 runs: about 200-300 bytes of peak memory and 50-70 bytes of CSV per row).
:func:`check` refuses, with one line that gives the sizes and how to shrink them, a sweep
whose peak memory would exceed half of this machine's memory (or of the container's
limit), whose files would exceed :data:`MAX_OUTPUT_BYTES`, or which would not fit on the
disk; ``force=True`` (``--force``) runs it anyway.

Example:
    >>> from optbench.config import load_config
    >>> cfg = load_config('''
    ... seeds = 3
    ... [[problem]]
    ... surface = "rosenbrock"
    ... [optimizer.adam]
    ... learning_rate = { logspace = [1e-4, 1e-1], num = 16 }
    ... ''')
    >>> est = estimate(cfg)
    >>> est.runs, est.curve_rows > 16 * 3 * 500
    (48, True)
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optbench._errors import ConfigError

MAX_OUTPUT_BYTES = 4 * 2**30
"""The largest output (the CSV files together) a sweep may write without ``force``."""
MEMORY_FRACTION = 0.5
"""The share of the machine's memory a sweep may use without ``force``."""

_BASE_MEMORY = 600 * 2**20  # the interpreter, JAX, the data sets
_ROW_MEMORY = 250  # bytes of peak memory per curve or trajectory row (frames, copies, arrays)
_RUN_MEMORY = 2000  # per run: its runs.csv row, the program's per-run state
_ROW_BYTES = {"curve": 30, "task_curve": 110, "trajectory": 45, "run": 160, "task_run": 250}


@dataclass(frozen=True)
class Estimate:
    """What a sweep will hold and write (see :func:`estimate`)."""

    runs: int
    curve_rows: int
    trajectory_rows: int
    memory_bytes: int
    output_bytes: int

    def describe(self) -> str:
        """``"48 runs, 24,048 curve rows, 9,648 trajectory rows"``."""
        return (
            f"{self.runs:,} runs, {self.curve_rows:,} curve rows, "
            f"{self.trajectory_rows:,} trajectory rows"
        )


def estimate(config: Any) -> Estimate:
    """Estimate the runs, rows, peak memory and output bytes of ``config`` (a validated
    :class:`optbench.config.Config`) without laying out any run."""
    from optbench.problems.surfaces.problem import SurfaceProblem
    from optbench.problems.tasks.problem import TaskProblem

    settings = config.settings
    seeds = len(settings.seeds)
    runs = curve_rows = traj_rows = 0
    memory = output = 0
    peak_program = 0
    for p in config.problems:
        steps = p.optimizer_steps()
        log_every = settings.log_every
        task = isinstance(p, TaskProblem)
        if isinstance(p, SurfaceProblem):
            from optbench.problems.surfaces import problem as sp
            from optbench.problems.surfaces import program

            log_every = log_every or max(1, steps // sp.CURVE_POINTS)
            traj = 0
            if p.surface.dim == 2:  # every step at first, then log-spaced
                dense = min(steps, program.TRAJ_DENSE) + 1
                traj = dense + min(program.TRAJ_LOG_POINTS, steps + 1 - dense) + 1
        else:
            from optbench.problems.tasks import problem as tp

            log_every = log_every or max(1, steps // tp.CURVE_POINTS)
            traj = 0
        curve = steps // log_every + 2
        model = _model_bytes(p, settings.dtype) if task else 0
        together = 0  # the runs of the problem's one program (all its optimizers)
        for o in config.optimizers_for(p):
            n = math.prod(len(v) for v in o.grid.values()) * seeds * p.n_starts
            ident = len(p.label) + len(o.label) + 20  # the run_id
            runs += n
            curve_rows += n * curve
            traj_rows += n * traj
            memory += n * ((curve + traj) * _ROW_MEMORY + _RUN_MEMORY)
            together += n
            peak_program = max(peak_program, together * model)  # the program, while it runs
            kind = "task_" if task else ""
            output += n * (
                curve * (_ROW_BYTES[kind + "curve"] + ident)
                + traj * (_ROW_BYTES["trajectory"] + ident)
                + _ROW_BYTES[kind + "run"]
                + 2 * ident
            )
    return Estimate(runs, curve_rows, traj_rows, _BASE_MEMORY + memory + peak_program, output)


def _model_bytes(problem: Any, dtype: str) -> int:
    """A training task's memory per run: parameters, gradients and optimizer state (about 8
    copies of the parameters) and the activations of one minibatch."""
    model = getattr(getattr(problem, "task", None), "_model", None)
    n_params = 0
    if model is not None:
        import jax
        import jax.numpy as jnp

        try:
            shapes = jax.eval_shape(lambda k: model.init(k, jnp.float32), jax.random.key(0))
            n_params = sum(math.prod(s.shape) for s in jax.tree.leaves(shapes))
        except Exception:  # an estimate: never the reason a sweep fails
            n_params = 0
    params = dict(getattr(problem, "params", {}) or {})
    if getattr(problem.task, "recurrent", False):  # stored gates: 4 x hidden per timestep
        width, length = 4 * int(params.get("hidden", 64)), int(params.get("length", 8))
    else:
        width, length = int(params.get("hidden", 1024)), 1
    batch = int(getattr(problem, "batch_size", 64) or 64)
    item = 8 if dtype == "float64" else 4
    return item * (8 * n_params + 4 * batch * length * width)


def available_memory() -> int | None:
    """This machine's memory in bytes, or the container's limit where that is lower."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (total or 2**62):
            total = int(text)
    return total


def check(config: Any, folder: Path | None = None, *, force: bool = False) -> Estimate:
    """Refuse (raise :class:`ConfigError`) a sweep that would not fit, unless ``force``.

    Limits: peak memory over :data:`MEMORY_FRACTION` of :func:`available_memory`; with a
    ``folder``, output over :data:`MAX_OUTPUT_BYTES` or over the free space of its disk.
    """
    est = estimate(config)
    if force:
        return est
    fix = (
        "shrink it (fewer seeds, grid points, starts or steps, a larger log_every, a "
        "smaller model or batch_size) "
        "or pass --force (force=True) to run it anyway"
    )
    where = config.source if not config.source.startswith("<") else None
    memory = available_memory()
    if memory and est.memory_bytes > MEMORY_FRACTION * memory:
        raise ConfigError(
            f"this sweep ({est.describe()}) needs about {_size(est.memory_bytes)} of memory, "
            f"more than half of this machine's {_size(memory)}; {fix}",
            file=where,
        )
    if folder is None:
        return est
    if est.output_bytes > MAX_OUTPUT_BYTES:
        raise ConfigError(
            f"this sweep ({est.describe()}) would write about {_size(est.output_bytes)} of "
            f"CSV files, more than the {_size(MAX_OUTPUT_BYTES)} limit; {fix}",
            file=where,
        )
    free = _free_space(folder)
    if free is not None and est.output_bytes > free:
        raise ConfigError(
            f"this sweep ({est.describe()}) would write about {_size(est.output_bytes)}, "
            f"but only {_size(free)} are free there; free some space, choose another --out, "
            f"or {fix}",
            file=str(folder),
        )
    return est


def _free_space(folder: Path) -> int | None:
    for path in (folder, *folder.absolute().parents):
        try:
            return shutil.disk_usage(path).free
        except FileNotFoundError:
            continue  # not made yet: its parent's disk
        except (OSError, ValueError):  # an unusable path: claiming the folder will say why
            return None
    return None


def _size(n: float) -> str:
    """``"13.5 GiB"``."""
    unit = "bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
