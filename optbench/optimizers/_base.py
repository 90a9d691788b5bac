"""Pieces shared by the optimizer families: learning rates, validation, weight decay, trees.

Every hyperparameter may be a Python number, a concrete array or a traced JAX value (the
engine builds one optimizer inside ``jax.jit``/``jax.vmap`` with tracers for a whole grid).
Validation therefore only looks at concrete values, and numbers are cast to each leaf's
dtype at the point of use so float32 parameters stay float32 and float64 stay float64.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from optbench._errors import ConfigError
from optbench.validate import flag as flag_value
from optbench.validate import is_number, range_text

Scalar = float | int | jax.Array | np.ndarray
Schedule = Callable[[jax.Array], jax.Array]
ScalarOrSchedule = Scalar | Schedule
PyTree = Any
F = TypeVar("F", bound=Callable[..., Any])

_INT32_MAX = np.iinfo(np.int32).max


# --------------------------------------------------------------------------- tracing helpers


def is_concrete(value: Any) -> bool:
    """True when ``value`` can be inspected in Python (not a tracer inside jit/vmap/grad)."""
    return not isinstance(value, jax.core.Tracer)


def is_zero(value: Any) -> bool:
    """True when ``value`` is concretely zero (a traced value never is: it may change)."""
    if callable(value) or not is_concrete(value):
        return False
    try:
        return bool(np.all(np.asarray(value) == 0))
    except (TypeError, ValueError):
        return False


def flag(value: Any) -> bool | jax.Array:
    """A structural switch (``centered``, ``eps_in_sqrt``): a Python bool when concrete."""
    if is_concrete(value):
        return bool(value)
    return value


def check_root_and_eps(name: str, root: bool | jax.Array, eps_in_sqrt: bool | jax.Array) -> None:
    """Reject ``sqrt=False`` with ``eps_in_sqrt=True``: without a root there is nothing to
    put ``eps`` under. Traced switches are not checked (``eps_in_sqrt`` then has no effect
    where ``sqrt`` is false: the denominator is ``s + eps``)."""
    if root is False and eps_in_sqrt is True:
        raise ConfigError(
            f"{name}: eps_in_sqrt = true puts eps under the square root, but sqrt = false "
            "divides by s + eps with no root; set eps_in_sqrt = false for the slide's "
            "form (or sqrt = true)",
            key="eps_in_sqrt",
        )


def select(switch: bool | jax.Array, if_true: jax.Array, if_false: jax.Array) -> jax.Array:
    """``if_true if switch else if_false``, also when ``switch`` is traced."""
    if isinstance(switch, bool):
        return if_true if switch else if_false
    return jnp.where(switch, if_true, if_false)


def like(value: Scalar, leaf: jax.Array) -> jax.Array:
    """``value`` cast to the dtype of ``leaf`` (hyperparameters follow the parameter dtype)."""
    return jnp.asarray(value, dtype=jnp.result_type(leaf))


def increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the int32 maximum instead of wrapping around."""
    return jnp.where(count < _INT32_MAX, count + 1, count).astype(jnp.int32)


def zero_count() -> jax.Array:
    """The initial step counter: an int32 scalar 0."""
    return jnp.zeros([], jnp.int32)


def learning_rate_at(learning_rate: ScalarOrSchedule, count: jax.Array) -> Scalar:
    """The learning rate of the update with ``count`` updates done (schedules start at 0)."""
    if callable(learning_rate):
        return learning_rate(count)
    return learning_rate


def bias_correction(decay: Scalar, t: jax.Array, leaf: jax.Array) -> jax.Array:
    """``1 - decay**t`` in the dtype of ``leaf`` (t is the 1-based step number)."""
    return 1 - like(decay, leaf) ** t.astype(jnp.result_type(leaf))


def zeros_like(tree: PyTree) -> PyTree:
    """A tree of zeros with the shapes and dtypes of ``tree``."""
    return jax.tree.map(jnp.zeros_like, tree)


def full_like(tree: PyTree, value: Scalar) -> PyTree:
    """A tree filled with ``value`` (cast to each leaf's dtype)."""
    return jax.tree.map(lambda x: jnp.full_like(x, like(value, x)), tree)


def scale_by_lr(updates: PyTree, learning_rate: Scalar) -> PyTree:
    """``-learning_rate * updates`` leaf by leaf: the step that is added to the parameters."""
    return jax.tree.map(lambda u: -like(learning_rate, u) * u, updates)


def add_coupled_weight_decay(
    name: str, grads: PyTree, params: PyTree | None, weight_decay: Scalar
) -> PyTree:
    """Coupled L2 regularisation as PyTorch does it: ``g <- g + weight_decay * p``.

    Skipped when ``weight_decay`` is concretely 0; otherwise ``params`` is required.
    """
    if is_zero(weight_decay):
        return grads
    if params is None:
        raise ConfigError(
            f"{name}: weight_decay={show(weight_decay)} needs the parameters; "
            "call update(grads, state, params) or set weight_decay = 0",
            key="weight_decay",
        )
    return jax.tree.map(lambda g, p: g + like(weight_decay, p) * p, grads, params)


# --------------------------------------------------------------------------- defaults


def signature_defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    """Every keyword of ``factory`` that has a default, with that default, in signature order.

    The factories' signatures are the one place the built-in optimizers keep their defaults;
    the ``*_DEFAULTS`` dicts and the registry are derived from them with this function.

    Example:
      >>> signature_defaults(lambda learning_rate, b1=0.9, *, eps=1e-8, **kw: None)
      {'b1': 0.9, 'eps': 1e-08}
    """
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.kind in keyword_kinds and p.default is not p.empty
    }


# --------------------------------------------------------------------------- validation


def show(value: Any) -> str:
    """A short readable rendering of a hyperparameter value for error messages."""
    if isinstance(value, str):
        return repr(value)
    try:
        arr = np.asarray(value)
    except Exception:
        return repr(value)
    if arr.ndim == 0:
        return repr(arr.item())
    return f"an array with min {arr.min().item()!r} and max {arr.max().item()!r}"


class _Rule(NamedTuple):
    """The values a hyperparameter accepts, as the bounds of :func:`optbench.validate.number`,
    and how to fix a bad one (``{example}`` is the optimizer's default, else ``example``)."""

    minimum: float | None = None
    maximum: float | None = None
    open_min: bool = False
    open_max: bool = False
    fix: str = "use a value such as {example}"
    example: float | None = None


_UNIT = {"minimum": 0.0, "maximum": 1.0, "open_max": True}  # [0, 1): the decay rates
_RULES: dict[str, _Rule] = {
    "learning_rate": _Rule(
        0.0, open_min=True, fix="use a positive value such as {example}", example=1e-3
    ),
    "momentum": _Rule(**_UNIT, example=0.9),
    "rho": _Rule(**_UNIT, example=0.9),
    "decay": _Rule(**_UNIT, example=0.9),
    "b1": _Rule(**_UNIT, example=0.9),
    "b2": _Rule(**_UNIT, example=0.999),
    "eps": _Rule(0.0, fix="use a small positive value such as {example}", example=1e-8),
    "weight_decay": _Rule(0.0, fix="use 0 (off) or a small value such as 1e-4"),
    "initial_accumulator_value": _Rule(0.0, fix="use 0 or a small positive value such as 0.1"),
}
_FLAGS = ("bias_correction", "centered", "eps_in_sqrt", "nesterov", "sqrt")


def _at(index: int, size: int) -> str:
    return f" at index {index} of {size} value{'s' if size != 1 else ''}"


def _not_a_number(name: str, key: str, value: Any) -> ConfigError:
    """The error for a value that is no number (an array's first such entry is named)."""
    got = repr(value)
    try:
        entries = np.asarray(value, dtype=object).ravel().tolist() if np.ndim(value) else []
    except (TypeError, ValueError):  # e.g. a ragged list
        entries = []
    first = next((i for i, v in enumerate(entries) if not is_number(v)), None)
    if first is not None:
        got = f"{entries[first]!r}{_at(first, len(entries))}"
    return ConfigError(f"{name}: {key} must be a number, got {got}", key=key)


def as_numbers(name: str, key: str, value: Any) -> np.ndarray:
    """``value`` (a number or an array of numbers) as float64; ConfigError if it is not."""
    if isinstance(value, list | tuple) and not all(is_number(v) for v in value):
        raise _not_a_number(name, key, value)  # numpy would turn True or "0.1" into floats
    try:
        arr = np.asarray(value)
        # bools and numeric strings would convert; objects must each be a number
        if arr.dtype.kind not in "bUSO" or (
            arr.dtype.kind == "O" and all(is_number(v) for v in arr.ravel().tolist())
        ):
            return arr.astype(np.float64)
    except (TypeError, ValueError):
        pass
    raise _not_a_number(name, key, value)


def _within(arr: np.ndarray, rule: _Rule) -> np.ndarray:
    """Elementwise: is each value inside the rule's bounds (NaN never is)?"""
    ok = np.ones(arr.shape, dtype=bool)
    if rule.minimum is not None:
        ok &= arr > rule.minimum if rule.open_min else arr >= rule.minimum
    if rule.maximum is not None:
        ok &= arr < rule.maximum if rule.open_max else arr <= rule.maximum
    return ok


def check_value(name: str, key: str, value: Any, defaults: Mapping[str, Any] | None = None) -> None:
    """Raise ConfigError if the concrete ``value`` of hyperparameter ``key`` is invalid.

    ``value`` may be a number or an array of numbers (e.g. every value of one grid axis at
    once); every entry of an array is checked and the message names the first bad one.
    Traced values and schedules (callables, for ``learning_rate``) are not checked. Keys
    without a rule are accepted as they are. ``defaults`` (the optimizer's) supply the
    example value of the fix.

    Example:
      >>> try:
      ...     check_value("adam", "b2", np.array([0.9, 0.99, 1.0]))
      ... except ConfigError as err:
      ...     print(err.key, "|", err.message)
      b2 | adam: b2 must be in [0, 1), got 1.0 at index 2 of 3 values; use a value such as 0.999
    """
    if key in _FLAGS:
        if is_concrete(value) and not (np.ndim(value) == 0 and np.asarray(value).dtype == bool):
            flag_value(value, key, subject=f"{name}: {key}")  # raises: not true or false
        return
    rule = _RULES.get(key)
    if rule is None or value is None or not is_concrete(value):
        return
    if callable(value):
        if key == "learning_rate":
            return
        raise ConfigError(f"{name}: {key} must be a number, got a function", key=key)
    arr = as_numbers(name, key, value)
    ok = _within(arr, rule)
    if ok.all():
        return
    if arr.ndim == 0:
        got = show(value)
    else:
        first = int(np.argmin(ok.ravel()))
        got = f"{arr.ravel()[first].item()!r}{_at(first, arr.size)}"
    rng = range_text(rule.minimum, rule.maximum, open_min=rule.open_min, open_max=rule.open_max)
    example = (defaults or {}).get(key, rule.example)
    raise ConfigError(
        f"{name}: {key} must be {rng}, got {got}; {rule.fix.format(example=example)}", key=key
    )


def check_all(name: str, hparams: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """:func:`check_value` for every entry of ``hparams``."""
    for key, value in hparams.items():
        check_value(name, key, value, defaults)


# ------------------------------------------------------------------- self-checking factories

# checked factory -> the same factory without the checks (see :func:`checked`)
_UNCHECKED: weakref.WeakKeyDictionary[Callable[..., Any], Callable[..., Any]] = (
    weakref.WeakKeyDictionary()
)


def checked(factory: F) -> F:
    """Decorate a built-in factory so that it checks the hyperparameters it is given.

    The checked factory runs :func:`check_value` on every keyword passed (its defaults are
    checked once, here), so a direct call such as ``adam(learning_rate=-1)`` raises
    ConfigError; messages name the optimizer by the factory's ``__name__``. The registry
    knows such factories (:func:`unchecked`) and does not check their values a second time.
    """
    name = factory.__name__
    signature = inspect.signature(factory)
    defaults = signature_defaults(factory)
    check_all(name, defaults, defaults)

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        check_all(name, signature.bind(*args, **kwargs).arguments, defaults)
        return factory(*args, **kwargs)

    _UNCHECKED[build] = factory
    return build  # type: ignore[return-value]


def unchecked(factory: Callable[..., Any]) -> Callable[..., Any] | None:
    """The body of a :func:`checked` factory (builds without checking), or None for others."""
    return _UNCHECKED.get(factory)
