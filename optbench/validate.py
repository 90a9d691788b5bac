"""The one validation vocabulary: number, integer, choice, flag, string, table, keys, points,
bounds; and, for values whose type a schema or a signature already settles, of_type, in_range
and required.

Every module that reads user input (a config, a surface file, task parameters, optimizer
hyperparameters, a schedule) checks it with these functions, so the same mistake gets the
same one-line answer everywhere. Each check returns the clean value or raises
:class:`optbench.ConfigError` with ``key`` set and a message that says what is wrong and how
to fix it; outer layers add the file and the enclosing key with
:meth:`~optbench.ConfigError.within`.

``subject`` (optional) is the text the message starts with when the key alone would not say
whose value it is, e.g. ``"task 'adding': length"``; by default messages start with "must".

Example:
    >>> number(0.5, "dropout", minimum=0.0, maximum=1.0, open_max=True)
    0.5
    >>> integer(0, "steps", minimum=1)
    Traceback (most recent call last):
    ...
    optbench._errors.ConfigError: steps: must be a positive integer, got 0
    >>> choice("adma", "name", ["adam", "sgd"])
    Traceback (most recent call last):
    ...
    optbench._errors.ConfigError: name: unknown name 'adma'; did you mean 'adam'?
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from optbench._errors import ConfigError, closest

INT32_MAX = 2**31 - 1
"""The largest count the engine's programs hold (steps, ``stop_step``: 32-bit integers).
:func:`integer` refuses any value outside the 32-bit range unless given wider bounds."""
UINT32_MAX = 2**32 - 1
"""The largest seed (seeds are unsigned 32-bit integers in the programs)."""

__all__ = [
    "INT32_MAX",
    "UINT32_MAX",
    "bounds",
    "choice",
    "flag",
    "in_range",
    "integer",
    "is_number",
    "keys",
    "number",
    "of_type",
    "points",
    "range_text",
    "required",
    "step_count",
    "string",
    "table",
]


def is_number(value: Any) -> bool:
    """A real number that is not a bool (Python or numpy scalar)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _lead(subject: str | None) -> str:
    return f"{subject} must" if subject else "must"


def _inside(
    value: Any, minimum: float | None, maximum: float | None, open_min: bool, open_max: bool
) -> bool:
    return bool(
        (minimum is None or (value > minimum if open_min else value >= minimum))
        and (maximum is None or (value < maximum if open_max else value <= maximum))
    )


def range_text(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    open_min: bool = False,
    open_max: bool = False,
    repr_bounds: bool = False,
) -> str:
    """``"> 0"``, ``">= 0"``, ``"in [0, 1)"``, ``"<= 5"`` or ``""`` for no bound.

    The bounds are written short (``:g``), or with ``repr_bounds`` as Python writes them:
    ``range_text(0.0, 1.0, open_max=True, repr_bounds=True)`` is ``"in [0.0, 1.0)"``.
    """

    def shown(bound: float) -> str:
        return repr(bound) if repr_bounds else f"{bound:g}"

    if minimum is not None and maximum is not None:
        lo, hi = shown(minimum), shown(maximum)
        return f"in {'(' if open_min else '['}{lo}, {hi}{')' if open_max else ']'}"
    if minimum is not None:
        return f"{'>' if open_min else '>='} {shown(minimum)}"
    if maximum is not None:
        return f"{'<' if open_max else '<='} {shown(maximum)}"
    return ""


def number(
    value: Any,
    key: str | None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_min: bool = False,
    open_max: bool = False,
    subject: str | None = None,
    fix: str | None = None,
    expected: bool = False,
    detail: bool = False,
    repr_bounds: bool = False,
) -> float:
    """A finite real number within the bounds (``open_*``: the bound itself excluded).

    Options of the message: ``expected`` phrases it "expected a finite number ..., got V",
    the style of the file checks (:func:`points`, :func:`bounds`), rather than "must be";
    ``detail`` names only the condition that failed, "must be a number", "must be finite" or
    "must be >= 0" (as :func:`in_range`); ``repr_bounds``: see :func:`range_text`.

    Example:
        >>> number(float("nan"), "a", subject="surface 'rosenbrock': a", detail=True)
        Traceback (most recent call last):
        ...
        optbench._errors.ConfigError: a: surface 'rosenbrock': a must be finite, got nan
        >>> number("half", "params.c", expected=True)
        Traceback (most recent call last):
        ...
        optbench._errors.ConfigError: params.c: expected a finite number, got 'half'
    """
    rng = range_text(
        minimum, maximum, open_min=open_min, open_max=open_max, repr_bounds=repr_bounds
    )
    hint = fix or (f"give a value {rng}" if rng else None)
    tail = f"; {hint}" if hint else ""
    if expected:
        lead = f"{subject}: expected" if subject else "expected"
    else:
        lead = f"{_lead(subject)} be"
    numeric = is_number(value)
    finite = numeric and math.isfinite(float(value))
    inside = finite and _inside(float(value), minimum, maximum, open_min, open_max)
    if detail and not inside:
        what = "a number" if not numeric else "finite" if not finite else rng
        raise ConfigError(f"{lead} {what}, got {value!r}{tail}", key=key)
    if not inside:
        what = f"a finite number {rng}".rstrip()
        raise ConfigError(f"{lead} {what}, got {value!r}{tail}", key=key)
    return float(value)


def integer(
    value: Any,
    key: str | None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    subject: str | None = None,
    fix: str | None = None,
) -> int:
    """A whole number (not a bool, not a float such as ``2.0``) within the bounds.

    Without a ``maximum`` (a ``minimum``) the value must fit a signed 32-bit integer, what
    the engine's programs count with, so that a huge value is refused instead of wrapping.

    Example:
        >>> integer(3_000_000_000, "steps", minimum=1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        optbench._errors.ConfigError: steps: must be at most 2,147,483,647 (the engine ...
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if ok and ((maximum is None and value > INT32_MAX) or (minimum is None and value < -INT32_MAX)):
        bound = "at most" if value > 0 else "at least"
        raise ConfigError(
            f"{_lead(subject)} be {bound} {INT32_MAX if value > 0 else -INT32_MAX:,} (the "
            f"engine counts in 32-bit integers), got {value!r}" + (f"; {fix}" if fix else ""),
            key=key,
        )
    if not ok:
        rng = range_text(minimum, maximum)
        if maximum is not None and abs(maximum) >= 1000:  # 4,294,967,295, not 4.29497e+09
            rng = rng.replace(f"{maximum:g}", f"{maximum:,}")
        what = (
            "a positive integer"
            if (minimum, maximum) == (1, None)
            else f"an integer {rng}".rstrip()
        )
        raise ConfigError(
            f"{_lead(subject)} be {what}, got {value!r}".rstrip() + (f"; {fix}" if fix else ""),
            key=key,
        )
    return int(value)


def step_count(steps: int, unit: str = "steps") -> int:
    """A run's number of optimizer steps, which must fit the engine's 32-bit step counter
    (``unit``: the budget key that sets it, ``"steps"`` or ``"epochs"``)."""
    if steps > INT32_MAX:
        more = " or a larger batch_size" if unit == "epochs" else ""
        raise ConfigError(
            f"{steps:,} optimizer steps per run are more than the engine's 32-bit step counter "
            f"holds ({INT32_MAX:,}); use fewer {unit}{more}",
            key=unit,
        )
    return steps


def flag(value: Any, key: str | None, *, subject: str | None = None) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(
            f"{_lead(subject)} be true or false, got {value!r}; write {key} = true or false",
            key=key,
        )
    return bool(value)


def string(
    value: Any, key: str | None, *, subject: str | None = None, fix: str | None = None
) -> str:
    """A string (``fix``: the hint after the message, e.g. "put it in quotes")."""
    if not isinstance(value, str):
        raise ConfigError(
            f"{_lead(subject)} be a string, got {value!r}" + (f"; {fix}" if fix else ""), key=key
        )
    return value


def of_type(value: Any, key: str | None, want: type, *, subject: str | None = None) -> Any:
    """``value`` of the type a schema declares for it, returned unchanged: ``bool``; ``int``
    (not a bool); ``float`` (an int or a float, not a bool; infinities and NaN pass: bound
    them with :func:`in_range`); any other type by ``isinstance`` (``str``, ``list``, ...).
    These are the Python types TOML gives, so a numpy scalar is no ``int`` here.

    Example:
        >>> of_type(1.5, "warmup", int, subject="schedule cosine: warmup")
        Traceback (most recent call last):
        ...
        optbench._errors.ConfigError: warmup: schedule cosine: warmup must be int, got 1.5
    """
    if want is bool:
        ok = isinstance(value, bool)
    elif want is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif want is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, want)
    if not ok:
        raise ConfigError(f"{_lead(subject)} be {want.__name__}, got {value!r}", key=key)
    return value


def in_range(
    value: Any,
    key: str | None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_min: bool = False,
    open_max: bool = False,
    subject: str | None = None,
    fix: str | None = None,
) -> Any:
    """``value``, a number whose type is already settled (by :func:`of_type`, a signature, a
    generator's defaults), within the bounds; returned unchanged. The message names only the
    range. NaN lies in no range; a value that cannot be compared raises ``TypeError``.

    Example:
        >>> in_range(2, "every", minimum=0, open_min=True)
        2
        >>> in_range(-1, "warmup", minimum=0, subject="schedule cosine: warmup")
        Traceback (most recent call last):
        ...
        optbench._errors.ConfigError: warmup: schedule cosine: warmup must be >= 0, got -1
    """
    if not _inside(value, minimum, maximum, open_min, open_max):
        rng = range_text(minimum, maximum, open_min=open_min, open_max=open_max)
        raise ConfigError(
            f"{_lead(subject)} be {rng}, got {value!r}" + (f"; {fix}" if fix else ""), key=key
        )
    return value


def required(data: Mapping[str, Any], key: str, *, fix: str = "add it", prefix: str = "") -> Any:
    """``data[key]``; a missing key gets "missing key 'KEY'; FIX" (error key ``prefix + key``).

    Example:
        >>> required({"name": "bowl"}, "name")
        'bowl'
        >>> required({}, "coords", fix='add e.g. coords = ["x", "y"]')
        Traceback (most recent call last):
        ...
        optbench._errors.ConfigError: coords: missing key 'coords'; add e.g. coords = ["x", "y"]
    """
    if key not in data:
        raise ConfigError(f"missing key '{key}'; {fix}", key=prefix + key)
    return data[key]


def choice(
    value: Any, key: str | None, valid: Iterable[str], *, what: str = "name", subject: str = ""
) -> str:
    """One of ``valid``; a typo gets the closest valid names."""
    valid = list(valid)
    if value not in valid:
        lead = f"{subject}: " if subject else ""
        raise ConfigError(f"{lead}unknown {what} {value!r}; {closest(str(value), valid)}", key=key)
    return str(value)


def table(
    value: Any, key: str | None, *, example: str, subject: str | None = None
) -> Mapping[str, Any]:
    """A TOML table (a mapping)."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{_lead(subject)} be a table, e.g. {example}", key=key)
    return value


def keys(
    data: Mapping[str, Any], valid: Iterable[str], *, prefix: str = "", what: str = "key"
) -> None:
    """Every key of ``data`` must be in ``valid`` (an unknown one gets the closest names)."""
    valid = list(valid)
    for key in data:
        if key not in valid:
            raise ConfigError(f"unknown {what}; {closest(str(key), valid)}", key=prefix + str(key))


def points(value: Any, dim: int, *, key: str, file: str | None = None) -> np.ndarray:
    """One point ``[x, y]`` or a list of points ``[[x, y], ...]`` -> ``[n, dim]`` float64."""
    fix = f"write one point of {dim} numbers, or a list of such points"
    a = _floats(value, key, file, fix)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != dim or a.shape[0] == 0:
        raise ConfigError(
            f"expected points of {dim} numbers, got {value!r}; {fix}", key=key, file=file
        )
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"points must be finite, got {value!r}", key=key, file=file)
    return _frozen(a.copy())


def bounds(value: Any, dim: int, *, key: str, file: str | None = None) -> np.ndarray:
    """``[[lo, hi], ...]``, one pair per coordinate (or one pair for all) -> ``[dim, 2]``."""
    fix = f"write one [lo, hi] pair per coordinate ({dim}), or one pair for all"
    a = _floats(value, key, file, fix)
    if a.shape == (2,):
        a = a[None]
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] not in (1, dim):
        raise ConfigError(
            f"expected {dim} pairs [lo, hi], got {value!r}; {fix}", key=key, file=file
        )
    a = np.broadcast_to(a, (dim, 2)).copy()
    if not np.all(np.isfinite(a)) or not np.all(a[:, 0] < a[:, 1]):
        raise ConfigError(
            f"every pair [lo, hi] needs finite lo < hi, got {value!r}", key=key, file=file
        )
    return _frozen(a)


def _floats(value: Any, key: str, file: str | None, fix: str) -> np.ndarray:
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise ConfigError(f"expected numbers, got {value!r}; {fix}", key=key, file=file)
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"expected numbers, got {value!r}; {fix}", key=key, file=file) from None


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
