"""Tests of the training tasks: API and errors, layers, cells, the training program, quality."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

import optbench.problems.tasks as tasks
from optbench import ConfigError
from optbench.problems.tasks import cells, data, layers, models, train
from optbench.problems.tasks import shards as _shards


def adam(h):
    return optax.adam(h["learning_rate"])


def sgd(h):
    return optax.sgd(h["learning_rate"])


def run(task, lrs, seeds, make=adam, **kw):
    kw = {"budget": 2, "batch_size": 64, "log_every": 16, "dtype": jnp.float32, **kw}
    lrs = np.asarray(lrs, float)
    return task.run(make, {"learning_rate": lrs}, np.asarray(seeds), **kw)


# --- catalogue and errors ---------------------------------------------------------------


def test_names_defaults_describe():
    assert tasks.names() == ["adding", "digits_cnn", "digits_logreg", "digits_mlp", "digits_rnn"]
    assert tasks.defaults("adding") == {
        "length": 50,
        "cell": "lstm",
        "hidden": 64,
        "forget_bias": 2.0,
        "update_bias": 3.0,
    }
    t = tasks.get("digits_cnn", dropout=0.25)
    assert t.params["dropout"] == 0.25 and t.params["activation"] == "relu"
    assert t.budget == "epochs" and not t.recurrent
    assert tasks.get("adding").budget == "steps" and tasks.get("digits_rnn").recurrent
    assert "adding problem" in tasks.describe("adding")
    assert t.num_steps(20, 64) == 20 * (1077 // 64)
    assert tasks.get("adding").num_steps(4000, 64) == 4000


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        ("digits_cnnn", {}, "'digits_cnn'"),
        ("digits_cnn", {"dropuot": 0.1}, "'dropout'"),
        ("digits_cnn", {"activation": "rleu"}, "'relu'"),
        ("adding", {"cell": "lstn"}, "'lstm'"),
        ("digits_cnn", {"dropout": 1.5}, "[0.0, 1.0)"),
        ("digits_cnn", {"l2": -1.0}, ">= 0.0"),
        ("digits_cnn", {"batchnorm": 1}, "true or false"),
        ("adding", {"hidden": 0}, ">= 1"),
        ("adding", {"length": 2.5}, "whole number"),
    ],
)
def test_config_errors(name, params, needle):
    with pytest.raises(ConfigError) as err:
        tasks.get(name, **params)
    assert needle in str(err.value)


def test_bad_budget_and_batch_size():
    with pytest.raises(ConfigError, match="batch_size"):
        tasks.get("digits_logreg").num_steps(1, 5000)
    with pytest.raises(ConfigError, match="steps"):
        tasks.get("adding").num_steps(0, 64)


# --- data and layers --------------------------------------------------------------------


def test_digits_split_is_fixed_stratified_and_disjoint():
    s = data.digits_split()
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (1077, 360, 360)
    for y in (s.y_train, s.y_val, s.y_test):
        frac = np.bincount(y, minlength=10) / len(y)
        assert np.all(np.abs(frac - 0.1) < 0.02)
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 1797
    assert data.digits_split() is s  # computed once, the same for every task and run
    assert 0.0 <= s.x_train.min() and s.x_train.max() <= 1.0


def test_adding_batch():
    x, y = data.adding_batch(jax.random.PRNGKey(3), 256, 20)
    x, y = np.asarray(x), np.asarray(y)
    marks = x[..., 1]
    assert np.all(marks.sum(1) == 2)
    assert np.all(marks[:, :10].sum(1) == 1) and np.all(marks[:, 10:].sum(1) == 1)
    np.testing.assert_allclose(y, (x[..., 0] * marks).sum(1), rtol=1e-6)
    assert 0 <= x[..., 0].min() and x[..., 0].max() <= 1
    xv, _, xt, yt = data.adding_eval_sets(20)
    assert xt.shape == (1000, 20, 2) and not np.array_equal(xv, xt)
    # Predicting the mean gives about 1/6.
    assert abs(np.mean((yt - 1.0) ** 2) - 1 / 6) < 0.02


def test_random_shift_moves_at_most_one_pixel():
    x = jax.random.uniform(jax.random.PRNGKey(0), (200, 8, 8)) + 0.1  # no zero pixels
    out = np.asarray(data.random_shift(jax.random.PRNGKey(1), x))
    padded = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1)))
    seen = set()
    for n in range(len(out)):
        matches = [
            (i, j)
            for i in range(3)
            for j in range(3)
            if np.array_equal(out[n], padded[n, i : i + 8, j : j + 8])
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9  # every shift in -1..1 x -1..1 happens


@pytest.mark.parametrize("channels", [1, 3])  # nine one-channel matmuls, three row matmuls
def test_conv3x3_matches_lax_conv(channels):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(k1, (2, 8, 8, channels))
    w = jax.random.normal(k2, (3, 3, channels, 5))
    b = jax.random.normal(k3, (5,))
    ref = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(layers.conv3x3(x, w, b), ref + b, rtol=1e-5, atol=1e-5)


def test_max_pool():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(layers.max_pool2x2(x)[0, :, :, 0], [[5, 7], [13, 15]])


def test_batchnorm_train_uses_batch_stats_eval_uses_running():
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 4)) * 3 + 5
    p, s = layers.init_batchnorm(4, jnp.float32)
    y, s1 = layers.batchnorm(x, p, s, train=True)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-3)
    m = layers.BATCHNORM_MOMENTUM
    np.testing.assert_allclose(s1["mean"], (1 - m) * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(s1["var"], m + (1 - m) * x.var(0), rtol=1e-5)
    y_eval, s2 = layers.batchnorm(x, p, s1, train=False)
    expect = (x - s1["mean"]) / jnp.sqrt(s1["var"] + layers.BATCHNORM_EPS)
    np.testing.assert_allclose(y_eval, expect, rtol=1e-5)
    assert s2 is s1  # evaluation leaves the running averages alone


def test_dropout_train_and_eval():
    x = jnp.ones((1000, 50))
    assert layers.dropout(None, x, 0.5, train=False) is x
    y = np.asarray(layers.dropout(jax.random.PRNGKey(0), x, 0.5, train=True))
    assert set(np.unique(y)) == {0.0, 2.0}
    assert abs(np.mean(y == 0) - 0.5) < 0.02


def test_model_eval_is_deterministic_and_dropout_free():
    model = models.digits_cnn(batchnorm=True, dropout=0.5, activation="relu")
    plain = models.digits_cnn(batchnorm=True, dropout=0.0, activation="relu")
    params, state = model.init(jax.random.PRNGKey(0), jnp.float32)
    x = jnp.asarray(data.digits_split().x_val[:32])
    e1, s_eval = model.apply(params, state, x, key=jax.random.PRNGKey(1), train=False)
    e2, _ = plain.apply(params, state, x, key=jax.random.PRNGKey(2), train=False)
    np.testing.assert_array_equal(e1, e2)
    t1, s_train = model.apply(params, state, x, key=jax.random.PRNGKey(1), train=True)
    t2, _ = model.apply(params, state, x, key=jax.random.PRNGKey(2), train=True)
    assert not np.allclose(t1, t2)  # dropout masks differ in training
    assert not np.allclose(s_train["bn1"]["mean"], state["bn1"]["mean"])
    np.testing.assert_array_equal(s_eval["bn1"]["mean"], state["bn1"]["mean"])


def test_weight_penalty():
    params = {
        "a": {"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([100.0])},
        "bn": {"scale": jnp.array([7.0])},
        "c": {"w": jnp.array([3.0])},
    }
    assert float(models.weight_penalty(params, 0.0, 0.0)) == 0.0
    np.testing.assert_allclose(models.weight_penalty(params, 0.1, 0.0), 0.1 * 6, rtol=1e-6)
    np.testing.assert_allclose(models.weight_penalty(params, 0.0, 0.01), 0.01 * 14, rtol=1e-6)
    np.testing.assert_allclose(models.weight_penalty(params, 0.1, 0.01), 0.6 + 0.14, rtol=1e-6)


def test_l2_penalty_shrinks_weights_in_training():
    task0 = tasks.get("digits_logreg")
    task1 = tasks.get("digits_logreg", l2=0.1)
    r0, r1 = run(task0, [0.05], [0]), run(task1, [0.05], [0])
    # The penalty is not part of the reported (data) loss, so the penalised model fits worse.
    assert r1.final_train_loss[0] > r0.final_train_loss[0] + 0.05


# --- cells ------------------------------------------------------------------------------


def _sig(z):
    return 1 / (1 + np.exp(-z))


def test_lstm_gates_by_hand():
    xp = np.array([[0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8]])
    hh = np.array([[0.05, 0.1, -0.1, 0.2, 0.0, 0.3, -0.2, 0.1]])
    h, c = np.array([[0.3, -0.4]]), np.array([[0.5, 0.25]])
    z = xp + hh
    i, f, g, o = _sig(z[:, 0:2]), _sig(z[:, 2:4]), np.tanh(z[:, 4:6]), _sig(z[:, 6:8])
    c_new = f * c + i * g
    h_new, c_out, _ = cells.LSTM.forward(*map(jnp.asarray, (xp, hh, h, c)))
    np.testing.assert_allclose(c_out, c_new, rtol=1e-6)
    np.testing.assert_allclose(h_new, o * np.tanh(c_new), rtol=1e-6)


def test_gru_gates_by_hand():
    xp = np.array([[0.1, -0.2, 0.3, 0.4, 0.5, -0.6]])
    hh = np.array([[0.05, 0.1, -0.1, 0.2, 0.7, 0.3]])
    h = np.array([[0.3, -0.4]])
    r = _sig(xp[:, 0:2] + hh[:, 0:2])
    u = _sig(xp[:, 2:4] + hh[:, 2:4])
    n = np.tanh(xp[:, 4:6] + r * hh[:, 4:6])
    h_new, _, _ = cells.GRU.forward(*map(jnp.asarray, (xp, hh, h, np.zeros((1, 0)))))
    np.testing.assert_allclose(h_new, (1 - u) * n + u * h, rtol=1e-6)


def test_rnn_by_hand():
    xp, hh = np.array([[0.1, -2.0]]), np.array([[0.5, 0.3]])
    h_new, _, _ = cells.RNN.forward(*map(jnp.asarray, (xp, hh, hh, np.zeros((1, 0)))))
    np.testing.assert_allclose(h_new, np.tanh(xp + hh), rtol=1e-6)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("d", [3, 9])  # input features as multiply-adds / as a matmul
def test_custom_vjp_matches_autodiff(name, d):
    cell = cells.CELLS[name]
    t, b, h, g = 6, 3, 4, cell.gates
    ks = jax.random.split(jax.random.PRNGKey(1), 8)
    args = (
        jax.random.normal(ks[0], (t, b, d)),
        jax.random.normal(ks[1], (d, g * h)) * 0.5,
        jax.random.normal(ks[2], (g * h,)),
        jax.random.normal(ks[3], (h, g * h)) * 0.5,
        jax.random.normal(ks[4], (g * h,)),
        jax.random.normal(ks[5], (b, h)),
        jax.random.normal(ks[6], (b, h if cell.has_cell_state else 0)),
    )
    w_out = jax.random.normal(ks[7], (b, h))
    every = tuple(range(len(args)))

    def loss(fn):
        return lambda *a: jnp.sum(jnp.sin(fn(cell, *a)) * w_out)

    np.testing.assert_allclose(
        cells.recurrent(cell, *args), cells.recurrent_reference(cell, *args), rtol=1e-6
    )
    got = jax.grad(loss(cells.recurrent), argnums=every)(*args)
    want = jax.grad(loss(cells.recurrent_reference), argnums=every)(*args)
    for a, w in zip(got, want, strict=True):
        assert a.shape == w.shape
        np.testing.assert_allclose(a, w, rtol=1e-4, atol=1e-5)
    # and under vmap, as the training program uses it
    batched = [jnp.stack([a, 2 * a]) for a in args]
    got_v = jax.vmap(jax.grad(loss(cells.recurrent), argnums=(1, 3)))(*batched)
    want_v = jax.vmap(jax.grad(loss(cells.recurrent_reference), argnums=(1, 3)))(*batched)
    for a, w in zip(got_v, want_v, strict=True):
        np.testing.assert_allclose(a, w, rtol=1e-4, atol=1e-5)


def test_lstm_forget_bias_is_one():
    p = models.init_recurrent(jax.random.PRNGKey(0), "lstm", 2, 5, jnp.float32)
    np.testing.assert_array_equal(p["b"], [0] * 5 + [1] * 5 + [0] * 10)


# --- the training program ---------------------------------------------------------------


def test_result_shapes_and_metrics():
    task = tasks.get("digits_mlp", dropout=0.2, batchnorm=True)
    progress = []
    res = run(task, [1e-3, 1e-2], [0, 1], budget=3, on_chunk=lambda d, t: progress.append((d, t)))
    assert res.step.tolist() == [16, 32, 48] and res.epoch.tolist() == [1, 2, 3]
    assert progress[-1] == (3, 3)
    for k in ("train_loss", "val_loss", "test_loss", "test_accuracy"):
        assert res.curves[k].shape == (2, 3) and np.isfinite(res.curves[k]).all()
    assert np.isnan(res.curves["grad_norm_h0"]).all()
    np.testing.assert_array_equal(res.val_loss, res.curves["val_loss"][:, -1])
    assert (res.best_train_loss <= res.final_train_loss).all()
    assert not res.diverged.any() and (res.stop_step == 48).all()
    assert res.compile_s > 0 and res.run_s > 0


def test_log_every_groups_epochs_and_keeps_the_last():
    res = run(tasks.get("digits_logreg"), [1e-2], [0], budget=5, log_every=32)
    assert res.epoch.tolist() == [2, 4, 5] and res.step.tolist() == [32, 64, 80]


def test_compiles_once_whatever_the_number_of_runs():
    task = tasks.get("digits_logreg")
    for n in (1, 3):
        before = train.TRACE_COUNT
        run(task, [1e-2] * n, list(range(n)), budget=4, log_every=16)  # several chunks
        assert train.TRACE_COUNT - before == 1


@pytest.mark.parametrize("name", ["adding", "digits_mlp"])
def test_runs_split_across_threads_give_the_same_numbers(monkeypatch, name):
    """Three runs on two worker threads (shards of two, the last run repeated as padding):
    one compile, and each run's numbers as on one thread (bit for bit where the runs are a
    ``lax.map``; to float32 rounding where the vmap's width changes)."""
    params = {"cell": "gru", "length": 12, "hidden": 8} if name == "adding" else {}
    task = tasks.get(name, **params)
    budget = 20 if name == "adding" else 2
    out = {}
    for n in (1, 2):
        monkeypatch.setattr(_shards, "workers", lambda n=n: n)
        before = train.TRACE_COUNT
        out[n] = run(task, [1e-3, 3e-3, 1e9], [0, 1, 2], make=sgd, budget=budget, log_every=10)
        assert train.TRACE_COUNT - before == 1
    one, two = out[1], out[2]
    assert two.curves["val_loss"].shape == one.curves["val_loss"].shape == (3, 2)
    assert two.diverged.tolist() == one.diverged.tolist() == [False, False, True]
    assert two.stop_step.tolist() == one.stop_step.tolist()
    rtol = 0 if name == "adding" else 1e-5
    for k in ("train_loss", "val_loss", "test_loss"):
        np.testing.assert_allclose(two.curves[k], one.curves[k], rtol=rtol)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_recurrent_run_alone_equals_the_same_run_among_others(monkeypatch, cell):
    """Bit for bit, curves and gradient flow: shards of one run and of two. With the
    initialisation vmapped, XLA compiled the orthogonal init's matrix-vector products
    otherwise for one run (hidden 64; hidden 8 hid it)."""
    task = tasks.get("adding", cell=cell, length=12)
    monkeypatch.setattr(_shards, "workers", lambda: 1)
    kw = {"make": sgd, "budget": 20, "log_every": 10}
    alone = run(task, [3e-3], [1], **kw)
    among = run(task, [1e-3, 3e-3], [0, 1], **kw)
    for k in ("train_loss", "val_loss", "test_loss"):
        np.testing.assert_array_equal(alone.curves[k][0], among.curves[k][1])
    np.testing.assert_array_equal(alone.flow[0], among.flow[1])


def test_same_seed_same_numbers_different_seeds_differ():
    task = tasks.get("digits_mlp", dropout=0.3, augment=True, hidden=32)
    a = run(task, [1e-3, 1e-3], [0, 1], budget=1)
    b = run(task, [1e-3, 1e-3], [0, 1], budget=1)
    np.testing.assert_array_equal(a.curves["val_loss"], b.curves["val_loss"])
    assert a.val_loss[0] != a.val_loss[1]
    alone = run(task, [1e-3], [1], budget=1)
    np.testing.assert_allclose(alone.val_loss[0], a.val_loss[1], rtol=1e-5)


def test_diverging_run_is_frozen_and_isolated():
    task = tasks.get("digits_mlp")
    both = run(task, [1e-2, np.nan], [0, 0], make=sgd, budget=2)
    huge = run(task, [1e-2, 1e30], [0, 0], make=sgd, budget=2)
    alone = run(task, [1e-2], [0], make=sgd, budget=2)
    for res in (both, huge):
        assert res.diverged.tolist() == [False, True]
        assert res.stop_step[0] == 32 and res.stop_step[1] < 32
        np.testing.assert_allclose(res.curves["val_loss"][0], alone.curves["val_loss"][0], 1e-5)
    # Frozen before the step that failed: a NaN learning rate fails at once, leaving the
    # initial model; the huge one is stopped within a step or two.
    assert both.stop_step[1] == 0 and huge.stop_step[1] <= 2
    assert np.isfinite(both.val_loss).all()
    np.testing.assert_allclose(both.val_loss[1], np.log(10), rtol=0.2)  # the initial model


def test_logreg_loss_decreases():
    res = run(tasks.get("digits_logreg"), [0.05], [0], budget=6, log_every=16)
    loss = res.curves["train_loss"][0]
    assert loss[-1] < loss[0] < np.log(10)
    assert res.test_accuracy[0] > 0.85


def test_float64(monkeypatch):
    monkeypatch.setattr(_shards, "workers", lambda: 2)  # the worker threads run float64 too
    with jax.enable_x64(True):
        res = run(tasks.get("digits_logreg"), [0.05, 0.1], [0, 1], budget=1, dtype=jnp.float64)
    assert np.isfinite(res.val_loss).all() and res.val_loss[0] != res.val_loss[1]


def test_digits_rnn_records_grad_norm_h0():
    res = run(tasks.get("digits_rnn", cell="gru", hidden=16), [3e-3], [0], budget=2)
    assert np.isfinite(res.curves["grad_norm_h0"]).all()
    assert (res.curves["grad_norm_h0"] > 0).all()
    assert res.test_accuracy[0] > 0.2


def test_vanishing_gradient_rnn_vs_lstm():
    """After the same short training on long sequences, less of the error signal reaches
    h_0 through a tanh RNN than through an LSTM."""
    out = {}
    for cell in ("rnn", "lstm"):
        task = tasks.get("adding", cell=cell, length=100, hidden=16)
        res = run(task, [1e-3, 1e-3], [0, 1], budget=100, batch_size=32, log_every=50)
        out[cell] = res.curves["grad_norm_h0"][:, -1]
        assert np.isfinite(out[cell]).all() and res.step.tolist() == [50, 100]
        assert np.isnan(res.test_accuracy).all() and np.isfinite(res.test_loss).all()
    assert (out["rnn"] * 10 < out["lstm"]).all()


# --- quality ----------------------------------------------------------------------------


def test_digits_cnn_quality():
    res = run(tasks.get("digits_cnn"), [1e-3], [0], budget=20, log_every=320)
    assert res.test_accuracy[0] >= 0.96


@pytest.mark.slow
def test_adding_lstm_quality():
    res = run(tasks.get("adding"), [1e-3], [0], budget=4000, log_every=1000)
    assert res.test_loss[0] < 0.01


def test_orthogonal_init_is_orthogonal_and_free_of_lapack():
    q = layers.orthogonal(jax.random.key(0), 64, jnp.float32)
    np.testing.assert_allclose(np.asarray(q.T @ q), np.eye(64), atol=2e-6)
    # Vmapped over seeds, LAPACK's batched QR can deadlock in XLA's CPU thread pool: the
    # recurrent initialisation must stay matmuls only.
    init = jax.vmap(lambda k: models.init_recurrent(k, "lstm", 2, 16, jnp.float32))
    hlo = jax.jit(init).lower(jax.random.split(jax.random.key(0), 8)).as_text()
    assert "custom_call" not in hlo


def test_adding_eval_sets_do_not_depend_on_the_x64_mode():
    data.adding_eval_sets.cache_clear()
    with jax.enable_x64(True):
        in64 = data.adding_eval_sets(7)
    data.adding_eval_sets.cache_clear()
    in32 = data.adding_eval_sets(7)
    for a, b in zip(in64, in32, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_chunks_evaluation_runs_while_the_next_chunk_trains():
    """The curve points of chunk c are evaluated in the background while chunk c + 1 trains
    (plan.execute): here chunk 0's evaluation waits until chunk 1 has started, which an
    evaluation in line with the training would never see. The columns land in METRICS'
    order and every chunk's evaluation is kept."""
    import threading

    from optbench.problems.tasks.plan import execute, make_plan

    plan = make_plan(3, 1, None)  # 3 steps, a point after each: 3 chunks
    assert plan.n_chunks == 3
    second = threading.Event()

    def call(c, shard):
        if c == 1:
            second.set()
        carry, _ = shard
        return carry + 1, [np.full((1, 1, 6), [c, *[np.nan] * 4, 100 + c])], c  # snapshot c

    def evaluate(i, snapshot):
        if snapshot == 0:
            assert second.wait(20), "chunk 0 was evaluated before chunk 1 started"
        return [np.full((1, 1, 4), [10, 20, 30, 40], float) + snapshot]

    tables, carries, _ = execute(plan, call, [(0, None)], [1], None, evaluate)
    assert carries == [3]
    assert tables[0][0].tolist() == [[c, 10 + c, 20 + c, 30 + c, 40 + c, 100 + c] for c in range(3)]
    assert train.METRICS[0] == "train_loss" and train.METRICS[-1] == "grad_norm_h0"


@pytest.mark.parametrize(
    ("name", "params", "kw"),
    [
        ("digits_logreg", {}, dict(budget=3, batch_size=64, log_every=16)),
        ("adding", {"cell": "gru", "hidden": 8, "length": 12}, dict(budget=6, log_every=2)),
    ],
)
def test_runs_leaving_a_core_idle_are_evaluated_beside_their_training(name, params, kw):
    """One run on two cores is one shard, one core left to its evaluation: its curve points
    get a program of their own (jit(evaluate)); two runs fill both shards and keep their
    evaluation inside the training program. The two training programs have a shard's shapes
    alike and are cached apart; the run's numbers are the same either way (float64)."""
    from compiles import count_compiles

    from optbench import compilation

    task = tasks.get(name, **params)
    kw = {"batch_size": 16, **kw, "dtype": jnp.float64, "cache_key": ("idle", name)}
    compilation.clear_programs()
    with jax.enable_x64(True), _shards.fixed(2), count_compiles() as names:
        alone = run(task, [1e-2], [0], **kw)
        pair = run(task, [1e-2, 1e-2], [0, 0], **kw)
    compilation.clear_programs()
    assert names.count("jit(evaluate)") == 1 and names.count("jit(chunk)") == 2
    for metric, curve in alone.curves.items():
        if metric == "val_loss" or not np.isnan(curve).all():
            assert np.isfinite(curve).all(), metric
        np.testing.assert_allclose(curve[0], pair.curves[metric][0], rtol=1e-12, err_msg=metric)
