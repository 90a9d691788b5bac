"""The non-recurrent models and layers against the lecture: deep and residual MLPs with their
gradient-flow probes, dropout's two forms and traced rates, batchnorm's alpha, the penalty."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optbench.problems.tasks as tasks
from optbench import ConfigError
from optbench.problems.tasks import data, layers, models


def _x(n: int = 32, dtype=jnp.float32) -> jax.Array:
    return jnp.asarray(data.digits_split().x_val[:n], dtype)


def _xent(logits: jax.Array, y: jax.Array) -> jax.Array:
    picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - picked)


def _one_hidden_layer_mlp(hidden, batchnorm, dropout, activation):
    """The one-hidden-layer MLP as it was before depth, residual and the dropout modes."""
    act = layers.ACTIVATIONS[activation]

    def init(key, dtype):
        k1, k2 = jax.random.split(key)
        params = {
            "hidden": {
                "w": layers.init_weight(k1, (64, hidden), 64, hidden, activation, dtype),
                "b": jnp.zeros((hidden,), dtype),
            },
            "out": {
                "w": layers.glorot_uniform(k2, (hidden, 10), hidden, 10, dtype),
                "b": jnp.zeros((10,), dtype),
            },
        }
        state = {}
        if batchnorm:
            params["bn"], state["bn"] = layers.init_batchnorm(hidden, dtype)
        return params, state

    def apply(params, state, x, *, key=None, train=False):
        new_state = {}
        y = layers.dense(x.reshape(x.shape[0], -1), params["hidden"]["w"], params["hidden"]["b"])
        if batchnorm:
            m = layers.BATCHNORM_MOMENTUM
            mean = jnp.mean(y, axis=0)
            var = jnp.mean(jnp.square(y - mean), axis=0)
            s = state["bn"]
            if train:
                s = {"mean": m * s["mean"] + (1 - m) * mean, "var": m * s["var"] + (1 - m) * var}
            else:
                mean, var = s["mean"], s["var"]
            y = (y - mean) * jax.lax.rsqrt(var + layers.BATCHNORM_EPS) * params["bn"]["scale"]
            y, new_state["bn"] = y + params["bn"]["bias"], s
        y = act(y)
        if train and dropout:
            keep = jax.random.bernoulli(key, 1.0 - dropout, y.shape)
            y = jnp.where(keep, y / (1.0 - dropout), jnp.zeros_like(y))
        return layers.dense(y, params["out"]["w"], params["out"]["b"]), new_state

    return init, apply


# --- deep and residual MLP ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(("batchnorm", "dropout"), [(False, 0.0), (True, 0.3)])
def test_depth_one_is_the_one_hidden_layer_mlp_bit_for_bit(dtype, batchnorm, dropout):
    with jax.enable_x64(dtype == jnp.float64):
        model = tasks.get("digits_mlp", hidden=16, batchnorm=batchnorm, dropout=dropout)._model
        ref_init, ref_apply = _one_hidden_layer_mlp(16, batchnorm, dropout, "relu")
        x, key = _x(dtype=dtype), jax.random.PRNGKey(4)
        params, state = model.init(jax.random.PRNGKey(3), dtype)
        ref = ref_init(jax.random.PRNGKey(3), dtype)
        jax.tree.map(np.testing.assert_array_equal, (params, state), ref)
        for train in (False, True):
            got = model.apply(params, state, x, key=key, train=train)
            want = ref_apply(params, state, x, key=key, train=train)
            jax.tree.map(np.testing.assert_array_equal, got, want)
            # probes of zeros leave every number alone
            zeros = jnp.zeros(model.probe_shape(x), dtype)
            with_probes = model.apply(params, state, x, key=key, train=train, probes=zeros)
            jax.tree.map(np.testing.assert_array_equal, with_probes, want)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_probe_gradient_is_the_gradient_of_each_block_output(residual, batchnorm):
    depth, hidden, act = 3, 8, layers.ACTIVATIONS["tanh"]
    model = models.digits_mlp(
        hidden=hidden,
        batchnorm=batchnorm,
        dropout=0.0,
        activation="tanh",
        depth=depth,
        residual=residual,
    )
    assert model.flow == "depth"
    x, y = _x(), jnp.asarray(data.digits_split().y_val[:32])
    assert model.probe_shape(x) == (depth, 32, hidden)
    params, state = model.init(jax.random.PRNGKey(0), jnp.float32)
    names = ["hidden", "hidden2", "hidden3"]
    bns = ["bn", "bn2", "bn3"]

    def block(i, h):
        z = layers.dense(h, params[names[i]]["w"], params[names[i]]["b"])
        if batchnorm:
            z, _ = layers.batchnorm(z, params[bns[i]], state[bns[i]], train=False)
        return h + act(z) if residual and i > 0 else act(z)

    def loss_from(i, h):  # the loss as a function of block i's output
        for j in range(i + 1, depth):
            h = block(j, h)
        return _xent(layers.dense(h, params["out"]["w"], params["out"]["b"]), y)

    outputs, h = [], x.reshape(32, -1)
    for i in range(depth):
        h = block(i, h)
        outputs.append(h)
    direct = [jax.grad(loss_from, argnums=1)(i, outputs[i]) for i in range(depth)]

    def probed_loss(probes):
        return _xent(model.apply(params, state, x, probes=probes)[0], y)

    via_probes = jax.grad(probed_loss)(jnp.zeros(model.probe_shape(x)))
    for i in range(depth):
        np.testing.assert_allclose(via_probes[i], direct[i], rtol=1e-5, atol=1e-8)
    assert float(jnp.abs(via_probes[0]).max()) > 0


def _flow(model, x, y) -> np.ndarray:
    params, state = model.init(jax.random.PRNGKey(0), jnp.float32)
    g = jax.grad(lambda p: _xent(model.apply(params, state, x, probes=p)[0], y))(
        jnp.zeros(model.probe_shape(x))
    )
    return np.sqrt(np.mean(np.sum(np.asarray(g) ** 2, axis=-1), axis=-1))


def test_sigmoid_gradient_vanishes_with_depth_and_skip_connections_restore_it():
    x, y = _x(64), jnp.asarray(data.digits_split().y_val[:64])
    kw = {"hidden": 64, "batchnorm": False, "dropout": 0.0, "activation": "sigmoid", "depth": 10}
    plain = _flow(models.digits_mlp(**kw), x, y)
    skips = _flow(models.digits_mlp(**kw, residual=True), x, y)
    assert plain[0] / plain[-1] < 1e-4  # measured 2e-6 at hidden 128
    assert 0.5 < skips[0] / skips[-1] < 2.0  # measured 1.02


def test_residual_needs_no_new_parameters_and_scales_its_branches():
    kw = {"hidden": 8, "batchnorm": True, "dropout": 0.0, "activation": "relu", "depth": 3}
    p0, _ = models.digits_mlp(**kw).init(jax.random.PRNGKey(1), jnp.float32)
    p1, _ = models.digits_mlp(**kw, residual=True).init(jax.random.PRNGKey(1), jnp.float32)
    assert jax.tree.structure(p0) == jax.tree.structure(p1)
    assert sorted(p0) == ["bn", "bn2", "bn3", "hidden", "hidden2", "hidden3", "out"]
    np.testing.assert_array_equal(p1["hidden"]["w"], p0["hidden"]["w"])
    np.testing.assert_allclose(p1["hidden3"]["w"], p0["hidden3"]["w"] / 2**0.5, rtol=1e-6)


# --- dropout -----------------------------------------------------------------------------


def test_dropout_modes_have_matching_expectations():
    x, key = jnp.ones((2000, 50)), jax.random.PRNGKey(0)
    inverted = layers.dropout(key, x, 0.3, train=True)
    scaled = layers.dropout(key, x, 0.3, train=True, mode="test_scaling")
    np.testing.assert_array_equal(inverted == 0, scaled == 0)  # the same mask
    assert set(np.unique(scaled)) == {0.0, 1.0}
    np.testing.assert_allclose(inverted.mean(), 1.0, atol=0.01)
    np.testing.assert_allclose(scaled.mean(), 0.7, atol=0.01)
    assert layers.dropout(None, x, 0.3, train=False) is x
    np.testing.assert_allclose(layers.dropout(None, x, 0.3, train=False, mode="test_scaling"), 0.7)
    with pytest.raises(ValueError, match="inverted"):
        layers.dropout(key, x, 0.3, train=True, mode="paper")


@pytest.mark.parametrize("name", ["digits_cnn", "digits_mlp"])
@pytest.mark.parametrize("mode", ["inverted", "test_scaling"])
def test_traced_dropout_rate(name, mode):
    kw = {"depth": 2} if name == "digits_mlp" else {}
    model = tasks.get(name, dropout=0.3, dropout_mode=mode, **kw)._model
    off = tasks.get(name, dropout=0.0, dropout_mode=mode, **kw)._model
    params, state = model.init(jax.random.PRNGKey(0), jnp.float32)
    x, key = _x(), jax.random.PRNGKey(5)

    # Parameters and data are arguments, as in training: closed over, XLA folds them into
    # constants and its float32 results then differ in the last bit between the programs.
    @functools.partial(jax.jit, static_argnums=3)
    def run(params, x, rate, train):
        return model.apply(params, state, x, key=key, train=train, dropout=rate)[0]

    @functools.partial(jax.jit, static_argnums=2)
    def no_dropout(params, x, train):
        return off.apply(params, state, x, key=key, train=train)[0]

    for train in (True, False):
        # one compiled program for both rates; a traced 0 is exactly no dropout
        zero = run(params, x, jnp.float32(0.0), train)
        np.testing.assert_array_equal(zero, no_dropout(params, x, train))
        traced = run(params, x, jnp.float32(0.3), train)
        default = model.apply(params, state, x, key=key, train=train)[0]
        np.testing.assert_allclose(traced, default, rtol=1e-5, atol=1e-6)
    assert run._cache_size() == 2  # train and evaluation, each for every rate
    # the configured rate applies when apply is given none; a concrete 0 turns it off
    plain = model.apply(params, state, x, key=key, train=True, dropout=0.0)[0]
    np.testing.assert_array_equal(plain, off.apply(params, state, x, key=key, train=True)[0])


def test_test_scaling_scales_at_evaluation_only():
    kw = {"hidden": 16, "batchnorm": False, "dropout": 0.5, "activation": "relu"}
    inv = models.digits_mlp(**kw)
    ts = models.digits_mlp(**kw, dropout_mode="test_scaling")
    params, state = inv.init(jax.random.PRNGKey(0), jnp.float32)
    x, key = _x(), jax.random.PRNGKey(2)
    out_w, out_b = params["out"]["w"], params["out"]["b"]
    # training: test_scaling keeps the survivors unscaled, inverted doubles them (p = 0.5)
    t_inv = inv.apply(params, state, x, key=key, train=True)[0] - out_b
    t_ts = ts.apply(params, state, x, key=key, train=True)[0] - out_b
    np.testing.assert_allclose(t_inv, 2 * t_ts, rtol=1e-5, atol=1e-5)
    # evaluation: inverted is the plain network, test_scaling halves the last block
    e_inv = inv.apply(params, state, x, train=False)[0] - out_b
    e_ts = ts.apply(params, state, x, train=False)[0] - out_b
    np.testing.assert_allclose(e_ts, 0.5 * e_inv, rtol=1e-5, atol=1e-5)
    assert out_w.shape == (16, 10)


# --- batchnorm, penalty, activations, catalogue ------------------------------------------


def test_batchnorm_alpha():
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(0), (64, 4), jnp.float64) * 3 + 5
        p, s = layers.init_batchnorm(4, jnp.float64)
        _, s1 = layers.batchnorm(x, p, s, train=True, alpha=0.3)
        np.testing.assert_allclose(s1["mean"], 0.3 * x.mean(0), rtol=1e-12)
        np.testing.assert_allclose(s1["var"], 0.7 + 0.3 * x.var(0), rtol=1e-12)
        _, last = layers.batchnorm(x, p, s, train=True, alpha=1.0)
        np.testing.assert_allclose(last["mean"], x.mean(0), rtol=1e-12)
        # the default is the momentum form the layer always had, to the last bit
        _, default = layers.batchnorm(x, p, s, train=True)
        _, explicit = layers.batchnorm(x, p, s, train=True, alpha=0.1)
        m = 0.9
        np.testing.assert_array_equal(default["mean"], m * s["mean"] + (1 - m) * x.mean(0))
        jax.tree.map(np.testing.assert_array_equal, default, explicit)


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5])
def test_bn_alpha_is_validated(value):
    with pytest.raises(ConfigError, match="bn_alpha"):
        tasks.get("digits_cnn", bn_alpha=value)


def test_new_task_parameters():
    t = tasks.get("digits_mlp", depth=4, residual=True, dropout_mode="test_scaling", bn_alpha=1)
    assert (t.params["depth"], t.params["residual"], t.params["bn_alpha"]) == (4, True, 1.0)
    assert tasks.defaults("digits_cnn")["dropout_mode"] == "inverted"
    assert tasks.defaults("digits_mlp")["bn_alpha"] == 0.1
    assert "depth" not in tasks.defaults("digits_logreg")
    with pytest.raises(ConfigError, match="'inverted'"):
        tasks.get("digits_mlp", dropout_mode="invert")
    with pytest.raises(ConfigError, match="depth"):
        tasks.get("digits_mlp", depth=0)


def test_weight_penalty_with_traced_coefficients():
    params = {"a": {"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([5.0])}, "c": {"w": jnp.ones(3)}}
    expect = 0.1 * 6 + 0.01 * 8
    np.testing.assert_allclose(jax.jit(models.weight_penalty)(params, 0.1, 0.01), expect, 1e-6)
    many = jax.vmap(models.weight_penalty, in_axes=(None, 0, 0))
    np.testing.assert_allclose(
        many(params, jnp.array([0.0, 0.1]), jnp.array([0.0, 0.01])), [0, expect], 1e-6
    )
    assert float(models.weight_penalty(params, np.float64(0.0), np.float32(0.0))) == 0.0
    # l2 = wd / 2 gives the gradient of coupled weight decay, g + wd * w
    wd = 0.02
    grad = jax.grad(models.weight_penalty)(params, 0.0, wd / 2)
    np.testing.assert_allclose(grad["a"]["w"], wd * params["a"]["w"], rtol=1e-6)
    np.testing.assert_array_equal(grad["a"]["b"], 0.0)
    with jax.enable_x64(True):  # a float64 coefficient keeps a float32 penalty float32
        assert models.weight_penalty(params, jnp.float64(0.1), 0.0).dtype == jnp.float32


def test_sigmoid_is_one_over_one_plus_exp_minus_a():
    a = jnp.linspace(-4.0, 4.0, 9)
    np.testing.assert_allclose(layers.ACTIVATIONS["sigmoid"](a), 1 / (1 + jnp.exp(-a)), rtol=1e-6)
