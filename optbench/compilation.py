"""Compile once per process, once per machine: the program cache and JAX's disk cache.

**In this process**, :func:`program` keeps every compiled program under a key that names
everything its code and shapes depend on (the problem's structure, the optimizer's
algorithm, switches and single-valued hyperparameters other than the learning rate, the
number of runs, the dtype); a second ``optbench.run`` of the same shapes compiles nothing.
The learning rate, every gridded hyperparameter, seeds and start points are arguments of
the program, so a new learning rate (single, or a grid of the same size) reuses it. What
recompiles: another grid size or seed count (another number of runs), another step budget
or ``log_every``, another single value of ``b1``, ``momentum``, ``eps``, ... (compiled in:
see :meth:`optbench.config.OptimizerConfig.traced`), another surface or surface parameters,
task parameters, switches or schedule, float32 vs float64.

**On this machine**, :func:`enable_compilation_cache` points JAX's on-disk compilation cache
at a folder and makes it keep every program (however quick to compile or small), so a
second identical sweep in a new process loads its executables instead of compiling them.
``optbench.run`` and the command line turn it on (:func:`enable_default_cache`), and the
drawing worker processes use the same folder.

The cache lives in ``$XDG_CACHE_HOME/optbench/jax``, i.e. ``~/.cache/optbench/jax`` when
``XDG_CACHE_HOME`` is unset; delete the folder to empty it. To opt out, set
``OPTBENCH_COMPILATION_CACHE=off`` in the environment (``OPTBENCH_COMPILATION_CACHE=DIR``
uses another folder), or JAX's own switch ``JAX_ENABLE_COMPILATION_CACHE=false``: JAX then
neither reads nor writes the cache, whatever folder it was given.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

__all__ = [
    "clear_programs",
    "default_cache_dir",
    "enable_compilation_cache",
    "enable_default_cache",
    "program",
]

#: The environment variable that turns the disk cache off (``off``, ``0``, ``false``) or
#: points it at another folder.
ENV = "OPTBENCH_COMPILATION_CACHE"

_PROGRAMS: dict[Hashable, Any] = {}
_LOCK = threading.Lock()


def program(key: Hashable, lower: Callable[[], Any]) -> tuple[Any, float, bool]:
    """The compiled program for ``key``: ``(compiled, compile_s, reused)``.

    The first call for a key runs ``lower().compile()`` (``lower`` returns a
    ``jax.stages.Lowered``) and keeps the result; later calls return it with
    ``compile_s = 0`` and ``reused = True``. :func:`program_id` names it in meta.json.
    """
    with _LOCK:
        found = _PROGRAMS.get(key)
    if found is not None:
        return found, 0.0, True
    t0 = time.perf_counter()
    compiled = lower().compile()
    seconds = time.perf_counter() - t0
    with _LOCK:
        _PROGRAMS[key] = compiled
    return compiled, seconds, False


def program_id(key: Hashable) -> str:
    """A short stable name of a program key (``meta.json``'s ``groups[i].program``): groups
    with the same name ran the same compiled program."""
    import hashlib

    return hashlib.sha1(repr(key).encode()).hexdigest()[:10]


def clear_programs() -> None:
    """Forget the compiled programs of this process (the disk cache is kept)."""
    with _LOCK:
        _PROGRAMS.clear()


def enable_default_cache() -> bool:
    """Turn the disk cache on as ``optbench.run`` does: in :func:`default_cache_dir`, unless
    the environment opts out (see the module docstring). Returns whether it is on."""
    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in ("off", "0", "false", "no"):
        return False
    enable_compilation_cache(setting or None)
    return True


def default_cache_dir() -> Path:
    """The cache folder: ``$XDG_CACHE_HOME/optbench/jax`` (default ``~/.cache/optbench/jax``)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "optbench" / "jax"


def enable_compilation_cache(folder: str | None = None) -> None:
    """Turn on JAX's persistent compilation cache in ``folder`` (default:
    :func:`default_cache_dir`), keeping every compiled program whatever its size or
    compile time. JAX creates the folder when it first writes to it.

    Example::

        from optbench.compilation import enable_compilation_cache
        enable_compilation_cache()  # later jits of the same programs load from disk
    """
    import jax

    jax.config.update("jax_compilation_cache_dir", folder or str(default_cache_dir()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
