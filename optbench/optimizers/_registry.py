"""The name -> factory registry behind :func:`optbench.optimizers.get`, including ``optax:NAME``."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import optax

from optbench._errors import ConfigError, closest
from optbench.optimizers import _base as B
from optbench.validate import choice

Factory = Callable[..., optax.GradientTransformation]
OPTAX_PREFIX = "optax:"
_OPTAX_FALLBACK_LR = 1e-3


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered optimizer: its factory, its hyperparameter defaults, a one-line summary."""

    factory: Factory
    defaults: dict[str, Any]
    description: str
    keywords: frozenset[str] | None = None  # accepted keywords; None: any (``**kwargs``)
    required: tuple[str, ...] = ()  # keywords without a default
    code: int | str = "optax"  # names the factory in program keys (:func:`code_of`)

    @property
    def checks_itself(self) -> bool:
        """True for optbench's own factories, which check their values when called."""
        return B.unchecked(self.factory) is not None


_REGISTRY: dict[str, Entry] = {}
_SERIAL = itertools.count()


def _ordered(defaults: Mapping[str, Any]) -> dict[str, Any]:
    out = {"learning_rate": defaults["learning_rate"]} if "learning_rate" in defaults else {}
    out.update((k, v) for k, v in defaults.items() if k != "learning_rate")
    return out


def _first_line(doc: str | None) -> str:
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def register(
    name: str,
    factory: Factory,
    defaults: Mapping[str, float | bool],
    *,
    description: str | None = None,
    overwrite: bool = False,
) -> None:
    """Add an optimizer under ``name`` so configs and :func:`get` can use it.

    Args:
      name: the registry name (not starting with ``optax:``, which is reserved).
      factory: any callable taking keyword hyperparameters and returning an
        ``optax.GradientTransformation`` (optax's own factories included).
      defaults: every hyperparameter with its default value; :func:`get` accepts exactly
        these keywords and fills in the ones not given.
      description: a one-line summary for ``optbench list optimizers`` (default: the first
        line of the factory's docstring).
      overwrite: replace an existing entry instead of raising ConfigError.

    Example:
      >>> import optax
      >>> from optbench import optimizers
      >>> optimizers.register("lion", optax.lion, {"learning_rate": 1e-4, "b1": 0.9, "b2": 0.99})
      >>> optimizers.defaults("lion")
      {'learning_rate': 0.0001, 'b1': 0.9, 'b2': 0.99}
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"optimizer names must be non-empty strings, got {name!r}", key="name")
    if name.startswith(OPTAX_PREFIX):
        raise ConfigError(
            f"{name}: names starting with {OPTAX_PREFIX!r} are reserved for optax's own "
            "optimizers; pick another name",
            key="name",
        )
    if name in _REGISTRY and not overwrite:
        raise ConfigError(
            f"optimizer {name!r} is already registered; pass overwrite=True to replace it "
            "or pick another name",
            key="name",
        )
    if not callable(factory):
        raise ConfigError(f"{name}: the factory must be callable, got {factory!r}", key="name")
    defaults = _ordered(defaults)
    B.check_all(name, defaults, defaults)
    summary = description or _first_line(factory.__doc__) or f"user optimizer {name}"
    _REGISTRY[name] = Entry(factory, defaults, summary, frozenset(defaults), code=next(_SERIAL))


def code_of(name: str) -> int | str:
    """What names the factory of optimizer ``name`` in a program key: ``"optax"`` for
    ``optax:NAME``, else the number of its registration in this process (a factory
    registered again under the same name, ``overwrite=True``, then never runs the programs
    compiled for its predecessor: they were reused before, with the old update rule)."""
    return _entry(name).code


def _optax_candidates() -> list[str]:
    """optax's optimizers: its lower-case factories that take a ``learning_rate``."""
    return [
        n
        for n in dir(optax)
        if not n.startswith("_") and n.islower() and "learning_rate" in _keywords(getattr(optax, n))
    ]


def _keywords(factory: Any) -> set[str]:
    try:
        return set(inspect.signature(factory).parameters) if callable(factory) else set()
    except (TypeError, ValueError):
        return set()


def _optax_entry(name: str) -> Entry:
    attr = name[len(OPTAX_PREFIX) :]
    factory = getattr(optax, attr, None) if attr and not attr.startswith("_") else None
    if not callable(factory):
        raise ConfigError(
            f"unknown optax optimizer {name!r}; {closest(attr, _optax_candidates())}",
            key="name",
        )
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = []
    keyword = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    accepted = None if any(p.kind is p.VAR_KEYWORD for p in params) else {p.name for p in keyword}
    required = [p.name for p in keyword if p.default is p.empty]
    defaults = {p.name: p.default for p in keyword if isinstance(p.default, bool | int | float)}
    if "learning_rate" in required or (
        "learning_rate" in (accepted or ()) and "learning_rate" not in defaults
    ):
        # optax leaves the learning rate without a (numeric) default; configs need one
        builtin = _REGISTRY.get(attr)
        lr = builtin.defaults.get("learning_rate") if builtin else None
        defaults["learning_rate"] = lr if lr is not None else _OPTAX_FALLBACK_LR
        required = [r for r in required if r != "learning_rate"]
    summary = f"optax.{attr}: {_first_line(factory.__doc__)}"
    keywords = None if accepted is None else frozenset(accepted)
    return Entry(factory, _ordered(defaults), summary, keywords, tuple(required))


def _entry(name: str) -> Entry:
    if isinstance(name, str) and name.startswith(OPTAX_PREFIX):
        return _optax_entry(name)
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown optimizer {name!r}; {closest(str(name), _REGISTRY)} "
            f"(or use 'optax:NAME' for one of optax's own)",
            key="name",
        ) from None


def _check_keywords(name: str, entry: Entry, given: Iterable[str]) -> None:
    """Every keyword in ``given`` is accepted, and every required one is among them."""
    given = list(given)
    if entry.keywords is not None:
        for key in given:
            choice(key, key, entry.keywords, what="hyperparameter", subject=name)
    for key in entry.required:
        if key not in given:
            raise ConfigError(
                f"{name}: {key} has no default and must be given, e.g. {key} = 1e-3", key=key
            )


def get(name: str, **hparams: Any) -> optax.GradientTransformation:
    """The optimizer ``name`` built with ``hparams``; missing hyperparameters take defaults.

    ``name`` is a registry name (see :func:`names`) or ``"optax:NAME"`` for
    ``getattr(optax, NAME)``, whose keywords are checked against its signature. Any numeric
    hyperparameter may be a traced JAX value (validation then skips it) and
    ``learning_rate`` may be a schedule ``count -> lr``. Each value is checked once: by
    optbench's own factories themselves, here for any other factory.

    Raises:
      ConfigError: unknown name or keyword (with the closest valid names), or an invalid
        concrete value (learning rate <= 0, a decay outside [0, 1), eps < 0, ...).

    Example:
      >>> from optbench import optimizers
      >>> opt = optimizers.get("adam", learning_rate=3e-4)
      >>> opt = optimizers.get("optax:adam", learning_rate=3e-4, b2=0.99)
    """
    entry = _entry(name)
    _check_keywords(name, entry, hparams)
    full = {**entry.defaults, **hparams}
    if not entry.checks_itself:
        B.check_all(name, full, entry.defaults)
    return entry.factory(**full)


def validate(
    name: str,
    grid: Mapping[str, Sequence[float] | np.ndarray],
    switches: Mapping[str, Any] | None = None,
) -> None:
    """Check a whole hyperparameter grid of ``name`` at once, building the optimizer once.

    ``grid`` maps hyperparameters to the values of one grid axis each; ``switches`` maps
    the non-numeric ones (``centered``, ``eps_in_sqrt``) to their values. Every value of
    every axis is checked with one vectorised check per axis (the same rules and messages
    as :func:`get`), so a grid of any size costs about as much as one point. The optimizer
    is then built once, at the first value of each axis, so that a factory's own checks
    (optax's, a user-registered factory's) run too. Use it instead of calling :func:`get`
    once per grid point.

    Raises:
      ConfigError: unknown name or keyword (with the closest valid names), a missing
        required keyword, an empty axis, or an invalid value anywhere in the grid (``key``
        is the hyperparameter; the message names the first bad value and its index).

    Example:
      >>> import numpy as np
      >>> import optbench
      >>> from optbench import optimizers
      >>> optimizers.validate("adam", {"learning_rate": np.geomspace(1e-4, 1e-1, 1024)})
      >>> optimizers.validate("rmsprop", {"decay": [0.9, 0.99]}, {"centered": True})
      >>> try:
      ...     optimizers.validate("momentum", {"momentum": [0.5, 0.9, 0.99, 1.0]})
      ... except optbench.ConfigError as err:
      ...     print(err.key, "|", err.message)  # doctest: +ELLIPSIS
      momentum | momentum: momentum must be in [0, 1), got 1.0 at index 3 of 4 values; use ...
    """
    entry = _entry(name)
    switches = dict(switches or {})
    for key in grid:
        if key in switches:
            raise ConfigError(
                f"{name}: {key} is given both as a grid and as a switch; give it once", key=key
            )
    _check_keywords(name, entry, [*grid, *switches])
    first: dict[str, Any] = {}
    for key, values in grid.items():
        axis = B.as_numbers(name, key, values)
        if axis.ndim != 1 or axis.size == 0:
            raise ConfigError(
                f"{name}: {key} needs a grid axis of one or more numbers, got {values!r}", key=key
            )
        B.check_value(name, key, axis, entry.defaults)  # all values at once
        first[key] = axis[0].item()
    full = {**entry.defaults, **first, **switches}
    B.check_all(name, {k: v for k, v in full.items() if k not in grid}, entry.defaults)
    # every value is checked: build once, without optbench's own checks a second time
    build = B.unchecked(entry.factory) or entry.factory
    built = build(**full)
    if not isinstance(built, optax.GradientTransformation):
        raise ConfigError(
            f"{name} is not an optimizer: it returns {type(built).__name__}, not an optax "
            "GradientTransformation",
            key="name",
        )


def names() -> list[str]:
    """The registered optimizer names: the built-ins in the design table's order, then others.

    ``optax:NAME`` names are accepted by :func:`get` too but are not listed.
    """
    return list(_REGISTRY)


def defaults(name: str) -> dict[str, Any]:
    """Every hyperparameter of ``name`` with its default, ``learning_rate`` first.

    For ``optax:NAME`` these are the numeric and boolean defaults of optax's signature,
    plus ``learning_rate`` where optax gives it none: the default of optbench's optimizer
    of the same name if there is one, else 1e-3.

    Example:
      >>> from optbench import optimizers
      >>> optimizers.defaults("adam")
      {'learning_rate': 0.001, 'b1': 0.9, 'b2': 0.999, 'eps': 1e-08, 'bias_correction': True,
       'sqrt': True, 'weight_decay': 0.0}
    """
    return dict(_entry(name).defaults)


def describe(name: str) -> str:
    """A one-line summary of ``name`` (what ``optbench list optimizers`` prints)."""
    return _entry(name).description
