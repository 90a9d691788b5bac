"""Counting XLA compilations: the engine promises one per (problem, optimizer) group, and
one per surface problem (its optimizers together)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles() -> Iterator[list[str]]:
    """Collect the names of the programs XLA compiles inside the block."""
    names: list[str] = []

    def listener(event: str, duration: float, **kwargs: object) -> None:
        if event == _EVENT:
            names.append(str(kwargs.get("fun_name", "?")))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
