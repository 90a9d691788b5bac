"""The lecture slide's optimizer forms: ``bias_correction=False`` and ``sqrt=False``.

Each switch is checked step by step in float64 against a hand-written NumPy version of the
slide's update (relative error <= 1e-10 over 250 steps), on the deterministic gradient
fields of ``test_oracle.py``: analytic gradients computed by NumPy for both sides, so only
the optimizers' arithmetic can differ. Each case also checks that the slide's form is not
the canonical one there (so the comparison could fail), and the defaults are checked to be
unchanged against optax and against the same NumPy code with the switches on.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optbench
from optbench import ConfigError, optimizers
from optbench.config import load_config

STEPS = 250
RTOL = 1e-10
DIFFERENT = 1e-3  # the slide's form vs the canonical one: far above RTOL


# --------------------------------------------------------------------------- NumPy versions

Step = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (x, g) -> the next x


def np_adam(
    lr: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    bc: bool = True,
    root: bool = True,
    l2: float = 0.0,
    wd: float = 0.0,
) -> Step:
    """Adam / AdamW from the equations; ``bc=False, root=False`` is the slide's
    ``x <- x - lr m / (v + eps)``. ``l2``: coupled weight decay, ``wd``: decoupled."""
    m = v = 0.0
    t = 0

    def step(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        nonlocal m, v, t
        g = g + l2 * x
        t += 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = (m / (1 - b1**t), v / (1 - b2**t)) if bc else (m, v)
        denom = np.sqrt(v_hat) + eps if root else v_hat + eps
        return x - lr * (m_hat / denom + wd * x)

    return step


def np_adagrad(
    lr: float, eps: float = 1e-10, init: float = 0.0, *, root: bool, l2: float = 0.0
) -> Step:
    """Adagrad; ``root=False`` is the slide's ``x <- x - lr g / (cache + eps)``."""
    s = init

    def step(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        nonlocal s
        g = g + l2 * x
        s = s + g * g
        return x - lr * g / (np.sqrt(s) + eps if root else s + eps)

    return step


def np_rmsprop(
    lr: float,
    decay: float = 0.9,
    eps: float = 1e-8,
    *,
    root: bool,
    centered: bool = False,
    l2: float = 0.0,
) -> Step:
    """RMSProp; ``root=False`` is the slide's ``x <- x - lr g / (cache + eps)`` (centered:
    the cache minus the squared mean gradient)."""
    nu = mu = 0.0

    def step(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        nonlocal nu, mu
        g = g + l2 * x
        nu = decay * nu + (1 - decay) * g * g
        mu = decay * mu + (1 - decay) * g
        var = nu - mu * mu if centered else nu
        return x - lr * g / (np.sqrt(var) + eps if root else var + eps)

    return step


# --------------------------------------------------------------------------- the problems


@dataclasses.dataclass(frozen=True)
class Problem:
    params0: dict[str, np.ndarray] | np.ndarray
    grad_np: Callable[[np.ndarray], np.ndarray]  # flat float64 vector -> flat gradient


def _quadratic() -> Problem:
    """A rotated quadratic of condition number 100 over a pytree of three leaves."""
    rng = np.random.default_rng(0)
    shapes = {"b": (5,), "s": (), "w": (3, 4)}  # jax.tree flattens dicts in key order
    n = sum(int(np.prod(s)) for s in shapes.values())
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.logspace(0, 2, n)) @ q.T
    xstar = rng.normal(size=n)
    x0 = xstar + 3.0 * rng.normal(size=n) / np.sqrt(n)
    params0, i = {}, 0
    for key, shape in shapes.items():
        size = int(np.prod(shape))
        params0[key] = x0[i : i + size].reshape(shape)
        i += size
    return Problem(params0, lambda x: a @ (x - xstar))


def _rosenbrock() -> Problem:
    def grad(v: np.ndarray) -> np.ndarray:
        x, y = v
        return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])

    return Problem(np.array([-1.2, 1.0]), grad)


PROBLEMS = {"quadratic": _quadratic, "rosenbrock": _rosenbrock}


def _flat(tree: Any) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(tree)])


def _jax_trajectory(opt: optax.GradientTransformation, problem: Problem) -> np.ndarray:
    params = jax.tree.map(jnp.asarray, problem.params0)
    leaves, treedef = jax.tree.flatten(params)
    sizes = np.cumsum([x.size for x in leaves])[:-1]

    @jax.jit
    def step(p: Any, g_flat: jax.Array, state: Any) -> tuple[Any, Any]:
        parts = jnp.split(g_flat, sizes)
        g = jax.tree.unflatten(
            treedef, [x.reshape(leaf.shape) for x, leaf in zip(parts, leaves, strict=True)]
        )
        updates, state = opt.update(g, state, p)
        return jax.tree.map(jnp.add, p, updates), state

    state = opt.init(params)
    path = [_flat(params)]
    for _ in range(STEPS):
        params, state = step(params, problem.grad_np(path[-1]), state)
        path.append(_flat(params))
    return np.stack(path)


def _numpy_trajectory(step: Step, problem: Problem) -> np.ndarray:
    path = [_flat(problem.params0).astype(np.float64)]
    for _ in range(STEPS):
        path.append(step(path[-1], problem.grad_np(path[-1])))
    return np.stack(path)


def _max_rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))


@pytest.fixture(autouse=True)
def _x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


# --------------------------------------------------------------------------- the cases


@dataclasses.dataclass(frozen=True)
class Case:
    """optbench's ``name(learning_rate=lr, **ours)`` and its NumPy twin ``numpy(lr)``; the
    switches in ``slide`` are the ones the case turns off (the canonical form sets them
    back to True)."""

    id: str
    name: str
    ours: dict[str, Any]
    numpy: Callable[[float], Step]
    lr: dict[str, float]
    slide: tuple[str, ...]


WD = 1e-2
NO_BC = {"bias_correction": False}
NO_ROOT = {"sqrt": False}
NEITHER = {"bias_correction": False, "sqrt": False}
BOTH = ("bias_correction", "sqrt")
# Without the root RMSProp's step grows as the gradients shrink (about lr / |g|): on the
# quadratic, a learning rate a little above these makes the trajectory amplify rounding
# noise (a 1e-6 change of lr then moves it by 1e-3). A larger eps bounds it.
CASES = [
    Case("adam-no-bias-correction", "adam", NO_BC, lambda lr: np_adam(lr, bc=False),
         {"quadratic": 2e-2, "rosenbrock": 1e-3}, ("bias_correction",)),
    Case("adam-no-sqrt", "adam", NO_ROOT, lambda lr: np_adam(lr, root=False),
         {"quadratic": 1e-2, "rosenbrock": 1e-1}, ("sqrt",)),
    Case("adam-slide", "adam", {**NEITHER, "b1": 0.8, "b2": 0.99},
         lambda lr: np_adam(lr, 0.8, 0.99, bc=False, root=False),
         {"quadratic": 1e-3, "rosenbrock": 1e-2}, BOTH),
    Case("adam-slide+wd", "adam", {**NEITHER, "weight_decay": WD},
         lambda lr: np_adam(lr, bc=False, root=False, l2=WD),
         {"quadratic": 1e-4, "rosenbrock": 5e-3}, BOTH),
    Case("adamw-no-bias-correction", "adamw", {**NO_BC, "weight_decay": 0.1},
         lambda lr: np_adam(lr, bc=False, wd=0.1),
         {"quadratic": 2e-2, "rosenbrock": 1e-3}, ("bias_correction",)),
    Case("adamw-slide", "adamw", {**NEITHER, "weight_decay": 0.1},
         lambda lr: np_adam(lr, bc=False, root=False, wd=0.1),
         {"quadratic": 1e-4, "rosenbrock": 5e-3}, BOTH),
    Case("adagrad-no-sqrt", "adagrad", NO_ROOT, lambda lr: np_adagrad(lr, root=False),
         {"quadratic": 1.0, "rosenbrock": 1.0}, ("sqrt",)),
    Case("adagrad-no-sqrt+init+wd", "adagrad",
         {**NO_ROOT, "eps": 1e-6, "initial_accumulator_value": 0.1, "weight_decay": WD},
         lambda lr: np_adagrad(lr, 1e-6, 0.1, root=False, l2=WD),
         {"quadratic": 1.0, "rosenbrock": 1.0}, ("sqrt",)),
    Case("rmsprop-no-sqrt", "rmsprop", {**NO_ROOT, "eps": 0.1},
         lambda lr: np_rmsprop(lr, 0.9, 0.1, root=False),
         {"quadratic": 3e-3, "rosenbrock": 3e-2}, ("sqrt",)),
    Case("rmsprop-no-sqrt-centered", "rmsprop", {**NO_ROOT, "centered": True, "decay": 0.95},
         lambda lr: np_rmsprop(lr, 0.95, root=False, centered=True),
         {"quadratic": 2e-4, "rosenbrock": 1e-2}, ("sqrt",)),
    Case("rmsprop-no-sqrt+wd", "rmsprop", {**NO_ROOT, "decay": 0.99, "weight_decay": WD},
         lambda lr: np_rmsprop(lr, 0.99, root=False, l2=WD),
         {"quadratic": 1e-3, "rosenbrock": 1e-2}, ("sqrt",)),
]  # fmt: skip


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_slide_form_matches_numpy(case: Case, problem_name: str):
    problem = PROBLEMS[problem_name]()
    lr = case.lr[problem_name]
    ours = _jax_trajectory(optimizers.get(case.name, learning_rate=lr, **case.ours), problem)
    assert ours.dtype == np.float64 and np.all(np.isfinite(ours))
    moved = np.linalg.norm(ours[-1] - ours[0]) / np.linalg.norm(ours[0])
    assert moved > 0.05, f"{case.id} on {problem_name} moved only {moved:.3g}"
    ref = _numpy_trajectory(case.numpy(lr), problem)
    err = _max_rel_err(ours, ref)
    assert err <= RTOL, f"{case.id} vs NumPy on {problem_name}: max rel err {err:.3g}"
    # the comparison can fail: the canonical form goes elsewhere on the same problem
    canonical = {**case.ours, **dict.fromkeys(case.slide, True)}
    other = _jax_trajectory(optimizers.get(case.name, learning_rate=lr, **canonical), problem)
    assert _max_rel_err(other, ref) > DIFFERENT, f"{case.id}: the slide's form is canonical"


def test_every_new_switch_is_covered():
    covered = {(c.name, s) for c in CASES for s in c.slide}
    assert covered == {
        ("adam", "bias_correction"),
        ("adam", "sqrt"),
        ("adamw", "bias_correction"),
        ("adamw", "sqrt"),
        ("adagrad", "sqrt"),
        ("rmsprop", "sqrt"),
    }
    assert any(c.ours.get("centered") for c in CASES)


# --------------------------------------------------------------------------- the defaults


def test_switch_defaults():
    for name in ("adam", "adamw"):
        d = optimizers.defaults(name)
        assert d["bias_correction"] is True and d["sqrt"] is True
    for name in ("adagrad", "rmsprop"):
        assert optimizers.defaults(name)["sqrt"] is True
    for name in ("nadam", "amsgrad"):
        assert {"bias_correction", "sqrt"}.isdisjoint(optimizers.defaults(name))


DEFAULT_CASES = [
    # name, our kwargs, optax equivalent, NumPy twin with the switches on, lr
    ("adam", {}, lambda lr: optax.adam(lr), lambda lr: np_adam(lr), 2e-2),
    ("adamw", {"weight_decay": 0.1}, lambda lr: optax.adamw(lr, weight_decay=0.1),
     lambda lr: np_adam(lr, wd=0.1), 2e-2),
    ("adagrad", {"eps": 1e-7, "initial_accumulator_value": 0.1, "eps_in_sqrt": True},
     lambda lr: optax.adagrad(lr), None, 1e-1),
    ("adagrad", {}, None, lambda lr: np_adagrad(lr, root=True), 1e-1),
    ("rmsprop", {}, lambda lr: optax.rmsprop(lr, eps_in_sqrt=False),
     lambda lr: np_rmsprop(lr, root=True), 1e-3),
    ("rmsprop", {"centered": True, "decay": 0.95},
     lambda lr: optax.rmsprop(lr, decay=0.95, eps_in_sqrt=False, centered=True),
     lambda lr: np_rmsprop(lr, 0.95, root=True, centered=True), 1e-3),
]  # fmt: skip


@pytest.mark.parametrize(("name", "ours", "optax_call", "numpy_call", "lr"), DEFAULT_CASES)
def test_defaults_are_unchanged(
    name: str,
    ours: dict[str, Any],
    optax_call: Callable[[float], optax.GradientTransformation] | None,
    numpy_call: Callable[[float], Step] | None,
    lr: float,
):
    problem = _quadratic()
    default = _jax_trajectory(optimizers.get(name, learning_rate=lr, **ours), problem)
    switches = {"sqrt": True} | ({"bias_correction": True} if name.startswith("adam") else {})
    explicit = _jax_trajectory(optimizers.get(name, learning_rate=lr, **ours, **switches), problem)
    np.testing.assert_array_equal(default, explicit)
    if optax_call is not None:
        assert _max_rel_err(default, _jax_trajectory(optax_call(lr), problem)) <= RTOL
    if numpy_call is not None:  # the NumPy twins are right with the switches on
        assert _max_rel_err(default, _numpy_trajectory(numpy_call(lr), problem)) <= RTOL


# --------------------------------------------------------------------------- traced switches


@pytest.mark.parametrize(
    ("name", "switches", "same_as"),
    [
        ("adam", NEITHER, NEITHER),
        ("adam", NO_BC, NO_BC),
        ("adamw", NO_ROOT, NO_ROOT),
        ("adagrad", NO_ROOT, NO_ROOT),
        ("rmsprop", {**NO_ROOT, "centered": True}, {**NO_ROOT, "centered": True}),
        # traced, eps_in_sqrt has no effect where sqrt is false (concrete, it is rejected)
        ("adagrad", {**NO_ROOT, "eps_in_sqrt": True}, NO_ROOT),
        ("rmsprop", {**NO_ROOT, "eps_in_sqrt": True}, NO_ROOT),
    ],
)
def test_traced_switches_equal_concrete_ones(
    name: str, switches: dict[str, bool], same_as: dict[str, bool]
):
    x0 = jnp.array([1.0, -3.0, 0.5])

    def run(values: dict[str, Any]) -> jax.Array:
        opt = optimizers.get(name, learning_rate=1e-2, eps=1e-3, **values)
        state = opt.init(x0)

        def body(_: int, carry: tuple[jax.Array, Any]) -> tuple[jax.Array, Any]:
            p, st = carry
            u, st = opt.update(4.0 * p, st, p)
            return p + u, st

        return jax.lax.fori_loop(0, 30, body, (x0, state))[0]

    traced = jax.jit(run)({k: jnp.asarray(v) for k, v in switches.items()})
    concrete = jax.jit(lambda: run(same_as))()
    canonical = jax.jit(lambda: run({}))()
    np.testing.assert_allclose(traced, concrete, rtol=1e-12)
    assert not np.allclose(traced, canonical, rtol=1e-3)


# --------------------------------------------------------------------------- bad values


SWITCHES = [
    ("adam", "bias_correction"),
    ("adam", "sqrt"),
    ("adamw", "bias_correction"),
    ("adamw", "sqrt"),
    ("adagrad", "sqrt"),
    ("rmsprop", "sqrt"),
]


@pytest.mark.parametrize("bad", [1, 0.0, "false", None, [True]])
@pytest.mark.parametrize(("name", "key"), SWITCHES)
def test_a_non_bool_switch_is_a_config_error(name: str, key: str, bad: Any):
    pattern = rf"{name}: {key} must be true or false"
    with pytest.raises(ConfigError, match=pattern) as err:
        getattr(optimizers, name)(**{key: bad})
    assert err.value.key == key
    with pytest.raises(ConfigError, match=pattern) as err:
        optimizers.get(name, **{key: bad})
    assert err.value.key == key
    with pytest.raises(ConfigError, match=pattern) as err:
        optimizers.validate(name, {"learning_rate": [1e-3, 1e-2]}, {key: bad})
    assert err.value.key == key


def _config(table: str) -> str:
    return f'steps = 3\n[[problem]]\nsurface = "rosenbrock"\n{table}\n'


@pytest.mark.parametrize(("name", "key"), SWITCHES)
def test_a_config_switch_must_be_one_bool(name: str, key: str):
    with pytest.raises(ConfigError, match="must be a bool, got 1") as err:
        load_config(_config(f"[optimizer.{name}]\n{key} = 1"))
    assert err.value.key == f"optimizer.{name}.{key}"
    with pytest.raises(ConfigError, match="only numeric hyperparameters can be grids") as err:
        load_config(_config(f"[optimizer.{name}]\n{key} = [true, false]"))
    assert err.value.key == f"optimizer.{name}.{key}"
    cfg = load_config(_config(f"[optimizer.{name}]\n{key} = false"))
    (opt,) = cfg.optimizers
    assert opt.switches[key] is False and key not in opt.grid


@pytest.mark.parametrize("name", ["adagrad", "rmsprop"])
def test_sqrt_false_with_eps_in_sqrt_is_rejected(name: str):
    factory = getattr(optimizers, name)
    factory(sqrt=False)  # each alone is fine
    factory(eps_in_sqrt=True)
    for call in (
        lambda: factory(sqrt=False, eps_in_sqrt=True),
        lambda: optimizers.get(name, sqrt=False, eps_in_sqrt=True),
        lambda: optimizers.validate(name, {}, {"sqrt": False, "eps_in_sqrt": True}),
    ):
        with pytest.raises(ConfigError, match=r"eps_in_sqrt = true .* sqrt = false") as err:
            call()
        assert err.value.key == "eps_in_sqrt"
        assert "set eps_in_sqrt = false" in err.value.message
    with pytest.raises(ConfigError, match="sqrt = false") as err:
        load_config(_config(f"[optimizer.{name}]\nsqrt = false\neps_in_sqrt = true"))
    assert err.value.key == f"optimizer.{name}.eps_in_sqrt"


# --------------------------------------------------------------------------- a config run


RUN = """
steps = 5
seeds = 1
[[problem]]
surface = "rosenbrock"
[optimizer.slide]
name = "adam"
learning_rate = 1e-2
bias_correction = false
sqrt = false
[optimizer.canonical]
name = "adam"
learning_rate = 1e-2
[optimizer.rms_slide]
name = "rmsprop"
learning_rate = 1e-3
sqrt = false
[optimizer.rms]
name = "rmsprop"
learning_rate = 1e-3
"""


def test_the_switches_reach_a_config_run(tmp_path: Path):
    res = optbench.run(RUN)
    runs = res.runs.set_index("optimizer")
    assert {"bias_correction", "sqrt"} <= set(res.runs.columns)
    assert runs.loc["slide", "sqrt"] == False  # noqa: E712 (numpy and pandas bools)
    assert runs.loc["slide", "bias_correction"] == False  # noqa: E712
    assert runs.loc["canonical", "sqrt"] == True  # noqa: E712
    assert runs.loc["canonical", "bias_correction"] == True  # noqa: E712
    assert runs.loc["rms_slide", "sqrt"] == False  # noqa: E712
    # the switch changed the arithmetic, not only a column
    for slide, canonical in (("slide", "canonical"), ("rms_slide", "rms")):
        a, b = runs.loc[slide, "final_loss"], runs.loc[canonical, "final_loss"]
        assert np.isfinite(a) and not np.isclose(a, b, rtol=1e-3), (slide, a, b)
    assert res.config["optimizer"]["slide"]["sqrt"] is False
    assert res.config["optimizer"]["slide"]["bias_correction"] is False
    res.save(tmp_path)
    with open(tmp_path / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"bias_correction", "sqrt"} <= set(rows[0])
    by_label = {r["optimizer"]: r for r in rows}
    assert by_label["slide"]["sqrt"].lower() == "false"
    assert by_label["canonical"]["sqrt"].lower() == "true"
