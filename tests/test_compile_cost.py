"""What makes a task's first run cheap: the initialisation's own program, shared by every
optimizer of a model and compiled at -O1 with the same bits, and a digits split read without
importing scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from compiles import count_compiles

import optbench.problems.tasks as tasks
from optbench import compilation
from optbench.problems.tasks import data, shards, starts


def test_the_shipped_split_is_the_one_scikit_learn_draws():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, target = data.digits_images()
    np.testing.assert_array_equal(images, digits.images)
    np.testing.assert_array_equal(target, digits.target)
    y = digits.target.astype(np.int32)
    with np.load(data.SPLIT_FILE) as f:
        shipped = [f[k] for k in ("train", "val", "test")]
    for got, want in zip(shipped, data.split_indices(y, data.SPLIT_SEED), strict=True):
        np.testing.assert_array_equal(got, want)
    split = data.digits_split()
    assert split.x_test.dtype == np.float32 and split.y_test.dtype == np.int32
    np.testing.assert_array_equal(
        split.x_val, (digits.images[shipped[1]] / 16.0).astype(np.float32)
    )
    other = data.digits_split(1)  # another seed: drawn by scikit-learn
    np.testing.assert_array_equal(other.y_test, y[data.split_indices(y, 1)[2]])


def test_the_digits_split_does_not_import_scikit_learn():
    code = (
        "import sys; from optbench.problems.tasks import data; data.digits_split(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "params", "x64"),
    [("digits_cnn", {"batchnorm": True}, False), ("adding", {"cell": "lstm", "hidden": 8}, True)],
)
def test_the_initialisation_program_gives_the_same_bits_at_o1(name, params, x64):
    model = tasks.get(name, **params)._model
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32

        def init(seed):
            return model.init(jax.random.PRNGKey(seed), dtype)

        seeds = jnp.arange(3, dtype=jnp.uint32)
        lowered = jax.jit(lambda s: jax.lax.map(init, s)).lower(seeds)
        default = lowered.compile()(seeds)
        fast = lowered.compile(starts.INIT_OPTIONS)(seeds)
    for a, b in zip(jax.tree.leaves(default), jax.tree.leaves(fast), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_every_optimizer_of_a_model_reuses_its_initialisation_and_flow_programs():
    compilation.clear_programs()
    task = tasks.get("adding", cell="rnn", hidden=8, length=12)
    kw = dict(budget=20, batch_size=16, log_every=5, dtype=jnp.float32)
    makers = {
        "sgd": lambda h: optax.sgd(h["learning_rate"]),
        "adam": lambda h: optax.adam(h["learning_rate"]),
    }
    results = {}
    with count_compiles() as names, shards.fixed(2):  # two runs: two shards, no core idle
        for opt, make in makers.items():
            lr = {"learning_rate": np.array([1e-2, 1e-3])}
            results[opt] = task.run(make, lr, np.array([0, 1]), cache_key=("test", opt), **kw)
    compilation.clear_programs()
    assert names.count("jit(init_models)") == 1 and names.count("jit(measure)") == 1
    assert names.count("jit(chunk)") == 2  # the training programs, one per task.run
    assert names.count("jit(evaluate)") == 0  # evaluated inside them
    # the first group's compile time includes the shared programs', the second's does not
    assert results["sgd"].compile_s > results["adam"].compile_s > 0
    for res in results.values():  # step 0 and 4 flow points, 12 timesteps, all measured
        assert res.flow.shape == (2, 5, 12) and np.isfinite(res.flow).all()
        assert res.flow_steps.tolist() == [0, 5, 10, 15, 20]
    # the same initialisation: the same flow at step 0 whatever the optimizer
    np.testing.assert_array_equal(results["sgd"].flow[:, 0], results["adam"].flow[:, 0])


def test_the_adding_evaluation_sets_are_the_batches_drawn_op_by_op():
    data.adding_eval_sets.cache_clear()
    with jax.enable_x64(True):  # drawn as in float32 mode whatever the switch
        got = data.adding_eval_sets(12)
    with jax.enable_x64(False):
        want = [
            data.adding_batch(jax.random.PRNGKey(seed), data.ADDING_EVAL_SIZE, 12)
            for seed in (data.ADDING_TEST_SEED + 1, data.ADDING_TEST_SEED)
        ]
    for a, b in zip(got, [a for pair in want for a in pair], strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, np.asarray(b))


def test_a_shared_program_evaluates_with_each_runs_own_dropout_rate():
    """test_scaling dropout scales by the rate at evaluation: a program shared by problems
    that differ in their rate must use the run's traced rate there too, not the rate
    compiled into the model it was first built for."""
    kw = dict(budget=2, batch_size=64, log_every=16, dtype=jnp.float32)
    lr = {"learning_rate": np.array([1e-2])}

    def make(h):
        return optax.adam(h["learning_rate"])

    def task(rate):
        return tasks.get("digits_cnn", dropout=rate, dropout_mode="test_scaling")

    compilation.clear_programs()
    alone = task(0.6).run(make, lr, np.array([0]), **kw)
    task(0.3).run(make, lr, np.array([0]), cache_key=("shared", "test_scaling"), **kw)
    shared = task(0.6).run(make, lr, np.array([0]), cache_key=("shared", "test_scaling"), **kw)
    compilation.clear_programs()
    assert shared.compile_s == 0  # it did reuse the first problem's program
    for name in ("train_loss", "val_loss", "test_loss", "val_accuracy"):
        np.testing.assert_array_equal(shared.curves[name], alone.curves[name])


def test_matmul_bound_training_programs_compile_at_o1(monkeypatch):
    # The CNN's and logistic regression's training programs compile at LLVM -O1 (as fast,
    # cheaper to compile: models.MATMUL_BOUND); the MLP's keeps XLA's defaults (slower at -O1).
    asked = []
    program = compilation.program

    def recording(key, lower, *, last=True, options=None):
        if last:  # the training program (the initialisation and flow pass last=False)
            asked.append(options)
        return program(key, lower, last=last, options=options)

    monkeypatch.setattr(compilation, "program", recording)
    kw = dict(budget=4, batch_size=16, log_every=2, dtype=jnp.float32)
    make = lambda h: optax.sgd(h["learning_rate"])  # noqa: E731
    lr = {"learning_rate": np.array([1e-2])}
    for name, params in (("digits_cnn", {}), ("digits_logreg", {}), ("digits_mlp", {})):
        tasks.get(name, **params).run(make, lr, np.array([0]), **kw)
    assert asked == [{"xla_backend_optimization_level": 1}] * 2 + [{}]
