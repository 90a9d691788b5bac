"""Learning-rate schedules: pure functions of the step count (from 0).

A schedule maps the number of updates done, ``count`` (a Python int or a traced integer
array), to a learning rate. Pass one as ``learning_rate`` to any optimizer, or build it
with ``value=1.0`` and multiply a (traced) learning rate by it; that is what configs do
through :func:`from_config`, so a whole learning-rate grid stays one compiled program.

Example:
  >>> from optbench import optimizers, schedules
  >>> lr = schedules.warmup(schedules.cosine(1e-3, decay_steps=900), warmup_steps=100)
  >>> opt = optimizers.adam(learning_rate=lr)
  >>> [round(float(lr(c)), 8) for c in (0, 50, 100, 1000)]
  [0.0, 0.0005, 0.001, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from optbench import validate
from optbench._errors import ConfigError

Schedule = Callable[[Any], jax.Array]


def _float_count(count: Any) -> jax.Array:
    return jnp.asarray(count, dtype=jnp.result_type(float))


def constant(value: float = 1.0) -> Schedule:
    """``lr(count) = value``.

    Example:
      >>> round(float(constant(0.1)(7)), 6)
      0.1
    """

    def schedule(count):
        return jnp.zeros_like(_float_count(count)) + value

    return schedule


def step(
    value: float,
    boundaries_and_factors: Mapping[int, float] | None = None,
    *,
    every: int | None = None,
    factor: float = 0.1,
) -> Schedule:
    """Piecewise-constant decay.

    Either explicit boundaries, ``lr(count) = value * prod(f for b, f in
    boundaries_and_factors if count >= b)``, or a regular staircase,
    ``lr(count) = value * factor ** floor(count / every)``.

    Example:
      >>> s = step(1.0, {100: 0.1, 200: 0.5})
      >>> [round(float(s(c)), 6) for c in (0, 99, 100, 250)]
      [1.0, 1.0, 0.1, 0.05]
      >>> float(step(1.0, every=10, factor=0.5)(25))
      0.25
    """
    if (boundaries_and_factors is None) == (every is None):
        raise ConfigError(
            "step: give either boundaries_and_factors or every (not both)", key="every"
        )
    if every is not None:
        validate.in_range(every, "every", minimum=0, open_min=True, subject="step: every")

        def staircase(count):
            c = _float_count(count)
            return value * jnp.asarray(factor, c.dtype) ** jnp.floor(c / every)

        return staircase

    items = sorted((int(b), f) for b, f in boundaries_and_factors.items())

    def piecewise(count):
        c = _float_count(count)
        out = jnp.zeros_like(c) + value
        for boundary, f in items:
            out = jnp.where(c >= boundary, out * f, out)
        return out

    return piecewise


def exponential(
    value: float, decay_rate: float, transition_steps: int, *, staircase: bool = False
) -> Schedule:
    """``lr(count) = value * decay_rate ** (count / transition_steps)`` (floored if staircase).

    Example:
      >>> round(float(exponential(1.0, 0.5, 10)(20)), 6)
      0.25
    """
    validate.in_range(
        transition_steps,
        "transition_steps",
        minimum=0,
        open_min=True,
        subject="exponential: transition_steps",
    )

    def schedule(count):
        c = _float_count(count)
        p = c / transition_steps
        if staircase:
            p = jnp.floor(p)
        return value * jnp.asarray(decay_rate, c.dtype) ** p

    return schedule


def cosine(value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """Cosine decay from ``value`` to ``alpha * value`` over ``decay_steps``, then constant.

    ``lr(count) = value * ((1 - alpha) * (1 + cos(pi * min(count, decay_steps) /
    decay_steps)) / 2 + alpha)`` (Loshchilov & Hutter, "SGDR", ICLR 2017; optax's
    ``cosine_decay_schedule``).

    Example:
      >>> s = cosine(1.0, 100)
      >>> [round(float(s(c)), 6) for c in (0, 50, 100, 200)]
      [1.0, 0.5, 0.0, 0.0]
    """
    validate.in_range(
        decay_steps, "decay_steps", minimum=0, open_min=True, subject="cosine: decay_steps"
    )

    def schedule(count):
        c = jnp.minimum(_float_count(count), decay_steps)
        cos = 0.5 * (1 + jnp.cos(math.pi * c / decay_steps))
        return value * ((1 - alpha) * cos + alpha)

    return schedule


def warmup(schedule: Schedule | float, warmup_steps: int) -> Schedule:
    """A linear ramp from 0, then ``schedule`` started afresh.

    ``lr(count) = schedule(0) * count / warmup_steps`` for ``count < warmup_steps``, then
    ``schedule(count - warmup_steps)``; continuous at the junction. A number is taken as a
    constant schedule.

    Example:
      >>> s = warmup(constant(2.0), 4)
      >>> [float(s(c)) for c in range(6)]
      [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    """
    if not callable(schedule):
        schedule = constant(schedule)
    validate.in_range(warmup_steps, "warmup", minimum=0, subject="warmup: warmup_steps")
    if warmup_steps == 0:
        return schedule

    def warmed(count):
        c = _float_count(count)
        ramp = schedule(jnp.zeros_like(c)) * c / warmup_steps
        after = schedule(jnp.maximum(c - warmup_steps, 0))
        return jnp.where(c < warmup_steps, ramp, after)

    return warmed


# --------------------------------------------------------------------------- config entries

# kind -> its own keys and their types, checked with validate.of_type (``kind`` and ``warmup``
# apply to all)
_KINDS: dict[str, dict[str, type]] = {
    "constant": {},
    "cosine": {"decay_steps": int, "alpha": float},
    "exponential": {"decay_rate": float, "transition_steps": int, "staircase": bool},
    "step": {"boundaries": list, "factors": list, "every": int, "factor": float},
}
_COMMON = {"kind": str, "warmup": int}


def kinds() -> list[str]:
    """The schedule kinds that :func:`from_config` accepts."""
    return list(_KINDS)


def from_config(spec: Mapping[str, Any], total_steps: int) -> Schedule:
    """A learning-rate multiplier (starting at 1) from a config entry.

    ``spec`` is the ``schedule`` table of an optimizer, e.g. ``{kind = "cosine", warmup =
    100}``: ``kind`` (default "constant") is one of :func:`kinds`, ``warmup`` (default 0)
    steps of linear ramp precede it, and the kind's own keys are:

    - ``cosine``: ``decay_steps`` (default ``total_steps - warmup``), ``alpha`` (0.0);
    - ``exponential``: ``decay_rate`` (required), ``transition_steps`` (default
      ``total_steps - warmup``: the rate reached at the end), ``staircase`` (false);
    - ``step``: ``boundaries`` (steps after warmup) with ``factors`` (one per boundary,
      or one ``factor``, default 0.1, for all), or ``every`` with ``factor``;
    - ``constant``: nothing.

    Errors name the key relative to ``spec``; callers add the location with
    ``ConfigError.within``.

    Example:
      >>> m = from_config({"kind": "cosine", "warmup": 10}, total_steps=110)
      >>> [round(float(m(c)), 6) for c in (0, 5, 10, 60, 110)]
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    validate.table(spec, "kind", example="{ kind = 'cosine' }", subject="a schedule")
    kind = validate.choice(spec.get("kind", "constant"), "kind", _KINDS, what="schedule kind")
    allowed = _COMMON | _KINDS[kind]
    for key, value in spec.items():
        validate.choice(key, key, allowed, what="key", subject=f"schedule {kind}")
        validate.of_type(value, key, allowed[key], subject=f"schedule {kind}: {key}")
    n_warmup = spec.get("warmup", 0)
    validate.in_range(n_warmup, "warmup", minimum=0, subject=f"schedule {kind}: warmup")
    remaining = int(total_steps) - n_warmup
    if kind in ("cosine", "exponential") and remaining <= 0 and "decay_steps" not in spec:
        raise ConfigError(
            f"schedule {kind}: warmup ({n_warmup}) leaves no steps of the {total_steps} to "
            "decay over; use a shorter warmup",
            key="warmup",
        )
    if kind == "constant":
        base = constant(1.0)
    elif kind == "cosine":
        alpha = spec.get("alpha", 0.0)
        validate.in_range(alpha, "alpha", minimum=0, maximum=1, subject="schedule cosine: alpha")
        base = cosine(1.0, spec.get("decay_steps", remaining), alpha)
    elif kind == "exponential":
        if "decay_rate" not in spec:
            raise ConfigError(
                "schedule exponential: decay_rate is required, e.g. decay_rate = 0.01 "
                "(the multiplier reached after transition_steps)",
                key="decay_rate",
            )
        validate.in_range(
            spec["decay_rate"],
            "decay_rate",
            minimum=0,
            open_min=True,
            subject="schedule exponential: decay_rate",
        )
        base = exponential(
            1.0,
            spec["decay_rate"],
            spec.get("transition_steps", remaining),
            staircase=spec.get("staircase", False),
        )
    else:
        base = _step_from_config(spec)
    return warmup(base, n_warmup)


def _step_from_config(spec: Mapping[str, Any]) -> Schedule:
    factor = spec.get("factor", 0.1)
    if "every" in spec:
        if "boundaries" in spec or "factors" in spec:
            raise ConfigError(
                "schedule step: give either every or boundaries, not both", key="every"
            )
        return step(1.0, every=spec["every"], factor=factor)
    if "boundaries" not in spec:
        raise ConfigError(
            "schedule step: give boundaries = [...] (steps) or every = N", key="boundaries"
        )
    boundaries = spec["boundaries"]
    factors = spec.get("factors", [factor] * len(boundaries))
    if "factors" in spec and "factor" in spec:
        raise ConfigError("schedule step: give factors or factor, not both", key="factors")
    if len(factors) != len(boundaries):
        raise ConfigError(
            f"schedule step: {len(boundaries)} boundaries but {len(factors)} factors; give "
            "one factor per boundary",
            key="factors",
        )
    for b in boundaries:
        validate.of_type(b, "boundaries", int, subject="schedule step: boundaries")
    for f in factors:
        validate.of_type(f, "factors", float, subject="schedule step: factors")
    return step(1.0, dict(zip(boundaries, factors, strict=True)))
