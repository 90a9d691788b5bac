"""Reading one surface file (TOML) into a :class:`~optbench.problems.surfaces.surface.SurfaceSpec`.

Keys of a surface file:

- ``name`` (required), ``description`` and ``reference`` (one line each);
- ``formula`` over the ``coords`` and the ``[params]``, e.g. ``"(a - x)**2 + b*(y - x**2)**2"``
  with ``coords = ["x", "y"]``; or ``kind = "quadratic_nd"``, a built-in generator that
  supplies the coordinates, the minima and a default start itself;
- ``[params]``: name = default number; optional ``param_bounds = { kappa = [1, inf] }``;
- ``plot_bounds``: one ``[lo, hi]`` per coordinate, or one pair for all;
  ``escape_bounds``: the same, default the plot box scaled 10x about its centre;
- ``start``: one point or a list of points;
- ``[[minima]]``: ``point``, ``value`` and optionally ``smooth = false`` where the function
  is not differentiable; none for a surface unbounded below.

Values in ``start``, the bounds and ``minima`` may be numbers or formulas over the
parameters (``point = ["a", "a**2"]``). The file is checked completely when it is read,
by building the surface at its default parameters.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from optbench import validate
from optbench._errors import ConfigError
from optbench.problems.surfaces.formula import compile_formula, evaluate
from optbench.problems.surfaces.generators import GENERATORS
from optbench.problems.surfaces.surface import Surface, SurfaceSpec, make_surface

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_COMMON = {"name", "description", "reference", "params", "param_bounds"}
_COMMON |= {"plot_bounds", "escape_bounds", "start"}
_FORMULA_KEYS = _COMMON | {"formula", "coords", "minima"}
_KIND_KEYS = _COMMON | {"kind"}
_MINIMUM_KEYS = {"point", "value", "smooth"}


# Errors raised while a file is read carry no file: read_surface_file adds it (the builders
# run again later, for other parameter values, so they name the file themselves).


def _string(data: dict, key: str, *, required: bool = True, one_line: bool = False) -> str:
    value = validate.required(data, key) if required else data.get(key, "")
    value = validate.string(value, key, fix="put it in quotes")
    if one_line and "\n" in value.strip():
        raise ConfigError("expected one line; shorten it", key=key)
    return value.strip()


def _params(data: dict) -> dict[str, Any]:
    raw = validate.table(data.get("params", {}), "params", example="[params] a = 1.0")
    for name, value in raw.items():
        validate.number(value, f"params.{name}", expected=True)
    return dict(raw)


def _param_bounds(data: dict, params: dict[str, Any]) -> dict[str, tuple]:
    raw = validate.table(
        data.get("param_bounds", {}),
        "param_bounds",
        example="param_bounds = { kappa = [1, inf] } (name = [lo, hi])",
    )
    bounds = {}
    for name, pair in raw.items():
        key = f"param_bounds.{name}"
        validate.choice(name, key, params, what="parameter")
        ok = isinstance(pair, list) and len(pair) == 2 and all(map(validate.is_number, pair))
        if not ok or not pair[0] <= pair[1]:
            raise ConfigError(f"expected [lo, hi] with lo <= hi, got {pair!r}", key=key)
        if not pair[0] <= params[name] <= pair[1]:
            raise ConfigError(f"the default {name} = {params[name]} lies outside {pair}", key=key)
        bounds[name] = (float(pair[0]), float(pair[1]))
    return bounds


def _values(raw: Any, params: dict, file: str, key: str) -> Any:
    """Numbers stay, strings are evaluated over the params, lists are walked."""
    if isinstance(raw, list):
        return [_values(v, params, file, f"{key}[{i}]") for i, v in enumerate(raw)]
    if isinstance(raw, str):
        return evaluate(raw, params, file=file, key=key)
    if validate.is_number(raw):
        return float(raw)
    raise ConfigError(f"expected a number or a formula string, got {raw!r}", key=key, file=file)


def _minima_entries(data: dict) -> list[dict]:
    raw = data.get("minima", [])
    if not isinstance(raw, list):
        raise ConfigError("expected a list of { point = [...], value = ... }", key="minima")
    for i, entry in enumerate(raw):
        try:  # keys relative to the entry, then located under minima[i]
            validate.table(entry, None, example="{ point = [...], value = ... }")
            validate.keys(entry, _MINIMUM_KEYS)
            for k in ("point", "value"):
                validate.required(entry, k)
            validate.flag(entry.get("smooth", True), "smooth")
        except ConfigError as err:
            raise err.within(key=f"minima[{i}]") from None
    return raw


def _coords(data: dict) -> tuple[str, ...]:
    coords = validate.required(data, "coords", fix='add e.g. coords = ["x", "y"]')
    if not isinstance(coords, list) or not coords or not all(isinstance(c, str) for c in coords):
        raise ConfigError(
            f'expected a list of names, e.g. ["x", "y"], got {coords!r}', key="coords"
        )
    return tuple(coords)


def _formula_spec(data: dict, common: dict, file: str) -> SurfaceSpec:
    coords = _coords(data)
    params = {k: float(v) for k, v in _params(data).items()}
    formula = _string(data, "formula")
    minima = _minima_entries(data)
    for key in ("start", "plot_bounds"):
        validate.required(data, key)

    def builder(values: dict[str, Any]) -> Surface:
        fn = compile_formula(formula, coords, values, file=file)
        points = [
            _values(m["point"], values, file, f"minima[{i}].point") for i, m in enumerate(minima)
        ]
        mins = [
            (p, _values(m["value"], values, file, f"minima[{i}].value"))
            for i, (p, m) in enumerate(zip(points, minima, strict=True))
        ]
        return make_surface(
            fn=fn,
            coords=coords,
            start=_values(data["start"], values, file, "start"),
            plot_bounds=_values(data["plot_bounds"], values, file, "plot_bounds"),
            escape_bounds=(
                None
                if "escape_bounds" not in data
                else _values(data["escape_bounds"], values, file, "escape_bounds")
            ),
            minima=mins,
            minima_smooth=[m.get("smooth", True) for m in minima],
            params=values,
            file=file,
            **common,
        )

    return SurfaceSpec(
        kind="formula",
        dim=len(coords),
        coords=coords,
        params=params,
        builder=builder,
        formula=formula,
        param_bounds=_param_bounds(data, params),
        **common,
        file=Path(file),
    )


def _kind_spec(data: dict, common: dict, file: str) -> SurfaceSpec:
    kind = validate.choice(_string(data, "kind"), "kind", GENERATORS, what="generator")
    generator = GENERATORS[kind]
    params = dict(generator.params)
    for name, value in _params(data).items():
        key = f"params.{name}"
        validate.choice(name, key, params, what="parameter", subject=f"generator '{kind}'")
        if isinstance(params[name], int):
            validate.integer(value, key, fix="write it without a decimal point")
        params[name] = value
    validate.required(data, "plot_bounds", fix="add one [lo, hi] pair")

    def builder(values: dict[str, Any]) -> Surface:
        gen = generator.make(values)
        dim = len(gen.coords)
        escape = data.get("escape_bounds")
        return make_surface(
            fn=gen.fn,
            coords=gen.coords,
            start=gen.start if "start" not in data else data["start"],
            plot_bounds=validate.bounds(data["plot_bounds"], dim, key="plot_bounds", file=file),
            escape_bounds=None
            if escape is None
            else validate.bounds(escape, dim, key="escape_bounds", file=file),
            minima=gen.minima,
            params=values,
            file=file,
            **common,
        )

    try:
        defaults = builder(params)
    except ConfigError as err:
        raise err.within(key=None if err.file else "params", file=file) from None
    spec = SurfaceSpec(
        kind=kind,
        dim=defaults.dim,
        coords=defaults.coords,
        params=params,
        builder=builder,
        param_bounds=_param_bounds(data, params),
        **common,
        file=Path(file),
    )
    spec._cache[tuple(params.items())] = defaults
    return spec


def read_surface_file(path: Path) -> SurfaceSpec:
    """Parse and check one surface file; every error names the file and the key."""
    file = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML ({err}); fix the syntax", file=file) from None
    except OSError as err:
        raise ConfigError(f"cannot read the file ({err.strerror})", file=file) from None
    try:
        spec = _spec(data, file)
        spec.build()  # check everything now, at the default parameters
    except ConfigError as err:
        raise err.within(file=file) from None
    return spec


def _spec(data: dict, file: str) -> SurfaceSpec:
    if "formula" in data and "kind" in data:
        raise ConfigError("give either 'formula' or 'kind', not both", key="kind")
    allowed = _KIND_KEYS if "kind" in data else _FORMULA_KEYS
    unknown = [key for key in data if key not in allowed]
    if unknown and "kind" in data and unknown[0] in _FORMULA_KEYS:
        raise ConfigError(
            f"unknown key '{unknown[0]}'; a generated surface sets no '{unknown[0]}': "
            "the generator provides it",
            key=unknown[0],
        )
    validate.keys(data, allowed)
    if "kind" not in data:
        validate.required(
            data,
            "formula",
            fix=f'add formula = "..." (or kind = "..." for a built-in generator: '
            f"{', '.join(GENERATORS)})",
        )
    name = _string(data, "name")
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid name {name!r}; use letters, digits, '_' and '-', starting with a letter",
            key="name",
        )
    common = {
        "name": name,
        "description": _string(data, "description", required=False, one_line=True),
        "reference": _string(data, "reference", required=False, one_line=True),
    }
    return _kind_spec(data, common, file) if "kind" in data else _formula_spec(data, common, file)


_CACHE: dict[tuple[str, int, int], SurfaceSpec] = {}


def read_cached(path: Path) -> SurfaceSpec:
    """:func:`read_surface_file`, parsed once per (path, modification time, size)."""
    try:
        stat = path.stat()
    except OSError as err:
        raise ConfigError(f"cannot read the file ({err.strerror})", file=str(path)) from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    spec = _CACHE.get(key)
    if spec is None:
        spec = _CACHE[key] = read_surface_file(path)
    return spec
