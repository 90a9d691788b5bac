"""Reading one surface file (TOML) into a :class:`~optbench._surface.SurfaceSpec`.

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

import math
import numbers
import re
import tomllib
from pathlib import Path
from typing import Any

from optbench._errors import ConfigError, closest
from optbench._generators import GENERATORS
from optbench._surface import Surface, SurfaceSpec, as_bounds, make_surface
from optbench.formula import compile_formula, evaluate

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_COMMON = {"name", "description", "reference", "params", "param_bounds"}
_COMMON |= {"plot_bounds", "escape_bounds", "start"}
_FORMULA_KEYS = _COMMON | {"formula", "coords", "minima"}
_KIND_KEYS = _COMMON | {"kind"}
_MINIMUM_KEYS = {"point", "value", "smooth"}


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _string(data: dict, key: str, file: str, *, required: bool = True, one_line: bool = False):
    if key not in data:
        if required:
            raise ConfigError(f"missing key '{key}'; add it", key=key, file=file)
        return ""
    value = data[key]
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {value!r}; put it in quotes", key=key, file=file)
    if one_line and "\n" in value.strip():
        raise ConfigError("expected one line; shorten it", key=key, file=file)
    return value.strip()


def _params(data: dict, file: str) -> dict[str, Any]:
    raw = data.get("params", {})
    if not isinstance(raw, dict):
        raise ConfigError(
            "expected a table of name = number, e.g. [params] a = 1.0", key="params", file=file
        )
    for name, value in raw.items():
        if not _is_number(value) or not math.isfinite(value):
            raise ConfigError(
                f"expected a finite number, got {value!r}", key=f"params.{name}", file=file
            )
    return dict(raw)


def _param_bounds(data: dict, params: dict[str, Any], file: str) -> dict[str, tuple]:
    raw = data.get("param_bounds", {})
    if not isinstance(raw, dict):
        raise ConfigError(
            "expected a table of name = [lo, hi], e.g. param_bounds = { kappa = [1, inf] }",
            key="param_bounds",
            file=file,
        )
    bounds = {}
    for name, pair in raw.items():
        key = f"param_bounds.{name}"
        if name not in params:
            raise ConfigError(
                f"'{name}' is not a parameter; {closest(name, params)}", key=key, file=file
            )
        ok = isinstance(pair, list) and len(pair) == 2 and all(_is_number(v) for v in pair)
        if not ok or not pair[0] <= pair[1]:
            raise ConfigError(f"expected [lo, hi] with lo <= hi, got {pair!r}", key=key, file=file)
        if not pair[0] <= params[name] <= pair[1]:
            raise ConfigError(
                f"the default {name} = {params[name]} lies outside {pair}", key=key, file=file
            )
        bounds[name] = (float(pair[0]), float(pair[1]))
    return bounds


def _values(raw: Any, params: dict, file: str, key: str) -> Any:
    """Numbers stay, strings are evaluated over the params, lists are walked."""
    if isinstance(raw, list):
        return [_values(v, params, file, f"{key}[{i}]") for i, v in enumerate(raw)]
    if isinstance(raw, str):
        return evaluate(raw, params, file=file, key=key)
    if _is_number(raw):
        return float(raw)
    raise ConfigError(f"expected a number or a formula string, got {raw!r}", key=key, file=file)


def _minima_entries(data: dict, file: str) -> list[dict]:
    raw = data.get("minima", [])
    if not isinstance(raw, list):
        raise ConfigError(
            "expected a list of { point = [...], value = ... }", key="minima", file=file
        )
    for i, entry in enumerate(raw):
        key = f"minima[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(
                f"expected {{ point = [...], value = ... }}, got {entry!r}", key=key, file=file
            )
        for k in entry:
            if k not in _MINIMUM_KEYS:
                raise ConfigError(
                    f"unknown key '{k}'; {closest(k, _MINIMUM_KEYS)}", key=f"{key}.{k}", file=file
                )
        for k in ("point", "value"):
            if k not in entry:
                raise ConfigError(f"missing key '{k}'; add it", key=f"{key}.{k}", file=file)
        if not isinstance(entry.get("smooth", True), bool):
            raise ConfigError("expected true or false", key=f"{key}.smooth", file=file)
    return raw


def _coords(data: dict, file: str) -> tuple[str, ...]:
    if "coords" not in data:
        raise ConfigError(
            'missing key \'coords\'; add e.g. coords = ["x", "y"]', key="coords", file=file
        )
    coords = data["coords"]
    if not isinstance(coords, list) or not coords or not all(isinstance(c, str) for c in coords):
        raise ConfigError(
            f'expected a list of names, e.g. ["x", "y"], got {coords!r}', key="coords", file=file
        )
    return tuple(coords)


def _formula_spec(data: dict, common: dict, file: str) -> SurfaceSpec:
    coords = _coords(data, file)
    params = {k: float(v) for k, v in _params(data, file).items()}
    formula = _string(data, "formula", file)
    minima = _minima_entries(data, file)
    for key in ("start", "plot_bounds"):
        if key not in data:
            raise ConfigError(f"missing key '{key}'; add it", key=key, file=file)

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
        param_bounds=_param_bounds(data, params, file),
        **common,
        file=Path(file),
    )


def _kind_spec(data: dict, common: dict, file: str) -> SurfaceSpec:
    kind = _string(data, "kind", file)
    if kind not in GENERATORS:
        raise ConfigError(
            f"unknown generator '{kind}'; {closest(kind, GENERATORS)}", key="kind", file=file
        )
    generator = GENERATORS[kind]
    params = dict(generator.params)
    for name, value in _params(data, file).items():
        if name not in params:
            raise ConfigError(
                f"generator '{kind}' has no parameter '{name}'; {closest(name, params)}",
                key=f"params.{name}",
                file=file,
            )
        if isinstance(params[name], int) and not isinstance(value, int):
            raise ConfigError(
                f"expected an integer, got {value!r}", key=f"params.{name}", file=file
            )
        params[name] = value
    if "plot_bounds" not in data:
        raise ConfigError(
            "missing key 'plot_bounds'; add one [lo, hi] pair", key="plot_bounds", file=file
        )

    def builder(values: dict[str, Any]) -> Surface:
        gen = generator.make(values)
        dim = len(gen.coords)
        escape = data.get("escape_bounds")
        return make_surface(
            fn=gen.fn,
            coords=gen.coords,
            start=gen.start if "start" not in data else data["start"],
            plot_bounds=as_bounds(data["plot_bounds"], dim, key="plot_bounds", file=file),
            escape_bounds=None
            if escape is None
            else as_bounds(escape, dim, key="escape_bounds", file=file),
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
        param_bounds=_param_bounds(data, params, file),
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
    if "formula" in data and "kind" in data:
        raise ConfigError("give either 'formula' or 'kind', not both", key="kind", file=file)
    allowed = _KIND_KEYS if "kind" in data else _FORMULA_KEYS
    for key in data:
        if key not in allowed:
            hint = closest(key, allowed)
            if "kind" in data and key in _FORMULA_KEYS:
                hint = f"a generated surface sets no '{key}': the generator provides it"
            raise ConfigError(f"unknown key '{key}'; {hint}", key=key, file=file)
    if "formula" not in data and "kind" not in data:
        raise ConfigError(
            'missing key \'formula\'; add formula = "..." (or kind = "..." for a built-in '
            f"generator: {', '.join(GENERATORS)})",
            key="formula",
            file=file,
        )
    name = _string(data, "name", file)
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid name {name!r}; use letters, digits, '_' and '-', starting with a letter",
            key="name",
            file=file,
        )
    common = {
        "name": name,
        "description": _string(data, "description", file, required=False, one_line=True),
        "reference": _string(data, "reference", file, required=False, one_line=True),
    }
    spec = _kind_spec(data, common, file) if "kind" in data else _formula_spec(data, common, file)
    spec.build()  # check everything now, at the default parameters
    return spec


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
