"""The catalogue of analytic loss surfaces.

Each built-in surface is one TOML file in ``surfaces/`` (shipped inside the wheel as
``optbench/_catalogue/surfaces``): a formula over the coordinates and parameters, compiled
safely by :mod:`optbench.problems.surfaces.formula`, or a built-in generator
(``kind = "quadratic_nd"``).
Extra folders of such files can be loaded with :func:`catalogue`, and Python functions
added with :func:`register`.

Example:
  >>> import jax.numpy as jnp
  >>> from optbench import surfaces
  >>> s = surfaces.get("rosenbrock")
  >>> s.dim, s.start.tolist(), s.min_value
  (2, [[-1.2, 1.0]], 0.0)
  >>> round(float(s.fn(jnp.array([-1.2, 1.0]))), 4)
  24.2
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from optbench import validate
from optbench._errors import ConfigError, closest
from optbench.problems.surfaces.files import read_cached
from optbench.problems.surfaces.surface import Surface, SurfaceSpec, make_surface

__all__ = [
    "Surface",
    "SurfaceSpec",
    "builtin_folder",
    "catalogue",
    "get",
    "names",
    "register",
    "unregister",
]

_REGISTERED: dict[str, SurfaceSpec] = {}


def builtin_folder() -> Path:
    """The folder of the built-in surface files: inside the installed package, else the checkout."""
    package = Path(__file__).resolve().parents[2]  # the optbench package
    installed = package / "_catalogue" / "surfaces"
    return installed if installed.is_dir() else package.parent / "surfaces"


def _read_folder(folder: Path, known: Mapping[str, SurfaceSpec]) -> dict[str, SurfaceSpec]:
    """The ``*.toml`` files of ``folder``; a name already in ``known`` (or twice) is an error."""
    if not folder.is_dir():
        raise ConfigError(
            "surface folder not found; give an existing folder of surface files (*.toml)",
            file=str(folder),
        )
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise ConfigError(
            "the folder holds no surface files; add NAME.toml files to it", file=str(folder)
        )
    specs: dict[str, SurfaceSpec] = {}
    for path in files:
        spec = read_cached(path)
        other = specs.get(spec.name) or known.get(spec.name)
        if other is not None:
            raise ConfigError(
                f"the surface '{spec.name}' is already defined in {other.origin}; rename it",
                key="name",
                file=str(path),
            )
        specs[spec.name] = spec
    return specs


@functools.cache
def _builtins() -> dict[str, SurfaceSpec]:
    return _read_folder(builtin_folder(), {})


def catalogue(folders: Sequence[str | Path] = ()) -> dict[str, SurfaceSpec]:
    """All surface specs: built-ins, registered ones, and the files of ``folders``.

    Files are parsed once (cached by path, modification time and size).

    Raises:
      ConfigError: naming the file (and key) for a missing folder, a malformed file, a
        missing or unknown key, or a name defined twice.
    """
    if isinstance(folders, (str, Path)):
        folders = [folders]
    specs = {**_builtins(), **_REGISTERED}
    for folder in folders:
        specs.update(_read_folder(Path(folder), specs))
    return dict(sorted(specs.items()))


def names(folders: Sequence[str | Path] = ()) -> list[str]:
    """The sorted surface names of :func:`catalogue`."""
    return list(catalogue(folders))


def get(name: str, **params: Any) -> Surface:
    """The built-in or registered surface ``name`` built with ``params``.

    The same name and parameters return the same :class:`Surface` object.

    Raises:
      ConfigError: for an unknown name (with the closest names) or a bad parameter.

    Example:
      >>> get("quadratic", kappa=50.0).params
      {'kappa': 50.0, 'theta': 0.5235987755982988}
    """
    specs = {**_builtins(), **_REGISTERED}
    validate.choice(name, "surface", specs, what="surface")
    return specs[name].build(**params)


def register(
    name: str,
    fn: Callable[..., Any],
    *,
    dim: int,
    start: Any,
    plot_bounds: Any,
    minima: Sequence[tuple[Any, float]] = (),
    escape_bounds: Any = None,
    params: Mapping[str, Any] | None = None,
    description: str = "",
    reference: str = "",
    replace: bool = False,
) -> SurfaceSpec:
    """Add a Python-defined surface to the catalogue.

    Args:
      name: the catalogue name (must not clash with a built-in).
      fn: ``fn(x)``, or ``fn(x, **params)`` when ``params`` is given, for a 1-D array ``x``
        of length ``dim``; written with ``jax.numpy`` so it is jittable and differentiable.
      dim: number of coordinates (named x, y for 2-D, else x0, x1, ...).
      start: one point or a list of points.
      plot_bounds: one ``[lo, hi]`` per coordinate, or one pair for all.
      minima: ``(point, value)`` pairs; leave empty for a surface unbounded below.
      escape_bounds: default the plot box scaled 10x about its centre.
      params: parameter defaults; their types (int, float) are enforced by ``get``.
      replace: allow replacing an earlier :func:`register` of the same name.

    Example:
      >>> import jax.numpy as jnp
      >>> _ = register("bowl", lambda x, c: c * jnp.sum(x**2), dim=2, start=[1.0, 1.0],
      ...              plot_bounds=[-2, 2], minima=[([0, 0], 0.0)], params={"c": 1.0})
      >>> float(get("bowl", c=3.0).fn(jnp.ones(2)))
      6.0
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a surface name must be a non-empty string, got {name!r}", key="name")
    if name in _builtins():
        raise ConfigError(
            f"'{name}' is a built-in surface ({_builtins()[name].origin}); choose another name",
            key="name",
        )
    if name in _REGISTERED and not replace:
        raise ConfigError(
            f"the surface '{name}' is already registered; pass replace=True to replace it",
            key="name",
        )
    if not callable(fn):
        raise ConfigError(f"fn must be callable, got {fn!r}", key="fn")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"dim must be a positive integer, got {dim!r}", key="dim")
    defaults = dict(params or {})
    for key, value in defaults.items():
        if not isinstance(value, (bool, int, float)):
            raise ConfigError(
                f"the default of '{key}' must be a number or a bool, got {value!r}",
                key=f"params.{key}",
            )
    coords = ("x", "y") if dim == 2 else ("x",) if dim == 1 else tuple(f"x{i}" for i in range(dim))
    minima = list(minima)

    def builder(values: dict[str, Any]) -> Surface:
        bound = functools.partial(fn, **values) if values else fn
        return make_surface(
            name=name,
            fn=bound,
            coords=coords,
            start=start,
            plot_bounds=plot_bounds,
            escape_bounds=escape_bounds,
            minima=minima,
            params=values,
            description=description,
            reference=reference,
        )

    spec = SurfaceSpec(
        name=name,
        kind="python",
        dim=dim,
        coords=coords,
        params=defaults,
        builder=builder,
        description=description,
        reference=reference,
    )
    spec.build()  # check start, bounds and minima now
    _REGISTERED[name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a surface added with :func:`register` (built-ins cannot be removed)."""
    if name not in _REGISTERED:
        raise ConfigError(
            f"'{name}' is not a registered surface; {closest(name, _REGISTERED)}", key="name"
        )
    del _REGISTERED[name]
