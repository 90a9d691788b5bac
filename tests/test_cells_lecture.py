"""The recurrent cells against the lecture: gate-bias initialisation, gradient-flow probes
(dJ/dh_t for every timestep t, on the hand-written backward pass as by autodiff) and the
vanishing gradient of the tanh RNN."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optbench.problems.tasks as tasks
from optbench import ConfigError
from optbench.problems.tasks import cells, data, models

T, B, D, H = 5, 3, 2, 4


def _step(cell: str, p: dict, x_t: jax.Array, h: jax.Array, c: jax.Array):
    """One timestep written out gate by gate from the equations of the cells' docstrings,
    independently of the cells module."""
    w, b, u = p["w"], p["b"], p["w_h"]
    if cell == "rnn":
        return jnp.tanh(x_t @ w + b + h @ u), c
    if cell == "lstm":
        z = x_t @ w + b + h @ u
        i, f, g, o = (z[:, k * H : (k + 1) * H] for k in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c), c
    xp, hh = x_t @ w + b, h @ u + p["b_h"]
    r = jax.nn.sigmoid(xp[:, :H] + hh[:, :H])
    z = jax.nn.sigmoid(xp[:, H : 2 * H] + hh[:, H : 2 * H])
    n = jnp.tanh(xp[:, 2 * H :] + r * hh[:, 2 * H :])
    return (1 - z) * n + z * h, c


def _model_and_params(cell: str):
    model = models.sequence_model(cell=cell, hidden=H, inputs=D, outputs=1)
    params, _ = model.init(jax.random.PRNGKey(0), jnp.float32)
    # Perturb every parameter so that no gate sits at a special value.
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    noisy = [a + 0.3 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys, strict=True)]
    return model, jax.tree.unflatten(tree, noisy)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_probe_gradient_is_the_gradient_wrt_each_hidden_state(cell):
    model, params = _model_and_params(cell)
    kx, ky = jax.random.split(jax.random.PRNGKey(2))
    x = jax.random.normal(kx, (B, T, D))
    y = jax.random.normal(ky, (B,))
    rnn, out = params["rnn"], params["out"]

    def loss_of_output(h_last):
        return jnp.sum(((h_last @ out["w"] + out["b"])[:, 0] - y) ** 2)

    def tail(t: int, h, c):
        """The loss as a function of h_t (and c_t): steps t+1..T, then the output."""
        for s in range(t, T):
            h, c = _step(cell, rnn, x[:, s], h, c)
        return loss_of_output(h)

    # Forward step by step, keeping every (h_t, c_t), t = 1..T.
    h, c = jnp.zeros((B, H)), jnp.zeros((B, H))
    states = []
    for s in range(T):
        h, c = _step(cell, rnn, x[:, s], h, c)
        states.append((h, c))
    want = jnp.stack([jax.grad(tail, argnums=1)(t + 1, *states[t]) for t in range(T)])

    assert model.flow == "time" and model.probe_shape(x) == (T, B, H)

    def probed(probes):
        pred, _ = model.apply(params, {}, x, probes=probes)
        return jnp.sum((pred - y) ** 2)

    zeros = jnp.zeros(model.probe_shape(x))
    got = jax.grad(probed)(zeros)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Zero probes change nothing; the loss is the one computed by hand, within a few float32
    # ulps: the model sums U h + W x + b in one matmul, the hand-written step in three terms
    # (1 ulp apart on some CPUs, equal on others).
    want_loss = tail(0, jnp.zeros((B, H)), jnp.zeros((B, H)))
    np.testing.assert_allclose(probed(zeros), want_loss, rtol=4 * np.finfo(np.float32).eps)
    pred, _ = model.apply(params, {}, x)
    np.testing.assert_allclose(pred, model.apply(params, {}, x, probes=zeros)[0], rtol=1e-6)
    # A probe on h_T reaches the output layer directly.
    bump = zeros.at[T - 1].set(1.0)
    moved, _ = model.apply(params, {}, x, probes=bump)
    np.testing.assert_allclose(moved - pred, jnp.sum(out["w"][:, 0]), rtol=1e-5)


def test_the_hand_written_backward_pass_is_used_with_and_without_probes():
    x = jnp.ones((B, T, D))

    def jaxpr(probes, **kw):
        model = models.sequence_model(cell="lstm", hidden=H, inputs=D, outputs=1, **kw)
        params, _ = model.init(jax.random.PRNGKey(0), jnp.float32)
        return str(jax.make_jaxpr(lambda p: model.apply(p, {}, x, probes=probes)[0])(params))

    probes = jnp.zeros((T, B, H))
    assert "custom_vjp" in jaxpr(None) and "custom_vjp" in jaxpr(probes)
    assert "custom_vjp" not in jaxpr(probes, custom_vjp=False)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_probed_custom_vjp_matches_autodiff_in_float64(name):
    """cells.recurrent_probed's hand-written gradients, the probes' and every argument's,
    are those of autodiff through cells.recurrent_reference, at zero and non-zero probes."""
    cell = cells.CELLS[name]
    t, b, d, h, g = 6, 3, 3, 4, cell.gates
    with jax.enable_x64(True):
        ks = jax.random.split(jax.random.PRNGKey(1), 10)
        f64 = jnp.float64
        args = (
            jax.random.normal(ks[0], (t, b, d), f64),
            jax.random.normal(ks[1], (d, g * h), f64) * 0.5,
            jax.random.normal(ks[2], (g * h,), f64),
            jax.random.normal(ks[3], (h, g * h), f64) * 0.5,
            jax.random.normal(ks[4], (g * h,), f64),
            jax.random.normal(ks[5], (b, h), f64),
            jax.random.normal(ks[6], (b, h if cell.has_cell_state else 0), f64),
        )
        w_out = jax.random.normal(ks[7], (b, h), f64)
        every = tuple(range(len(args) + 1))  # x, w, b, w_h, b_h, h0, c0 and the probes

        def loss(fn):
            return lambda *a: jnp.sum(jnp.sin(fn(cell, *a)) * w_out)

        for probes in (jnp.zeros((t, b, h), f64), 0.3 * jax.random.normal(ks[8], (t, b, h), f64)):
            np.testing.assert_allclose(
                cells.recurrent_probed(cell, *args, probes),
                cells.recurrent_reference(cell, *args, probes),
                rtol=1e-12,
            )
            got = jax.grad(loss(cells.recurrent_probed), argnums=every)(*args, probes)
            want = jax.grad(loss(cells.recurrent_reference), argnums=every)(*args, probes)
            for a, w in zip(got, want, strict=True):
                assert a.shape == w.shape and a.dtype == w.dtype == f64
                np.testing.assert_allclose(a, w, rtol=1e-10, atol=1e-13)
            # The probes' gradient differs from step to step (by more than the tolerance): a
            # cotangent one timestep off would fail the comparison.
            assert not np.allclose(np.roll(want[-1], 1, axis=0), want[-1], rtol=1e-3)
        # under vmap too (the flow program maps over snapshots)
        batched = [jnp.stack([a, 2 * a]) for a in (*args, probes)]
        vgrad = [
            jax.vmap(jax.grad(loss(fn), argnums=(1, 7)))
            for fn in (cells.recurrent_probed, cells.recurrent_reference)
        ]
        for a, w in zip(vgrad[0](*batched), vgrad[1](*batched), strict=True):
            np.testing.assert_allclose(a, w, rtol=1e-10, atol=1e-13)


# --- gate biases -------------------------------------------------------------------------


def test_gate_biases_sit_in_the_second_gate_block():
    key = jax.random.PRNGKey(0)
    lstm = models.init_recurrent(key, "lstm", D, H, jnp.float32, forget_bias=2.5)
    np.testing.assert_array_equal(lstm["b"], [0] * H + [2.5] * H + [0] * 2 * H)  # i f g o
    gru = models.init_recurrent(key, "gru", D, H, jnp.float32, update_bias=1.5)
    np.testing.assert_array_equal(gru["b"], [0] * H + [1.5] * H + [0] * H)  # r z n
    np.testing.assert_array_equal(gru["b_h"], np.zeros(3 * H))
    rnn = models.init_recurrent(key, "rnn", D, H, jnp.float32, forget_bias=3.0, update_bias=3.0)
    np.testing.assert_array_equal(rnn["b"], np.zeros(H))


@pytest.mark.parametrize(
    ("name", "forget", "update"), [("adding", 2.0, 3.0), ("digits_rnn", 1.0, 0.0)]
)
def test_gate_bias_parameters(name, forget, update):
    d = tasks.defaults(name)
    assert (d["forget_bias"], d["update_bias"]) == (forget, update)
    assert f"forget_bias={d['forget_bias']!r}" in tasks.describe(name)
    for cell, kept in (("lstm", "forget_bias"), ("gru", "update_bias"), ("rnn", None)):
        params = tasks.get(name, cell=cell).params
        assert [k for k in ("forget_bias", "update_bias") if k in params] == [kept] * bool(kept)
        # The resolved parameters resolve again to the same task (a worker rebuilds it so).
        assert tasks.get(name, **params).params == params
    task = tasks.get(name, cell="gru", update_bias=0)
    assert task.params["update_bias"] == 0.0
    p, _ = task._model.init(jax.random.PRNGKey(0), jnp.float32)
    np.testing.assert_array_equal(p["rnn"]["b"], np.zeros(3 * 64))


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"cell": "lstm", "update_bias": 2.0}, "update_bias is a parameter of cell = 'gru'"),
        ({"cell": "gru", "forget_bias": 2.0}, "forget_bias is a parameter of cell = 'lstm'"),
        ({"cell": "rnn", "forget_bias": 1.0}, "not of cell = 'rnn'"),
        ({"update_bias": 2.0}, "set cell = 'gru'"),  # the default cell is the LSTM
        ({"cell": "gru", "update_bias": 11.0}, "[-10.0, 10.0]"),
        ({"forget_bias": "one"}, "forget_bias"),
    ],
)
def test_gate_bias_errors(params, needle):
    with pytest.raises(ConfigError) as err:
        tasks.get("adding", **params)
    assert needle in str(err.value)


# --- the lecture's vanishing gradient, at initialisation -------------------------------


def _flow_at_init(cell: str, **bias: float) -> np.ndarray:
    """sqrt(mean_i ||dJ_i/dh_t||^2), t = 1..50, on 64 adding sequences at initialisation."""
    model = models.sequence_model(cell=cell, hidden=64, inputs=2, outputs=1, **bias)
    params, _ = model.init(jax.random.PRNGKey(0), jnp.float32)
    x, y = data.adding_batch(jax.random.PRNGKey(1), 64, 50)

    def loss(probes):
        return jnp.sum((model.apply(params, {}, x, probes=probes)[0] - y) ** 2)

    g = jax.grad(loss)(jnp.zeros(model.probe_shape(x)))
    return np.sqrt(np.mean(np.sum(np.square(g), -1), -1))


def test_the_lecture_vanishing_gradient_at_initialisation():
    """Over 50 steps back, at the adding task's default gate biases the LSTM and the GRU
    keep the gradient within an order of magnitude; at bias 0 it vanishes, and the tanh RNN
    (orthogonal U) loses more than the gated cells at their defaults."""
    d = tasks.defaults("adding")
    ratio = {}
    for name, cell, bias in (
        ("rnn", "rnn", {}),
        ("lstm", "lstm", {"forget_bias": d["forget_bias"]}),
        ("gru", "gru", {"update_bias": d["update_bias"]}),
        ("lstm0", "lstm", {"forget_bias": 0.0}),
        ("gru0", "gru", {"update_bias": 0.0}),
    ):
        g = _flow_at_init(cell, **bias)
        assert np.isfinite(g).all() and (g > 0).all()
        ratio[name] = g[0] / g[-1]
    assert ratio["lstm"] > 0.1 and ratio["gru"] > 0.1
    assert ratio["lstm0"] < 1e-5 and ratio["gru0"] < 1e-5
    assert ratio["rnn"] < 0.5 * min(ratio["lstm"], ratio["gru"])
