"""The optimizer registry, traced hyperparameters, dtypes, convergence and input validation."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optbench
from optbench import optimizers, schedules
from optbench.optimizers import _base, _registry

BUILTINS = ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw"]
BUILTINS += ["nadam", "amsgrad"]
# the second traced hyperparameter of each optimizer (besides the learning rate)
SECOND = {"sgd": "weight_decay", "momentum": "momentum", "nesterov": "momentum"}
SECOND |= {"adagrad": "initial_accumulator_value", "adadelta": "rho", "rmsprop": "decay"}
SECOND |= {"adam": "b1", "adamw": "b1", "nadam": "b1", "amsgrad": "b2"}

LAM = jnp.linspace(1.0, 10.0, 6)
TARGET = jnp.array([0.5, -1.0, 0.25, 1.0, -0.5, 0.8])


def quadratic(x):
    return 0.5 * jnp.sum(LAM * (x - TARGET) ** 2)


def run(opt, x0, steps, loss=quadratic):
    """Losses after each of ``steps`` updates of ``opt`` from ``x0``."""

    def body(carry, _):
        x, state = carry
        updates, state = opt.update(jax.grad(loss)(x), state, x)
        x = x + updates
        return (x, state), loss(x)

    (x, _), losses = jax.lax.scan(body, (x0, opt.init(x0)), None, length=steps)
    return x, losses


@pytest.fixture
def clean_registry():
    saved = dict(_registry._REGISTRY)
    yield
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(saved)


# --------------------------------------------------------------------------- registry


def test_names_and_defaults_follow_the_design_table():
    assert optimizers.names()[:10] == BUILTINS
    expected = {
        "sgd": {"learning_rate": 1e-2},
        "momentum": {"learning_rate": 1e-2, "momentum": 0.9},
        "nesterov": {"learning_rate": 1e-2, "momentum": 0.9},
        "adagrad": {"learning_rate": 1e-2, "eps": 1e-10, "initial_accumulator_value": 0.0},
        "adadelta": {"learning_rate": 1.0, "rho": 0.9, "eps": 1e-6},
        "rmsprop": {"learning_rate": 1e-2, "decay": 0.9, "eps": 1e-8, "centered": False},
        "adam": {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8},
        "adamw": {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "weight_decay": 1e-2},
        "nadam": {"learning_rate": 2e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8},
        "amsgrad": {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8},
    }
    for name, subset in expected.items():
        d = optimizers.defaults(name)
        assert next(iter(d)) == "learning_rate"
        assert {k: d[k] for k in subset} == subset, name
        if name != "adamw":
            assert d["weight_decay"] == 0.0
        assert "\n" not in optimizers.describe(name) and optimizers.describe(name)
    assert optimizers.defaults("adagrad")["eps_in_sqrt"] is False
    assert optimizers.defaults("rmsprop")["eps_in_sqrt"] is False


def test_factories_and_docstrings():
    for name in BUILTINS:
        factory = getattr(optimizers, name)
        doc = factory.__doc__
        assert "Example:" in doc and "References:" in doc and ">>>" in doc, name
        opt = factory()
        assert isinstance(opt, optax.GradientTransformation)
    assert "square root" in optimizers.adagrad.__doc__
    assert "square root" in optimizers.rmsprop.__doc__
    assert "bias correction" in optimizers.adam.__doc__
    assert "look-ahead" in optimizers.nesterov.__doc__


def test_get_fills_defaults_and_matches_the_factory():
    x0 = jnp.zeros(6)
    a, _ = run(optimizers.get("adam"), x0, 20)
    b, _ = run(optimizers.adam(), x0, 20)
    c, _ = run(optimizers.adam(learning_rate=2e-3), x0, 20)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_register_and_overwrite(clean_registry):
    optimizers.register("lion", optax.lion, {"b1": 0.9, "learning_rate": 1e-4})
    assert "lion" in optimizers.names()
    assert list(optimizers.defaults("lion")) == ["learning_rate", "b1"]
    x, _ = run(optimizers.get("lion", b1=0.95), jnp.zeros(6), 3)
    ref, _ = run(optax.lion(1e-4, b1=0.95), jnp.zeros(6), 3)
    np.testing.assert_array_equal(x, ref)
    with pytest.raises(optbench.ConfigError, match="already registered"):
        optimizers.register("lion", optax.lion, {"learning_rate": 1e-3})
    with pytest.raises(optbench.ConfigError, match="already registered"):
        optimizers.register("adam", optax.adam, {"learning_rate": 1e-3})
    optimizers.register("lion", optax.lion, {"learning_rate": 3e-4}, overwrite=True)
    assert optimizers.defaults("lion") == {"learning_rate": 3e-4}
    with pytest.raises(optbench.ConfigError) as err:
        optimizers.get("lion", b1=0.9)
    assert err.value.key == "b1"


def test_an_optimizer_registered_again_never_runs_its_predecessors_program(clean_registry):
    config = """
[[problem]]
surface = "rosenbrock"
steps = 50
[optimizer.mine]
learning_rate = 1e-3
"""
    optimizers.register("mine", optax.sgd, {"learning_rate": 1e-3})
    first = optbench.run(config).runs.final_loss.to_numpy()
    optimizers.register("mine", optax.adam, {"learning_rate": 1e-3}, overwrite=True)
    second = optbench.run(config).runs.final_loss.to_numpy()  # the same name and shapes
    optimizers.register("adam_too", optax.adam, {"learning_rate": 1e-3})
    adam = optbench.run(config.replace("mine", "adam_too")).runs.final_loss.to_numpy()
    assert not np.array_equal(first, second)  # the program compiled for sgd was reused
    np.testing.assert_array_equal(second, adam)


def test_optax_names():
    d = optimizers.defaults("optax:adam")
    assert d["b1"] == 0.9 and d["b2"] == 0.999 and d["nesterov"] is False
    # optax gives the learning rate no default: optbench's own adam's
    assert next(iter(d)) == "learning_rate" and d["learning_rate"] == 1e-3
    assert optimizers.defaults("optax:nadam")["learning_rate"] == 2e-3
    assert optimizers.defaults("optax:lion")["learning_rate"] == 1e-3
    ours, _ = run(optimizers.get("optax:adam", learning_rate=1e-2, b2=0.99), jnp.zeros(6), 10)
    ref, _ = run(optax.adam(1e-2, b2=0.99), jnp.zeros(6), 10)
    np.testing.assert_array_equal(ours, ref)
    assert optimizers.describe("optax:sgd").startswith("optax.sgd")
    with pytest.raises(optbench.ConfigError, match="'b1'") as err:
        optimizers.get("optax:adam", learning_rate=1e-2, b11=0.9)
    assert err.value.key == "b11"
    with pytest.raises(optbench.ConfigError, match="did you mean 'adam'"):
        optimizers.get("optax:adamm", learning_rate=1e-2)
    ours, _ = run(optimizers.get("optax:nadam"), jnp.zeros(6), 10)
    ref, _ = run(optax.nadam(2e-3), jnp.zeros(6), 10)
    np.testing.assert_array_equal(ours, ref)
    with pytest.raises(optbench.ConfigError, match="learning_rate must be > 0"):
        optimizers.get("optax:adam", learning_rate=-1.0)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("name", "kwargs", "key", "pattern"),
    [
        ("adam", {"learning_rate": -1.0}, "learning_rate", r"adam: learning_rate must be > 0"),
        ("sgd", {"learning_rate": 0.0}, "learning_rate", r"sgd: learning_rate must be > 0"),
        ("adam", {"b1": 1.0}, "b1", r"adam: b1 must be in \[0, 1\), got 1.0"),
        ("nadam", {"b2": 1.5}, "b2", r"nadam: b2 must be in \[0, 1\)"),
        ("momentum", {"momentum": -0.1}, "momentum", r"momentum: momentum must be in"),
        ("rmsprop", {"decay": 1.0}, "decay", r"rmsprop: decay must be in"),
        ("adadelta", {"rho": 1.0}, "rho", r"adadelta: rho must be in"),
        ("adagrad", {"eps": -1e-8}, "eps", r"adagrad: eps must be >= 0"),
        ("adamw", {"weight_decay": -0.1}, "weight_decay", r"adamw: weight_decay must be >= 0"),
        ("rmsprop", {"centered": 1.0}, "centered", r"rmsprop: centered must be true or false"),
        ("adam", {"learning_rate": "fast"}, "learning_rate", r"must be a number"),
        ("adam", {"learning_rat": 1e-3}, "learning_rat", r"did you mean 'learning_rate'"),
        ("adam", {"beta1": 0.9}, "beta1", r"adam: unknown hyperparameter 'beta1'"),
    ],
)
def test_invalid_values_raise_config_error(name, kwargs, key, pattern):
    with pytest.raises(optbench.ConfigError, match=pattern) as err:
        optimizers.get(name, **kwargs)
    assert err.value.key == key
    assert isinstance(err.value, ValueError)
    if "unknown" not in pattern and "did you" not in pattern:  # the factory checks too
        with pytest.raises(optbench.ConfigError, match=pattern):
            getattr(optimizers, name)(**kwargs)


def test_error_message_says_how_to_fix():
    with pytest.raises(optbench.ConfigError) as err:
        optimizers.get("adam", learning_rate=-1.0)
    assert "got -1.0; use a positive value such as 0.001" in str(err.value)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(optbench.ConfigError, match="did you mean 'adam'") as err:
        optimizers.get("adma")
    assert err.value.key == "name"
    with pytest.raises(optbench.ConfigError, match="'nesterov'"):
        optimizers.defaults("nestrov")


def test_traced_values_skip_validation():
    # a traced -1 cannot be checked: building the optimizer must not raise
    @jax.jit
    def step(lr, b1):
        opt = optimizers.get("adam", learning_rate=lr, b1=b1)
        x = jnp.ones(3)
        updates, _ = opt.update(x, opt.init(x), x)
        return updates

    out = step(-1.0, 1.5)
    assert out.shape == (3,)


def test_weight_decay_needs_params():
    opt = optimizers.sgd(weight_decay=0.1)
    x = jnp.ones(2)
    with pytest.raises(optbench.ConfigError, match="needs the parameters") as err:
        opt.update(x, opt.init(x))
    assert err.value.key == "weight_decay"
    with pytest.raises(optbench.ConfigError, match="needs the parameters"):
        opt = optimizers.adamw()
        opt.update(x, opt.init(x))
    opt = optimizers.sgd()  # no decay: params are optional
    updates, _ = opt.update(x, opt.init(x))
    np.testing.assert_allclose(updates, -1e-2 * x)


# --------------------------------------------------------------------------- tracing


@pytest.mark.parametrize("name", BUILTINS)
def test_traced_hyperparameters_compile_once(name):
    second = SECOND[name]
    traces = []

    @jax.jit
    def final(lr, h):
        traces.append(1)
        x, _ = run(optimizers.get(name, learning_rate=lr, **{second: h}), jnp.zeros(6), 10)
        return x

    lrs = np.linspace(1e-3, 1e-2, 10)
    hs = np.linspace(0.0, 0.5, 10) if second != "b2" else np.linspace(0.5, 0.99, 10)
    if second == "weight_decay":
        hs = np.linspace(0.0, 0.1, 10)
    outs = [final(lr, h) for lr, h in zip(lrs, hs, strict=True)]
    assert len(traces) == 1
    assert len({np.asarray(o).tobytes() for o in outs}) == 10  # the values were used
    # the traced program equals the one built from Python floats
    concrete, _ = run(
        optimizers.get(name, learning_rate=float(lrs[3]), **{second: hs[3]}), jnp.zeros(6), 10
    )
    np.testing.assert_allclose(outs[3], concrete, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", BUILTINS)
def test_vmap_over_learning_rates_equals_loop(name):
    lrs = jnp.asarray(np.geomspace(1e-4, 1e-1, 64), jnp.float32)

    def final(lr):
        return run(optimizers.get(name, learning_rate=lr), jnp.zeros(6), 15)[0]

    batched = jax.jit(jax.vmap(final))(lrs)
    single = jax.jit(final)
    looped = jnp.stack([single(lr) for lr in lrs])
    np.testing.assert_allclose(batched, looped, rtol=2e-6, atol=1e-7)
    assert not np.allclose(batched[0], batched[-1])


def test_traced_flags_match_concrete_flags():
    @jax.jit
    def final(centered, in_sqrt):
        opt = optimizers.rmsprop(0.01, centered=centered, eps_in_sqrt=in_sqrt, eps=1e-3)
        return run(opt, jnp.zeros(6), 20)[0]

    for c in (False, True):
        for s in (False, True):
            opt = optimizers.rmsprop(0.01, centered=c, eps_in_sqrt=s, eps=1e-3)
            want = run(opt, jnp.zeros(6), 20)[0]
            np.testing.assert_allclose(final(jnp.asarray(c), jnp.asarray(s)), want, rtol=1e-6)
    opt = optimizers.adagrad(0.1, eps=1e-3)
    x_out = run(opt, jnp.zeros(6), 5)[0]
    x_in = run(optimizers.adagrad(0.1, eps=1e-3, eps_in_sqrt=True), jnp.zeros(6), 5)[0]
    assert not np.allclose(x_out, x_in)


# --------------------------------------------------------------------------- dtypes


def _params(dtype):
    return {
        "w": jnp.ones((3, 2), dtype),
        "b": jnp.full((2,), -0.5, dtype),
        "s": jnp.array(2, dtype),
    }


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept(name, dtype):
    with jax.enable_x64(True):  # float64 exists, and Python floats must not promote float32
        params = _params(jnp.dtype(dtype))
        lr = schedules.warmup(schedules.cosine(1e-2, 10), 2)
        opt = optimizers.get(name, learning_rate=lr, weight_decay=1e-3)
        state = opt.init(params)
        for _ in range(3):
            grads = jax.tree.map(lambda p: 2 * p, params)
            updates, state = opt.update(grads, state, params)
            params = jax.tree.map(jnp.add, params, updates)
        for leaf in jax.tree.leaves(updates) + jax.tree.leaves(params):
            assert leaf.dtype == jnp.dtype(dtype)
        assert state.count.dtype == jnp.int32 and state.count.shape == () and state.count == 3
        for field in state._fields[1:]:
            for leaf in jax.tree.leaves(getattr(state, field)):
                assert leaf.dtype == jnp.dtype(dtype), (field, leaf.dtype)


def test_state_types_are_named():
    x = jnp.zeros(2)
    assert isinstance(optimizers.adam().init(x), optimizers.AdamState)
    assert isinstance(optimizers.amsgrad().init(x), optimizers.AmsgradState)
    assert isinstance(optimizers.rmsprop().init(x), optimizers.RmspropState)
    assert optimizers.rmsprop().init(x).mu is None
    assert optimizers.rmsprop(centered=True).init(x).mu is not None


# --------------------------------------------------------------------------- convergence

# steps each optimizer needs with its defaults to cut the loss of a quadratic (condition 10,
# minimum about 1 away) by 1e6; adagrad's steps shrink like lr / sqrt(t) and adamw settles
# where its decoupled decay balances the normalised gradient, so both need more.
BUDGET = {"sgd": 1500, "momentum": 500, "nesterov": 500, "adagrad": 20000, "adadelta": 1500}
BUDGET |= {"rmsprop": 1000, "adam": 4000, "adamw": 10000, "nadam": 3000, "amsgrad": 6000}


@pytest.mark.parametrize("name", BUILTINS)
def test_converges_with_defaults(name):
    x0 = jnp.zeros(6)
    steps = BUDGET[name]
    _, losses = jax.jit(lambda x: run(optimizers.get(name), x, steps))(x0)
    losses = np.asarray(losses)
    initial = float(quadratic(x0))
    assert np.all(np.isfinite(losses))
    assert losses[-1] <= 1e-6 * initial, f"{name}: {losses[-1]:.3g} after {steps} steps"
    assert losses[-steps // 10 :].max() <= 1e-5 * initial  # settled, not passing through


# --------------------------------------------------------------------------- one source of defaults


FAMILY_DEFAULTS = {"sgd": "SGD", "momentum": "MOMENTUM", "nesterov": "NESTEROV"}
FAMILY_DEFAULTS |= {"adagrad": "ADAGRAD", "adadelta": "ADADELTA", "rmsprop": "RMSPROP"}
FAMILY_DEFAULTS |= {"adam": "ADAM", "adamw": "ADAMW", "nadam": "NADAM", "amsgrad": "AMSGRAD"}


@pytest.mark.parametrize("name", BUILTINS)
def test_defaults_are_read_from_the_factory_signature(name):
    factory = getattr(optimizers, name)
    signature = inspect.signature(factory)
    from_signature = {
        p.name: p.default for p in signature.parameters.values() if p.default is not p.empty
    }
    assert from_signature == _base.signature_defaults(factory)
    assert getattr(optimizers, f"{FAMILY_DEFAULTS[name]}_DEFAULTS") == from_signature
    assert optimizers.defaults(name) == from_signature


def test_adam_adamw_and_nadam_share_one_state_class():
    x = jnp.zeros(2)
    assert optimizers.AdamWState is optimizers.AdamState
    assert optimizers.NadamState is optimizers.AdamState
    for factory in (optimizers.adam, optimizers.adamw, optimizers.nadam):
        state = factory().init(x)
        assert type(state) is optimizers.AdamState and state._fields == ("count", "mu", "nu")
    assert type(optimizers.amsgrad().init(x)) is optimizers.AmsgradState
    assert optimizers.AmsgradState is not optimizers.AdamState


# --------------------------------------------------------------------------- checked once


@pytest.fixture
def checks(monkeypatch):
    """Counts the calls of the value check, per hyperparameter."""
    counts: dict[str, int] = {}
    original = _base.check_value

    def counting(name, key, value, defaults=None):
        counts[key] = counts.get(key, 0) + 1
        return original(name, key, value, defaults)

    monkeypatch.setattr(_base, "check_value", counting)
    return counts


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd", "optax:adam"])
def test_get_checks_each_value_once(checks, name):
    optimizers.get(name, learning_rate=1e-2)
    assert checks, name
    assert set(checks.values()) == {1}, checks
    assert "learning_rate" in checks


def test_factories_check_arrays_entry_by_entry():
    with pytest.raises(optbench.ConfigError, match=r"got 1.0 at index 1 of 2 values") as err:
        optimizers.adam(b1=np.array([0.5, 1.0]))
    assert err.value.key == "b1"
    with pytest.raises(optbench.ConfigError, match=r"learning_rate must be > 0, got nan"):
        optimizers.sgd(learning_rate=float("nan"))
    optimizers.adam(b1=np.array([0.0, 0.5, 0.99]))  # every entry valid


# --------------------------------------------------------------------------- validate(grid)


@pytest.fixture
def counted(clean_registry):
    """A user optimizer (Adam behind a wrapper) that records every build."""
    calls: list[dict] = []

    def counted_adam(**hparams):
        calls.append(hparams)
        return optimizers.adam(**hparams)

    optimizers.register("counted", counted_adam, optimizers.ADAM_DEFAULTS)
    return calls


LRS = tuple(float(v) for v in np.geomspace(1e-5, 1.0, 1024))


def test_validate_builds_a_1024_point_grid_once(counted):
    optimizers.validate("counted", {"learning_rate": LRS})
    assert len(counted) == 1
    assert counted[0]["learning_rate"] == LRS[0]  # built at the first value of the axis
    assert counted[0]["b1"] == 0.9  # the others at their defaults
    momenta = np.linspace(0.0, 0.99, 8)  # a numpy axis works too; grids multiply
    optimizers.validate("counted", {"learning_rate": LRS, "b1": momenta})
    assert len(counted) == 2 and counted[1]["b1"] == 0.0


def test_validate_checks_a_grid_axis_in_one_call(checks):
    optimizers.validate("adam", {"learning_rate": LRS, "b2": [0.9, 0.99, 0.999]})
    assert checks["learning_rate"] == 1 and checks["b2"] == 1
    assert set(checks.values()) == {1}


@pytest.mark.parametrize("name", ["counted", "adam", "optax:adam"])
def test_validate_rejects_a_bad_value_anywhere_in_the_grid(counted, name):
    lrs = list(LRS)
    lrs[699] = -1.0
    with pytest.raises(optbench.ConfigError) as err:
        optimizers.validate(name, {"learning_rate": lrs})
    assert err.value.key == "learning_rate"
    assert f"{name}: learning_rate must be > 0, got -1.0 at index 699 of 1024 values" in str(
        err.value
    )
    assert "use a positive value such as 0.001" in str(err.value)
    assert counted == []  # rejected before anything was built
    b1 = [0.9] * 600 + [1.0] + [0.9] * 423
    with pytest.raises(optbench.ConfigError, match=r"b1 must be in \[0, 1\), got 1.0 at index 600"):
        optimizers.validate(name, {"learning_rate": LRS, "b1": b1})


@pytest.mark.parametrize(
    ("name", "grid", "switches", "key", "pattern"),
    [
        ("adma", {}, None, "name", r"did you mean 'adam'"),
        ("adam", {"learning_rat": [1e-3]}, None, "learning_rat", r"did you mean 'learning_rate'"),
        ("adam", {"beta1": [0.9]}, None, "beta1", r"adam: unknown hyperparameter 'beta1'"),
        ("rmsprop", {}, {"centred": True}, "centred", r"did you mean 'centered'"),
        ("optax:adam", {"b11": [0.9]}, None, "b11", r"did you mean 'b1'"),
        ("rmsprop", {"decay": [0.9]}, {"centered": 1.0}, "centered", r"must be true or false"),
        ("adam", {"learning_rate": []}, None, "learning_rate", r"one or more numbers"),
        ("adam", {"learning_rate": [1e-3, "fast"]}, None, "learning_rate", r"got 'fast' at"),
        ("adam", {"learning_rate": [1e-3, True]}, None, "learning_rate", r"must be a number"),
        ("adam", {"eps": [1e-8]}, {"eps": 1e-8}, "eps", r"both as a grid and as a switch"),
        ("adagrad", {"eps": [1e-8, -1.0]}, None, "eps", r"adagrad: eps must be >= 0, got -1.0"),
        ("optax:sgd", {"momentum": [0.5, 1.2]}, None, "momentum", r"momentum must be in \[0, 1\)"),
        ("optax:clip_by_global_norm", {}, None, "max_norm", r"max_norm has no default"),
    ],
)
def test_validate_errors(name, grid, switches, key, pattern):
    with pytest.raises(optbench.ConfigError, match=pattern) as err:
        optimizers.validate(name, grid, switches)
    assert err.value.key == key


def test_validate_optax_names():
    optimizers.validate("optax:lion", {"learning_rate": LRS, "b1": [0.9, 0.95]})
    optimizers.validate("optax:sgd", {"learning_rate": LRS}, {"nesterov": True})
    optimizers.validate("optax:clip_by_global_norm", {"max_norm": [0.5, 1.0, 2.0]})
    optimizers.validate("rmsprop", {"learning_rate": LRS}, {"centered": True, "eps_in_sqrt": True})
    with pytest.raises(optbench.ConfigError, match="learning_rate must be > 0") as err:
        optimizers.validate("optax:sgd", {"learning_rate": [*LRS, 0.0]})
    assert err.value.key == "learning_rate"


def test_validate_runs_the_factory_s_own_checks(clean_registry):
    def clipped_sgd(learning_rate=1e-2, clip=1.0):
        if clip <= 0:
            raise optbench.ConfigError(f"clip must be > 0, got {clip}", key="clip")
        return optax.chain(optax.clip(clip), optax.sgd(learning_rate))

    optimizers.register("clipped", clipped_sgd, {"learning_rate": 1e-2, "clip": 1.0})
    optimizers.validate("clipped", {"learning_rate": LRS, "clip": [0.5, 1.0]})
    with pytest.raises(optbench.ConfigError, match="clip must be > 0") as err:
        optimizers.validate("clipped", {"clip": [-1.0]})
    assert err.value.key == "clip"
