"""optbench: benchmark and visualise deep-learning optimizers with JAX.

>>> import optbench
>>> res = optbench.run("quickstart")              # doctest: +SKIP
>>> res.runs[res.runs.selected].head()            # doctest: +SKIP

Modules: ``optimizers`` (the update rules), ``schedules``, ``problems`` (the problem kinds:
``surfaces``, the analytic catalogue, and ``tasks``, the CNN / RNN training problems; both
also importable as ``optbench.surfaces`` and ``optbench.tasks``), ``validate``, ``config``,
``engine``, ``results``, ``rendering`` (GIFs, figures, report) and ``cli``. They are
imported on first use, so ``import optbench`` stays cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optbench._errors import ConfigError
from optbench._version import __version__

if TYPE_CHECKING:
    from optbench.api import run
    from optbench.results import Results, load

__all__ = [
    "ConfigError",
    "Results",
    "__version__",
    "load",
    "optimizers",
    "render",
    "report",
    "run",
    "schedules",
    "surfaces",
    "tasks",
]

_MODULES = (
    "optimizers",
    "schedules",
    "surfaces",
    "tasks",
    "config",
    "engine",
    "results",
    "rendering",
    "cli",
    "api",
    "catalogue",
    "problems",
    "validate",
)
_FUNCTIONS = {"run": "optbench.api", "load": "optbench.results", "Results": "optbench.results"}


def render(folder: str | Path, **options: Any) -> list[Path]:
    """Draw the trajectory GIFs of a results folder (see :func:`optbench.rendering.render`)."""
    from optbench import rendering

    return rendering.render(folder, **options)


def report(folder: str | Path, **options: Any) -> Path:
    """Write the HTML report of a results folder (see :func:`optbench.rendering.report`)."""
    from optbench import rendering

    return rendering.report(folder, **options)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"optbench.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'optbench' has no attribute {name!r}")
