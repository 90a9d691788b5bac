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
task parameters other than the regularisation values, switches or schedule, float32 vs
float64. A problem's optimizers share one program (the engine hands them over together:
:meth:`optbench.problems.base.Problem.run_together`), so adding or removing an optimizer,
or a change that recompiles one, recompiles the program of each problem it runs on.

**Ahead of time**, :func:`prepare` compiles a batch's program without running it (under
:func:`only_compile` the problem's ``run`` stops once its program is ready): the local
executor compiles the next batches in a background thread while the current one runs (XLA
compiles with the GIL released; two digits CNN programs compiled in 8.7 s in two threads
against 16.6 s one after the other on a 2-core machine). Two threads asking for the same
key wait for one compile; the compile time is reported by the first run that uses it.

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

import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

__all__ = [
    "clear_programs",
    "default_cache_dir",
    "enable_compilation_cache",
    "enable_default_cache",
    "program",
]

LLVM_O1 = {"xla_backend_optimization_level": 1}
"""XLA compiler options: LLVM's -O1 instead of the default -O2, a cheaper compile. For the
programs that run once (the tasks' initialisation, the gradient flow's measurement, the
adding task's evaluation sets) and those whose time goes to library matmuls (the CNN's and
logistic regression's training); each user gives its measurement."""

#: The environment variable that turns the disk cache off (``off``, ``0``, ``false``) or
#: points it at another folder.
ENV = "OPTBENCH_COMPILATION_CACHE"

_PROGRAMS: dict[Hashable, list] = {}  # key -> [compiled, compile_s, reported]
_PENDING: dict[Hashable, Future] = {}  # keys being compiled by some thread
_LOCK = threading.Lock()
_ONLY = contextvars.ContextVar("optbench_only_compile", default=False)
_LOWERED = threading.Condition()
_N_LOWERED = [0]


class Compiled(Exception):
    """Raised by :func:`program` under :func:`only_compile` once the program is ready."""


@contextlib.contextmanager
def only_compile() -> Iterator[None]:
    """In this block (this thread), :func:`program` compiles and then raises
    :class:`Compiled` instead of returning: the caller's run stops before it starts."""
    token = _ONLY.set(True)
    try:
        yield
    finally:
        _ONLY.reset(token)


def prepare(run: Callable[[], Any]) -> None:
    """Call ``run`` (a problem's ``run`` of a batch) only as far as its program is compiled
    and kept here; errors other than a compile's are left to the real run."""
    with only_compile():
        try:
            run()
        except Compiled:
            pass


def program(
    key: Hashable,
    lower: Callable[[], Any],
    *,
    last: bool = True,
    options: dict[str, Any] | None = None,
) -> tuple[Any, float, bool]:
    """The compiled program for ``key``: ``(compiled, compile_s, reused)``.

    The first call for a key runs ``lower().compile()`` (``lower`` returns a
    ``jax.stages.Lowered``) and keeps the result; later calls return it with
    ``compile_s = 0`` and ``reused = True`` (but the first run of a program compiled ahead
    by :func:`prepare` reports its compile time). :func:`program_id` names it in meta.json.
    A key of None compiles without keeping the program. ``last=False``: the run needs more
    programs after this one, so :func:`only_compile` does not stop it here. ``options``: XLA
    compiler options for this program (``Lowered.compile(compiler_options=...)``).
    """
    only = _ONLY.get() and last
    if key is None:
        t0 = time.perf_counter()
        compiled = lower().compile(options)
        if only:
            raise Compiled
        return compiled, time.perf_counter() - t0, False
    with _LOCK:
        entry = _PROGRAMS.get(key)
        waiting = _PENDING.get(key) if entry is None else None
        owner = entry is None and waiting is None
        if owner:
            waiting = _PENDING[key] = Future()
    if owner:
        try:
            t0 = time.perf_counter()
            lowered = lower()
            if last:
                _count_lowered()
            entry = [lowered.compile(options), time.perf_counter() - t0, False]
        except BaseException as err:
            with _LOCK:
                _forget_pending(key, waiting)
            waiting.set_exception(err)  # type: ignore[union-attr]
            raise
        with _LOCK:
            _PROGRAMS[key] = entry
            _forget_pending(key, waiting)
        waiting.set_result(entry)  # type: ignore[union-attr]
    elif entry is None:
        entry = waiting.result()  # type: ignore[union-attr]
    if only:
        raise Compiled
    with _LOCK:
        first, entry[2] = not entry[2], True
    return entry[0], entry[1] if first else 0.0, not first


def lowered() -> int:
    """How many programs (a run's last, :func:`program`'s ``last``) this process has
    lowered: a thread can wait for the next one (:func:`wait_lowered`)."""
    return _N_LOWERED[0]


def wait_lowered(after: int, stop: threading.Event) -> None:
    """Return once more than ``after`` programs were lowered (:func:`lowered`), or ``stop``
    is set."""
    with _LOWERED:
        while _N_LOWERED[0] <= after and not stop.is_set():
            _LOWERED.wait(0.05)


def _count_lowered() -> None:
    with _LOWERED:
        _N_LOWERED[0] += 1
        _LOWERED.notify_all()


def program_id(key: Hashable) -> str:
    """A short stable name of a program key (``meta.json``'s ``groups[i].program``): groups
    with the same name ran the same compiled program."""
    import hashlib

    return hashlib.sha1(repr(key).encode()).hexdigest()[:10]


def _forget_pending(key: Hashable, waiting: Any) -> None:
    # only our own entry: clear_programs may have dropped it and another thread added its own
    if _PENDING.get(key) is waiting:
        del _PENDING[key]


def clear_programs() -> None:
    """Forget the compiled programs of this process (the disk cache is kept)."""
    with _LOCK:
        _PROGRAMS.clear()
        _PENDING.clear()


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
