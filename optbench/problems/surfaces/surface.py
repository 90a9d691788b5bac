"""The Surface and SurfaceSpec types, and the checks every way of defining a surface shares."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optbench import validate
from optbench._errors import ConfigError, closest


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Surface:
    """An analytic loss surface ready to optimize.

    Attributes:
      name: catalogue name.
      fn: ``fn(x) -> scalar`` for a 1-D array ``x`` of length ``dim``; jittable,
        differentiable, vmappable, keeps the dtype of ``x``.
      dim: number of coordinates.
      coords: coordinate names (``("x", "y")``; ``("x0", "x1", ...)`` for generated ones).
      start: default start points, shape ``[n_starts, dim]``.
      plot_bounds: the box that shows the classic picture, shape ``[dim, 2]``.
      escape_bounds: leaving this box counts as diverged (or, for surfaces unbounded
        below, as escaped), shape ``[dim, 2]``.
      minima: known global minima as ``(point, value)`` pairs (float64); empty when the
        surface is unbounded below.
      params: the parameter values this surface was built with.
      description, reference: one line each.
      minima_smooth: per minimum, whether ``fn`` is differentiable there (Ackley's
        origin is not).

    Surfaces compare and hash by identity, so ``fn`` can key a compilation cache;
    :func:`optbench.surfaces.get` returns the same object for the same parameters.
    """

    name: str
    fn: Callable[[Any], Any]
    dim: int
    coords: tuple[str, ...]
    start: np.ndarray
    plot_bounds: np.ndarray
    escape_bounds: np.ndarray
    minima: list[tuple[np.ndarray, float]]
    params: dict[str, Any]
    description: str = ""
    reference: str = ""
    minima_smooth: tuple[bool, ...] = ()

    @property
    def min_value(self) -> float | None:
        """The lowest known minimum value, or None for a surface unbounded below."""
        return min((v for _, v in self.minima), default=None)

    @property
    def bounded_below(self) -> bool:
        """Whether the surface has a known minimum (saddles have none)."""
        return bool(self.minima)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Surface({self.name}({params}), dim={self.dim})"


@dataclass(frozen=True, eq=False)
class SurfaceSpec:
    """A catalogue entry: what a surface file (or :func:`register`) says, before building.

    ``build(**params)`` checks the parameters against ``params`` (the defaults) and
    returns the :class:`Surface`; the same parameters give the same object back.
    """

    name: str
    kind: str  # "formula", "python", or the name of a built-in generator
    dim: int  # at the default parameters
    coords: tuple[str, ...]  # at the default parameters
    params: Mapping[str, Any]  # defaults
    builder: Callable[[dict[str, Any]], Surface] = field(repr=False)
    file: Path | None = None
    description: str = ""
    reference: str = ""
    formula: str | None = None
    param_bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    _cache: dict[tuple, Surface] = field(default_factory=dict, repr=False)

    @property
    def origin(self) -> str:
        """Where this entry was defined: its file, or ``register()``."""
        return str(self.file) if self.file is not None else "register()"

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults updated with ``params``, each checked (names, types, ranges)."""
        values = dict(self.params)
        for name, value in params.items():
            if name not in self.params:
                if self.params:
                    fix = f"{closest(name, self.params)} (parameters: {', '.join(self.params)})"
                else:
                    fix = "it takes no parameters"
                raise ConfigError(
                    f"surface '{self.name}' has no parameter '{name}'; {fix}",
                    key=name,
                )
            values[name] = check_param(self.name, name, value, self.params[name])
            if name in self.param_bounds:
                lo, hi = self.param_bounds[name]
                if not lo <= values[name] <= hi:
                    raise ConfigError(
                        f"surface '{self.name}': {name} = {value!r} is out of range; "
                        f"use a value in [{lo}, {hi}]",
                        key=name,
                    )
        return values

    def build(self, **params: Any) -> Surface:
        """Build the surface with these parameter values (the others keep their defaults).

        Example:
          >>> from optbench import surfaces
          >>> surfaces.catalogue()["rosenbrock"].build(b=10.0).params
          {'a': 1.0, 'b': 10.0}
        """
        values = self.resolve(params)
        key = tuple(values.items())
        surface = self._cache.get(key)
        if surface is None:
            surface = self._cache[key] = self.builder(values)
        return surface


def check_param(surface: str, name: str, value: Any, default: Any) -> Any:
    """Check one parameter value against the type of its default; returns the clean value."""
    subject = f"surface '{surface}': {name}"
    if isinstance(default, bool):
        return validate.flag(value, name, subject=subject)
    if isinstance(default, numbers.Integral):
        fix = f"write it without a decimal point, e.g. {default}"
        return validate.integer(value, name, subject=subject, fix=fix)
    return validate.number(value, name, subject=subject, fix=f"e.g. {default}", detail=True)


def default_escape(plot_bounds: np.ndarray) -> np.ndarray:
    """The plot box scaled 10x about its centre."""
    centre = plot_bounds.mean(axis=1, keepdims=True)
    return _frozen(centre + 10.0 * (plot_bounds - centre))


def as_minima(
    value: Sequence[Any], dim: int, *, key: str, file: str | None
) -> list[tuple[np.ndarray, float]]:
    """``[(point, value), ...]`` -> the same with float64 points and float values."""
    minima = []
    for i, entry in enumerate(value):
        try:
            point, val = entry
        except (TypeError, ValueError):
            raise ConfigError(
                f"entry {i} should be a (point, value) pair, got {entry!r}", key=key, file=file
            ) from None
        p = validate.points(point, dim, key=f"{key}[{i}].point", file=file)
        if p.shape[0] != 1:
            raise ConfigError(f"expected one point, got {point!r}", key=f"{key}[{i}]", file=file)
        try:
            val = validate.number(val, f"{key}[{i}].value", subject="value")
        except ConfigError as err:
            raise err.within(file=file) from None
        minima.append((_frozen(p[0].copy()), float(val)))
    return minima


def check_inside(start: np.ndarray, escape: np.ndarray, *, key: str, file: str | None) -> None:
    """Every start point must lie inside the escape box (else every run stops at once)."""
    inside = np.all((start >= escape[:, 0]) & (start <= escape[:, 1]), axis=1)
    if not np.all(inside):
        bad = start[~inside][0].tolist()
        raise ConfigError(
            f"start point {bad} lies outside the escape box {escape.tolist()}; "
            "move it inside or widen escape_bounds",
            key=key,
            file=file,
        )


def check_minima(fn: Callable[[Any], Any], minima: Sequence[Any], *, file: str | None) -> None:
    """Each stated minimum must be the surface's value at its point (float64, 1e-6 relative):
    a wrong one would silently corrupt ``steps_to_tol`` and the contour levels.

    Surfaces that carry a numpy float64 twin of their function (``fn.numpy``: formulas and
    the built-in generators do) are evaluated with it: this runs whenever a surface is
    built, in every process, and dispatching jax operations one by one in float64 cost
    up to a tenth of a second per surface. Others (Python-registered) go through jax.
    """
    if not minima:
        return
    plain = getattr(fn, "numpy", None)
    for i, (point, value) in enumerate(minima):
        p = np.asarray(point, np.float64)
        if plain is not None:
            got = plain(p)
        else:
            with jax.enable_x64(True):
                got = float(fn(jnp.asarray(p)))
        if not abs(got - value) <= 1e-6 * max(1.0, abs(value)):
            raise ConfigError(
                f"the surface is {got:.10g} at this point, not {value:.10g}; "
                "fix the point or the value",
                key=f"minima[{i}]",
                file=file,
            )


def make_surface(
    *,
    name: str,
    fn: Callable[[Any], Any],
    coords: Sequence[str],
    start: Any,
    plot_bounds: Any,
    escape_bounds: Any,
    minima: Sequence[Any],
    params: Mapping[str, Any],
    description: str,
    reference: str,
    minima_smooth: Sequence[bool] = (),
    file: str | None = None,
) -> Surface:
    """Validate the pieces and assemble a :class:`Surface`."""
    dim = len(coords)
    start_a = validate.points(start, dim, key="start", file=file)
    plot = validate.bounds(plot_bounds, dim, key="plot_bounds", file=file)
    if escape_bounds is None:
        escape = default_escape(plot)
    else:
        escape = validate.bounds(escape_bounds, dim, key="escape_bounds", file=file)
    check_inside(start_a, escape, key="start", file=file)
    mins = as_minima(minima, dim, key="minima", file=file)
    check_minima(fn, mins, file=file)
    smooth = tuple(minima_smooth) or (True,) * len(mins)
    return Surface(
        name=name,
        fn=fn,
        dim=dim,
        coords=tuple(coords),
        start=start_a,
        plot_bounds=plot,
        escape_bounds=escape,
        minima=mins,
        params=dict(params),
        description=description,
        reference=reference,
        minima_smooth=smooth,
    )
