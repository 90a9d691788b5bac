"""Pieces shared by the optimizer families: learning rates, validation, weight decay, trees.

Every hyperparameter may be a Python number, a concrete array or a traced JAX value (the
engine builds one optimizer inside ``jax.jit``/``jax.vmap`` with tracers for a whole grid).
Validation therefore only looks at concrete values, and numbers are cast to each leaf's
dtype at the point of use so float32 parameters stay float32 and float64 stay float64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optbench._errors import ConfigError

Scalar = float | int | jax.Array | np.ndarray
Schedule = Callable[[jax.Array], jax.Array]
ScalarOrSchedule = Scalar | Schedule
PyTree = Any

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


# --------------------------------------------------------------------------- validation


def show(value: Any) -> str:
    """A short readable rendering of a hyperparameter value for error messages."""
    if isinstance(value, bool | int | float | str):
        return repr(value)
    try:
        arr = np.asarray(value)
    except Exception:
        return repr(value)
    if arr.ndim == 0:
        return repr(arr.item())
    return f"an array with min {arr.min()!r} and max {arr.max()!r}"


def _positive(arr: np.ndarray) -> bool:
    return bool(np.all(arr > 0))


def _unit(arr: np.ndarray) -> bool:
    return bool(np.all((arr >= 0) & (arr < 1)))


def _nonneg(arr: np.ndarray) -> bool:
    return bool(np.all(arr >= 0))


# keyword -> (predicate, what it must be, how to fix it)
_RULES: dict[str, tuple[Callable[[np.ndarray], bool], str, str]] = {
    "learning_rate": (_positive, "must be > 0", "use a positive value such as {default}"),
    "momentum": (_unit, "must be in [0, 1)", "use a value such as {default}"),
    "rho": (_unit, "must be in [0, 1)", "use a value such as {default}"),
    "decay": (_unit, "must be in [0, 1)", "use a value such as {default}"),
    "b1": (_unit, "must be in [0, 1)", "use a value such as {default}"),
    "b2": (_unit, "must be in [0, 1)", "use a value such as {default}"),
    "eps": (_nonneg, "must be >= 0", "use a small positive value such as {default}"),
    "weight_decay": (_nonneg, "must be >= 0", "use 0 (off) or a small value such as 1e-4"),
    "initial_accumulator_value": (
        _nonneg,
        "must be >= 0",
        "use 0 or a small positive value such as 0.1",
    ),
}
_FLAGS = ("centered", "eps_in_sqrt", "nesterov")
_FALLBACK_DEFAULTS = {"learning_rate": 1e-3, "momentum": 0.9, "rho": 0.9, "decay": 0.9}
_FALLBACK_DEFAULTS |= {"b1": 0.9, "b2": 0.999, "eps": 1e-8}


def check_value(name: str, key: str, value: Any, defaults: Mapping[str, Any] | None = None) -> None:
    """Raise ConfigError if the concrete ``value`` of hyperparameter ``key`` is invalid.

    Traced values and schedules (callables, for ``learning_rate``) are not checked.
    Keys without a rule are accepted as they are.
    """
    if key in _FLAGS:
        if is_concrete(value) and not isinstance(value, bool | np.bool_):
            if not (np.ndim(value) == 0 and np.asarray(value).dtype == bool):
                raise ConfigError(
                    f"{name}: {key} must be true or false, got {show(value)}", key=key
                )
        return
    rule = _RULES.get(key)
    if rule is None or value is None or not is_concrete(value):
        return
    if callable(value):
        if key == "learning_rate":
            return
        raise ConfigError(f"{name}: {key} must be a number, got a function", key=key)
    if isinstance(value, str | bytes) or isinstance(value, bool | np.bool_):
        raise ConfigError(f"{name}: {key} must be a number, got {value!r}", key=key)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {key} must be a number, got {value!r}", key=key) from None
    predicate, must, fix = rule
    if not predicate(arr):
        default = (defaults or {}).get(key, _FALLBACK_DEFAULTS.get(key))
        raise ConfigError(
            f"{name}: {key} {must}, got {show(value)}; {fix.format(default=default)}", key=key
        )


def check_all(name: str, hparams: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """:func:`check_value` for every entry of ``hparams``."""
    for key, value in hparams.items():
        check_value(name, key, value, defaults)
