"""Schedules: closed forms, optax equivalents, use inside jit, and config entries."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optbench
from optbench import optimizers, schedules

COUNTS = np.arange(0, 400)


def values(schedule, counts=COUNTS):
    return np.array([float(schedule(int(c))) for c in counts])


def traced_values(schedule, counts=COUNTS):
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(counts, jnp.int32)))


def test_constant():
    np.testing.assert_allclose(values(schedules.constant(0.3), COUNTS[:5]), 0.3, rtol=1e-7)
    np.testing.assert_array_equal(traced_values(schedules.constant()), 1.0)


def test_step_boundaries_and_every():
    s = schedules.step(2.0, {100: 0.5, 250: 0.1})
    want = 2.0 * np.where(COUNTS >= 100, 0.5, 1.0) * np.where(COUNTS >= 250, 0.1, 1.0)
    np.testing.assert_allclose(traced_values(s), want, rtol=1e-6)
    s = schedules.step(1.0, every=30, factor=0.5)
    np.testing.assert_allclose(traced_values(s), 0.5 ** (COUNTS // 30), rtol=1e-6)
    with pytest.raises(optbench.ConfigError):
        schedules.step(1.0)


def test_exponential():
    s = schedules.exponential(0.1, 0.5, 100)
    np.testing.assert_allclose(traced_values(s), 0.1 * 0.5 ** (COUNTS / 100), rtol=1e-6)
    s = schedules.exponential(0.1, 0.5, 100, staircase=True)
    np.testing.assert_allclose(traced_values(s), 0.1 * 0.5 ** (COUNTS // 100), rtol=1e-6)


def test_cosine():
    s = schedules.cosine(0.2, 300, alpha=0.1)
    c = np.minimum(COUNTS, 300)
    want = 0.2 * (0.9 * 0.5 * (1 + np.cos(np.pi * c / 300)) + 0.1)
    np.testing.assert_allclose(traced_values(s), want, rtol=1e-6, atol=1e-8)
    assert values(s, [300, 399])[0] == pytest.approx(0.02)


def test_warmup_then_schedule():
    s = schedules.warmup(schedules.cosine(1.0, 200), 50)
    c = COUNTS.astype(float)
    after = 0.5 * (1 + np.cos(np.pi * np.minimum(c - 50, 200) / 200))
    want = np.where(c < 50, c / 50, after)
    np.testing.assert_allclose(traced_values(s), want, rtol=1e-6, atol=1e-7)
    assert values(s, [0])[0] == 0.0
    np.testing.assert_allclose(
        values(schedules.warmup(0.5, 4), range(6)), [0, 0.125, 0.25, 0.375, 0.5, 0.5]
    )
    assert schedules.warmup(s, 0) is s


def test_match_optax_schedules():
    pairs = [
        (schedules.cosine(0.1, 300, 0.05), optax.cosine_decay_schedule(0.1, 300, 0.05)),
        (schedules.exponential(0.1, 0.3, 70), optax.exponential_decay(0.1, 70, 0.3)),
        (
            schedules.step(0.1, {50: 0.5, 120: 0.2}),
            optax.piecewise_constant_schedule(0.1, {50: 0.5, 120: 0.2}),
        ),
        (
            schedules.warmup(schedules.cosine(0.1, 250, 0.01), 50),
            optax.warmup_cosine_decay_schedule(0.0, 0.1, 50, 300, 0.001),
        ),
    ]
    for ours, ref in pairs:
        np.testing.assert_allclose(traced_values(ours), traced_values(ref), rtol=2e-6, atol=1e-8)


def test_schedule_as_learning_rate_inside_jit():
    lr = schedules.step(0.1, {3: 0.5})
    opt = optimizers.sgd(learning_rate=lr)

    @jax.jit
    def five_steps(x):
        state = opt.init(x)
        for _ in range(5):
            updates, state = opt.update(2 * x, state, x)  # gradient of x^2
            x = x + updates
        return x

    want = 1.0
    for k in range(5):
        want *= 1 - 2 * (0.1 if k < 3 else 0.05)
    np.testing.assert_allclose(five_steps(jnp.ones(1)), want, rtol=1e-6)


def test_multiplier_of_a_traced_learning_rate_compiles_once():
    multiplier = schedules.from_config({"kind": "cosine", "warmup": 5}, total_steps=20)
    traces = []

    @jax.jit
    def final(lr):
        traces.append(1)
        opt = optimizers.sgd(learning_rate=lambda c: lr * multiplier(c))
        x = jnp.ones(1)
        state = opt.init(x)
        for _ in range(20):
            updates, state = opt.update(2 * x, state, x)
            x = x + updates
        return x

    outs = [float(final(lr)[0]) for lr in (0.01, 0.02, 0.05)]
    assert len(traces) == 1
    m = values(multiplier, range(20))
    for lr, out in zip((0.01, 0.02, 0.05), outs, strict=True):
        assert out == pytest.approx(math.prod(1 - 2 * lr * m), rel=1e-5)


def test_from_config_kinds():
    assert set(schedules.kinds()) == {"constant", "cosine", "exponential", "step"}
    m = schedules.from_config({"kind": "cosine", "warmup": 100}, total_steps=1100)
    np.testing.assert_allclose(values(m, [0, 50, 100, 600, 1100]), [0, 0.5, 1, 0.5, 0], atol=1e-6)
    m = schedules.from_config({"kind": "cosine", "decay_steps": 100, "alpha": 0.5}, 1000)
    np.testing.assert_allclose(values(m, [0, 100, 500]), [1, 0.5, 0.5], atol=1e-6)
    m = schedules.from_config({}, 10)
    np.testing.assert_allclose(values(m, [0, 9]), 1.0)
    m = schedules.from_config({"kind": "exponential", "decay_rate": 0.01}, 200)
    np.testing.assert_allclose(values(m, [0, 100, 200]), [1, 0.1, 0.01], rtol=1e-5)
    m = schedules.from_config({"kind": "step", "boundaries": [10, 20], "factor": 0.5}, 30)
    np.testing.assert_allclose(values(m, [0, 10, 25]), [1, 0.5, 0.25])
    m = schedules.from_config({"kind": "step", "every": 10, "factor": 0.1, "warmup": 2}, 30)
    np.testing.assert_allclose(values(m, [1, 2, 12]), [0.5, 1, 0.1], rtol=1e-6)


@pytest.mark.parametrize(
    ("spec", "key", "pattern"),
    [
        ({"kind": "cosinus"}, "kind", "did you mean 'cosine'"),
        ({"kind": "cosine", "warmpu": 10}, "warmpu", "did you mean 'warmup'"),
        ({"kind": "cosine", "warmup": -1}, "warmup", "warmup must be >= 0"),
        ({"kind": "cosine", "warmup": 1.5}, "warmup", "warmup must be int"),
        ({"kind": "cosine", "warmup": 100}, "warmup", "leaves no steps"),
        ({"kind": "exponential"}, "decay_rate", "decay_rate is required"),
        ({"kind": "step", "boundaries": [1, 2], "factors": [0.5]}, "factors", "one factor"),
        ({"kind": "step"}, "boundaries", "boundaries"),
        ({"kind": "constant", "alpha": 0.1}, "alpha", "unknown key 'alpha'"),
    ],
)
def test_from_config_errors(spec, key, pattern):
    with pytest.raises(optbench.ConfigError, match=pattern) as err:
        schedules.from_config(spec, total_steps=100)
    assert err.value.key == key


@pytest.mark.parametrize(
    ("spec", "key", "pattern"),
    [
        ([1, 2], "kind", "a schedule must be a table"),
        ({"kind": "cosine", "alpha": 2.0}, "alpha", r"alpha must be in \[0, 1\]"),
        ({"kind": "cosine", "alpha": float("nan")}, "alpha", r"alpha must be in \[0, 1\]"),
        ({"kind": "cosine", "alpha": True}, "alpha", "alpha must be float"),
        ({"kind": "cosine", "decay_steps": 0}, "decay_steps", "decay_steps must be > 0"),
        ({"kind": "exponential", "decay_rate": 0.0}, "decay_rate", "decay_rate must be > 0"),
        ({"kind": "exponential", "decay_rate": 0.5, "staircase": 1}, "staircase", "must be bool"),
        ({"kind": "exponential", "decay_rate": 0.5, "transition_steps": 0}, "transition_steps",
         "transition_steps must be > 0"),
        ({"kind": "step", "boundaries": [1.5]}, "boundaries", "boundaries must be int"),
        ({"kind": "step", "boundaries": [1], "factors": ["a"]}, "factors", "factors must be float"),
        ({"kind": "step", "every": 0}, "every", "every must be > 0"),
        ({"kind": "step", "every": 10, "boundaries": [1]}, "every", "not both"),
    ],
)  # fmt: skip
def test_from_config_more_errors(spec, key, pattern):
    with pytest.raises(optbench.ConfigError, match=pattern) as err:
        schedules.from_config(spec, total_steps=100)
    assert err.value.key == key


def test_python_arguments_are_checked():
    for make, key in [
        (lambda: schedules.step(1.0, every=0), "every"),
        (lambda: schedules.cosine(1.0, 0), "decay_steps"),
        (lambda: schedules.exponential(1.0, 0.5, -3), "transition_steps"),
        (lambda: schedules.warmup(1.0, -1), "warmup"),
    ]:
        with pytest.raises(optbench.ConfigError, match="must be >") as err:
            make()
        assert err.value.key == key
    # numpy scalars are numbers too
    assert float(schedules.cosine(1.0, np.int64(10))(5)) == pytest.approx(0.5)
