"""JAX's persistent compilation cache, as ``optbench run`` uses it.

:func:`enable_compilation_cache` points JAX's on-disk compilation cache at a folder and
makes it keep every program (however quick to compile or small), so a second identical
sweep loads its executables instead of compiling them. The command line turns it on before
a sweep and the drawing worker processes turn on the same folder; the library itself
(``optbench.run``) never does, so importing optbench changes no JAX setting.

The cache lives in ``$XDG_CACHE_HOME/optbench/jax``, i.e. ``~/.cache/optbench/jax`` when
``XDG_CACHE_HOME`` is unset; delete the folder to empty it. To opt out, set JAX's own switch
``JAX_ENABLE_COMPILATION_CACHE=false`` in the environment (or
``jax.config.update("jax_enable_compilation_cache", False)``): JAX then neither reads nor
writes the cache, whatever folder it was given.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir", "enable_compilation_cache"]


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
