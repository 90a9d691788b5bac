"""``[optimizer.LABEL]`` tables -> :class:`OptimizerConfig`: an algorithm, a grid, a schedule.

Example::

    [optimizer.heavy_ball]          # any label; the algorithm is `name` (default: the label)
    name = "momentum"
    learning_rate = { logspace = [1e-4, 1e-1], num = 16 }
    momentum = [0.5, 0.9]           # grids multiply
    schedule = { kind = "cosine", warmup = 100 }
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optax

from optbench import validate
from optbench._errors import ConfigError, closest

MAX_GRID = 1_000_000
"""The most values one grid axis may have (a sweep's total size is guarded by
:mod:`optbench.sizes`)."""
_GRID_FIX = "a finer grid than this cannot be run; use fewer values"


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer label: an algorithm, its hyperparameter grid and an optional schedule.

    ``grid`` maps each numeric hyperparameter to its values (one value when not a grid);
    ``switches`` holds the non-numeric ones (``centered = true``); ``schedule`` scales the
    learning rate.
    """

    label: str
    name: str
    grid: Mapping[str, tuple[float, ...]] = field(hash=False)
    switches: Mapping[str, Any] = field(default_factory=dict, hash=False)
    schedule: Mapping[str, Any] | None = field(default=None, hash=False)

    def points(self) -> list[dict[str, float]]:
        """The Cartesian product of the grids, the last hyperparameter varying fastest."""
        keys = list(self.grid)
        return [dict(zip(keys, v, strict=True)) for v in itertools.product(*self.grid.values())]

    def size(self) -> int:
        """The number of grid points."""
        return math.prod(len(v) for v in self.grid.values())  # exact: never wraps

    def point_values(self, name: str) -> np.ndarray:
        """The value of hyperparameter ``name`` at every grid point (in :meth:`points` order)."""
        keys = list(self.grid)
        axes = np.meshgrid(*[np.asarray(self.grid[k], np.float64) for k in keys], indexing="ij")
        return axes[keys.index(name)].ravel()

    def traced(self) -> list[str]:
        """The hyperparameters passed to the program as arrays, one value per run: those
        with a grid, and the learning rate (a new one reuses the compiled program). The
        others are compiled in: a traced ``b1`` or ``b2`` turns the scalar ``b**t`` of the
        bias correction into one power per run and step, which made the 1,024-run Adam
        sweep 4x slower (0.025 -> 0.097 s, measured); a zero learning rate never runs."""
        return [
            k for k, v in self.grid.items() if len(v) > 1 or (k == "learning_rate" and v[0] != 0.0)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The resolved table (what ``config.toml`` holds)."""
        d: dict[str, Any] = {"name": self.name}
        for k, v in self.grid.items():
            d[k] = v[0] if len(v) == 1 else list(v)
        d.update(self.switches)
        if self.schedule is not None:
            d["schedule"] = dict(self.schedule)
        return d

    def factory(
        self, total_steps: int
    ) -> Callable[[Mapping[str, Any]], optax.GradientTransformation]:
        """A function from the traced hyperparameters (:meth:`traced`) to the optimizer.

        The traced values are the program's arguments, so the whole grid is one program and
        another learning rate reuses it; hyperparameters fixed at 0 are compiled in. A
        schedule multiplies the (traced) learning rate.
        """
        from optbench import optimizers, schedules

        multiplier = (
            schedules.from_config(self.schedule, total_steps) if self.schedule is not None else None
        )
        traced = set(self.traced())
        constants = {k: v[0] for k, v in self.grid.items() if k not in traced}
        name, switches = self.name, dict(self.switches)

        def make(hp: Mapping[str, Any]) -> optax.GradientTransformation:
            hp = {**constants, **hp}
            if multiplier is not None:
                lr = hp["learning_rate"]
                hp["learning_rate"] = lambda count: lr * multiplier(count)
            return optimizers.get(name, **hp, **switches)

        return make


def parse_optimizer(label: str, spec: Any) -> OptimizerConfig:
    """Validate one ``[optimizer.LABEL]`` table (errors are keyed ``optimizer.LABEL...``)."""
    from optbench import optimizers

    key = f"optimizer.{label}"
    if not isinstance(spec, Mapping):
        raise ConfigError("must be a table of hyperparameters", key=key)
    spec = dict(spec)
    name = spec.pop("name", label)
    if not isinstance(name, str):
        raise ConfigError("must be a string such as 'adam'", key=f"{key}.name")
    schedule = spec.pop("schedule", None)
    try:
        defaults = optimizers.defaults(name)
    except ConfigError as err:
        where = f"{key}.name" if name != label else key  # the key that named it
        raise ConfigError(
            err.message, key=where if err.key in (None, "name") else f"{where}.{err.key}"
        ) from None
    if "learning_rate" not in defaults:  # optax:chain, optax:clip, optax:identity, ...
        raise ConfigError(
            f"{name} is not an optimizer: it takes no learning_rate (what a sweep tunes and "
            "selects by); name an optimizer, e.g. 'adam' or 'optax:lion'",
            key=f"{key}.name" if name != label else key,
        )
    grid: dict[str, tuple[float, ...]] = {}
    switches: dict[str, Any] = {}
    for hp, value in spec.items():
        if hp not in defaults:
            raise ConfigError(
                f"{name} has no hyperparameter {hp!r}; " + closest(hp, defaults), key=f"{key}.{hp}"
            )
        default = defaults[hp]
        if validate.is_number(default) or default is None:
            grid[hp] = parse_grid(value, f"{key}.{hp}")
        elif isinstance(value, (list, Mapping)):
            raise ConfigError(
                f"only numeric hyperparameters can be grids; {hp} is {type(default).__name__}",
                key=f"{key}.{hp}",
            )
        elif type(value) is not type(default):
            raise ConfigError(
                f"must be a {type(default).__name__}, got {value!r}", key=f"{key}.{hp}"
            )
        else:
            switches[hp] = value
    # Resolve: every numeric default becomes an explicit (one-point) grid.
    full = {
        hp: grid.get(hp, (float(v),))
        for hp, v in defaults.items()
        if validate.is_number(v) or hp in grid
    }
    full_switches = {
        hp: switches.get(hp, v) for hp, v in defaults.items() if hp not in full and v is not None
    }
    opt = OptimizerConfig(label, name, full, full_switches, parse_schedule(schedule, key))
    try:  # every value of every axis at once; the optimizer is built once, not per point
        optimizers.validate(name, opt.grid, opt.switches)
    except ConfigError as err:
        raise err.within(key=key) from None
    return opt


def parse_schedule(value: Any, key: str) -> Mapping[str, Any] | None:
    """A ``schedule = { kind = ..., ... }`` table, checked against a nominal 1,000 steps
    (each problem's own step count is checked by the config)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or "kind" not in value:
        raise ConfigError(
            'must be a table with a kind, e.g. { kind = "cosine", warmup = 100 }',
            key=f"{key}.schedule",
        )
    from optbench import schedules

    try:
        schedules.from_config(value, total_steps=1000)
    except ConfigError as err:
        raise err.within(key=f"{key}.schedule") from None
    return dict(value)


def parse_grid(value: Any, key: str) -> tuple[float, ...]:
    """A number, a list of numbers, or ``{logspace|linspace = [a, b], num = n}``."""
    if validate.is_number(value):
        return (float(value),)
    if isinstance(value, list):
        if not value or not all(validate.is_number(v) for v in value):
            raise ConfigError(f"a grid must be a non-empty list of numbers, got {value!r}", key=key)
        validate.integer(
            len(value), key, maximum=MAX_GRID, subject="a grid's length", fix=_GRID_FIX
        )
        return tuple(float(v) for v in value)
    if isinstance(value, Mapping):
        kinds = [k for k in ("logspace", "linspace") if k in value]
        extra = set(value) - {"logspace", "linspace", "num"}
        if len(kinds) != 1 or extra or "num" not in value:
            raise ConfigError(
                "a range grid is { logspace = [a, b], num = n } or { linspace = [a, b], num = n }",
                key=key,
            )
        ends, num = value[kinds[0]], value["num"]
        if (
            not isinstance(ends, list)
            or len(ends) != 2
            or not all(validate.is_number(v) for v in ends)
            or not isinstance(num, int)
            or isinstance(num, bool)
            or num < 1
        ):
            raise ConfigError(
                f"{kinds[0]} takes two numbers [a, b] and num a positive integer", key=key
            )
        validate.integer(num, f"{key}.num", minimum=1, maximum=MAX_GRID, fix=_GRID_FIX)
        a, b = float(ends[0]), float(ends[1])
        if kinds[0] == "logspace":
            if a <= 0 or b <= 0:
                raise ConfigError(
                    "logspace end points are the values themselves and must be > 0, "
                    "e.g. logspace = [1e-4, 1e-1]",
                    key=key,
                )
            return tuple(float(v) for v in np.geomspace(a, b, num))
        return tuple(float(v) for v in np.linspace(a, b, num))
    raise ConfigError(f"must be a number or a grid, got {value!r}", key=key)
