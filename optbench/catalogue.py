"""What `optbench list` shows: the optimizers, surfaces, tasks and built-in configs."""

from __future__ import annotations

import tomllib
from typing import Any

SECTIONS = ("optimizers", "surfaces", "tasks", "configs")


def listing(what: str | None = None) -> dict[str, list[list[str]]]:
    """Rows (the first one is the header) for each requested section, or all of them."""
    makers = {
        "optimizers": _optimizers,
        "surfaces": _surfaces,
        "tasks": _tasks,
        "configs": _configs,
    }
    return {s: makers[s]() for s in SECTIONS if what in (None, s)}


def _fmt(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


def _optimizers() -> list[list[str]]:
    from optbench import optimizers

    rows = [["name", "defaults", "update"]]
    rows += [[n, _fmt(optimizers.defaults(n)), optimizers.describe(n)] for n in optimizers.names()]
    return rows


def _surfaces() -> list[list[str]]:
    from optbench import surfaces

    rows = [["name", "dim", "parameters", "description"]]
    for name, spec in sorted(surfaces.catalogue().items()):
        s = spec.build()
        rows.append([name, str(s.dim), _fmt(dict(s.params)), s.description])
    return rows


def _tasks() -> list[list[str]]:
    from optbench import tasks

    rows = [["name", "parameters", "description"]]
    rows += [[n, _fmt(tasks.defaults(n)), tasks.describe(n)] for n in tasks.names()]
    return rows


def _configs() -> list[list[str]]:
    from optbench.config import builtin_dir, builtin_names

    rows = [["name", "description"]]
    for name in builtin_names():
        data = tomllib.loads((builtin_dir() / f"{name}.toml").read_text(encoding="utf-8"))
        rows.append([name, str(data.get("description", ""))])
    return rows
