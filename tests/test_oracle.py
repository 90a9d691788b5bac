"""Step-by-step agreement of optbench's optimizers with optax and torch.optim, in float64.

Each case runs the same deterministic gradient field through optbench, optax and PyTorch
and checks that the parameter trajectories agree to a relative error of 1e-10 at every
step. The gradients are analytic and computed by the same NumPy function for all three
(no autodiff), so only the optimizers' arithmetic can differ. Learning rates and step
counts keep the trajectories out of the chaotic regime (an adaptive method bouncing around
a minimum amplifies rounding noise from 1e-16 to 1e-3): a 1e-6 relative change of the
learning rate on one side moves every case by more than 5e-8.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from optbench import optimizers, schedules

STEPS = 250
BUILTINS = {"sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw"}
BUILTINS |= {"nadam", "amsgrad"}
RTOL = 1e-10


# --------------------------------------------------------------------------- the one table


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer configuration and its equivalents in the two reference libraries.

    ``ours`` are optbench kwargs except the learning rate; ``optax_call(lr)`` and
    ``torch_call(params, lr)`` build the equivalents, or are None where the library has
    no equivalent algorithm. ``lr`` maps each problem to its learning rate.
    """

    id: str
    name: str
    ours: dict[str, Any]
    optax_call: Callable[[Any], optax.GradientTransformation] | None
    torch_call: Callable[[list, float], torch.optim.Optimizer] | None
    lr: dict[str, float]


def _coupled(wd: float, inner: optax.GradientTransformation) -> optax.GradientTransformation:
    # PyTorch's weight_decay (g + wd p) spelled in optax
    return optax.chain(optax.add_decayed_weights(wd), inner)


def _f64(schedule: Callable) -> Callable:
    return lambda count: schedule(jnp.asarray(count, jnp.float64))


T = torch.optim
WD = 1e-2
LR_SGD = {"quadratic": 1e-2, "rosenbrock": 1e-3}
LR_MOM = {"quadratic": 5e-3, "rosenbrock": 1e-4}
LR_ADAPT = {"quadratic": 2e-2, "rosenbrock": 2e-3}
LR_ADAGRAD = {"quadratic": 1e-1, "rosenbrock": 2e-2}
LR_RMSPROP = {"quadratic": 1e-3, "rosenbrock": 1e-3}
LR_ADADELTA = {"quadratic": 0.3, "rosenbrock": 0.3}

CASES = [
    Case("sgd", "sgd", {}, lambda lr: optax.sgd(lr), lambda p, lr: T.SGD(p, lr=lr), LR_SGD),
    Case(
        "sgd+wd",
        "sgd",
        {"weight_decay": WD},
        lambda lr: _coupled(WD, optax.sgd(lr)),
        lambda p, lr: T.SGD(p, lr=lr, weight_decay=WD),
        LR_SGD,
    ),
    Case(
        "momentum",
        "momentum",
        {"momentum": 0.9},
        lambda lr: optax.sgd(lr, momentum=0.9),
        lambda p, lr: T.SGD(p, lr=lr, momentum=0.9),
        LR_MOM,
    ),
    Case(
        "nesterov",
        "nesterov",
        {"momentum": 0.9},
        lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
        lambda p, lr: T.SGD(p, lr=lr, momentum=0.9, nesterov=True),
        LR_MOM,
    ),
    Case(
        "nesterov+wd",
        "nesterov",
        {"momentum": 0.8, "weight_decay": WD},
        lambda lr: _coupled(WD, optax.sgd(lr, momentum=0.8, nesterov=True)),
        lambda p, lr: T.SGD(p, lr=lr, momentum=0.8, nesterov=True, weight_decay=WD),
        LR_MOM,
    ),
    # optax.adagrad puts eps under the root and starts the sum at 0.1: no optax twin here
    Case(
        "adagrad",
        "adagrad",
        {"eps": 1e-10},
        None,
        lambda p, lr: T.Adagrad(p, lr=lr, eps=1e-10),
        LR_ADAGRAD,
    ),
    Case(
        "adagrad+init+wd",
        "adagrad",
        {"initial_accumulator_value": 0.1, "weight_decay": WD},
        None,
        lambda p, lr: T.Adagrad(p, lr=lr, initial_accumulator_value=0.1, weight_decay=WD),
        LR_ADAGRAD,
    ),
    # torch.optim.Adagrad adds eps outside the root: no torch twin of optax's convention
    Case(
        "adagrad-optax",
        "adagrad",
        {"eps": 1e-7, "initial_accumulator_value": 0.1, "eps_in_sqrt": True},
        lambda lr: optax.adagrad(lr),
        None,
        LR_ADAGRAD,
    ),
    Case(
        "adadelta",
        "adadelta",
        {"rho": 0.9, "eps": 1e-6},
        lambda lr: optax.adadelta(lr, rho=0.9, eps=1e-6),
        lambda p, lr: T.Adadelta(p, lr=lr, rho=0.9, eps=1e-6),
        LR_ADADELTA,
    ),
    Case(
        "adadelta+wd",
        "adadelta",
        {"rho": 0.95, "eps": 1e-4, "weight_decay": WD},
        lambda lr: _coupled(WD, optax.adadelta(lr, rho=0.95, eps=1e-4)),
        lambda p, lr: T.Adadelta(p, lr=lr, rho=0.95, eps=1e-4, weight_decay=WD),
        {"quadratic": 0.1, "rosenbrock": 0.1},
    ),
    Case(
        "rmsprop",
        "rmsprop",
        {"decay": 0.9, "eps": 1e-8},
        lambda lr: optax.rmsprop(lr, decay=0.9, eps=1e-8, eps_in_sqrt=False),
        lambda p, lr: T.RMSprop(p, lr=lr, alpha=0.9, eps=1e-8),
        LR_RMSPROP,
    ),
    Case(
        "rmsprop-centered",
        "rmsprop",
        {"decay": 0.95, "eps": 1e-8, "centered": True},
        lambda lr: optax.rmsprop(lr, decay=0.95, eps=1e-8, eps_in_sqrt=False, centered=True),
        lambda p, lr: T.RMSprop(p, lr=lr, alpha=0.95, eps=1e-8, centered=True),
        LR_RMSPROP,
    ),
    Case(
        "rmsprop+wd",
        "rmsprop",
        {"decay": 0.99, "eps": 1e-8, "weight_decay": WD},
        lambda lr: _coupled(WD, optax.rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False)),
        lambda p, lr: T.RMSprop(p, lr=lr, alpha=0.99, eps=1e-8, weight_decay=WD),
        LR_RMSPROP,
    ),
    # optax.rmsprop's own defaults (eps under the root); torch has no such option
    Case(
        "rmsprop-optax",
        "rmsprop",
        {"eps_in_sqrt": True},
        lambda lr: optax.rmsprop(lr),
        None,
        LR_RMSPROP,
    ),
    Case(
        "adam",
        "adam",
        {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
        lambda lr: optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8),
        lambda p, lr: T.Adam(p, lr=lr, betas=(0.9, 0.999), eps=1e-8),
        LR_ADAPT,
    ),
    Case(
        "adam+wd",
        "adam",
        {"b1": 0.8, "b2": 0.99, "weight_decay": WD},
        lambda lr: _coupled(WD, optax.adam(lr, b1=0.8, b2=0.99)),
        lambda p, lr: T.Adam(p, lr=lr, betas=(0.8, 0.99), weight_decay=WD),
        LR_ADAPT,
    ),
    Case(
        "adamw",
        "adamw",
        {"weight_decay": 0.1},
        lambda lr: optax.adamw(lr, weight_decay=0.1),
        lambda p, lr: T.AdamW(p, lr=lr, weight_decay=0.1),
        LR_ADAPT,
    ),
    # torch.optim.NAdam uses Dozat's momentum-decay schedule: a different algorithm
    Case(
        "nadam",
        "nadam",
        {"b1": 0.9, "b2": 0.999},
        lambda lr: optax.nadam(lr, b1=0.9, b2=0.999),
        None,
        LR_ADAPT,
    ),
    # optax.amsgrad takes the max of the bias-corrected v: a different algorithm
    Case(
        "amsgrad",
        "amsgrad",
        {"b1": 0.9, "b2": 0.99},
        None,
        lambda p, lr: T.Adam(p, lr=lr, betas=(0.9, 0.99), amsgrad=True),
        LR_ADAPT,
    ),
    Case(
        "amsgrad+wd",
        "amsgrad",
        {"weight_decay": WD},
        None,
        lambda p, lr: T.Adam(p, lr=lr, amsgrad=True, weight_decay=WD),
        LR_ADAPT,
    ),
    # a schedule as learning_rate: warmup then cosine. optax's schedules compute in float32
    # from an int32 count, so its schedule is given the count as float64.
    Case(
        "adam-warmup-cosine",
        "adam",
        {"schedule": lambda lr: schedules.warmup(schedules.cosine(lr, STEPS - 50), 50)},
        lambda lr: optax.adam(_f64(optax.warmup_cosine_decay_schedule(0.0, lr, 50, STEPS))),
        None,
        LR_ADAPT,
    ),
]


# --------------------------------------------------------------------------- the problems


@dataclasses.dataclass(frozen=True)
class Problem:
    params0: dict[str, np.ndarray] | np.ndarray
    grad_np: Callable[[np.ndarray], np.ndarray]  # flat float64 vector -> flat gradient


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(tree)])


def _quadratic() -> Problem:
    rng = np.random.default_rng(0)
    shapes = {"b": (5,), "s": (), "w": (3, 4)}  # jax.tree flattens dicts in key order
    n = sum(int(np.prod(s)) for s in shapes.values())
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.logspace(0, 2, n)) @ q.T  # condition number 100
    xstar = rng.normal(size=n)
    x0 = xstar + 3.0 * rng.normal(size=n) / np.sqrt(n)
    params0, i = {}, 0
    for key, shape in shapes.items():
        size = int(np.prod(shape))
        params0[key] = x0[i : i + size].reshape(shape)
        i += size
    return Problem(params0, lambda x: a @ (x - xstar))


def _rosenbrock() -> Problem:
    def grad(v):
        x, y = v
        return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])

    return Problem(np.array([-1.2, 1.0]), grad)


PROBLEMS = {"quadratic": _quadratic, "rosenbrock": _rosenbrock}


# --------------------------------------------------------------------------- runners


def _jax_trajectory(opt: optax.GradientTransformation, problem: Problem) -> np.ndarray:
    params = jax.tree.map(jnp.asarray, problem.params0)
    leaves, treedef = jax.tree.flatten(params)
    sizes = np.cumsum([x.size for x in leaves])[:-1]

    @jax.jit
    def step(p, g_flat, state):
        g = jax.tree.unflatten(
            treedef,
            [x.reshape(l.shape) for x, l in zip(jnp.split(g_flat, sizes), leaves, strict=True)],
        )
        updates, state = opt.update(g, state, p)
        return jax.tree.map(jnp.add, p, updates), state

    state = opt.init(params)
    path = [_flat(params)]
    for _ in range(STEPS):
        params, state = step(params, problem.grad_np(path[-1]), state)
        path.append(_flat(params))
    return np.stack(path)


def _torch_trajectory(make: Callable, lr: float, problem: Problem) -> np.ndarray:
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(problem.params0)]
    ps = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in leaves]
    opt = make(ps, lr)
    path = [np.concatenate([p.detach().numpy().ravel() for p in ps])]
    for _ in range(STEPS):
        g = torch.from_numpy(problem.grad_np(path[-1]))
        i = 0
        for p in ps:
            p.grad = g[i : i + p.numel()].reshape(p.shape).clone()
            i += p.numel()
        opt.step()
        path.append(np.concatenate([p.detach().numpy().ravel() for p in ps]))
    return np.stack(path)


def _ours(case: Case, lr: float):
    kwargs = dict(case.ours)
    if "schedule" in kwargs:
        lr = kwargs.pop("schedule")(lr)
    return optimizers.get(case.name, learning_rate=lr, **kwargs)


def _max_rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_optax_and_torch(case: Case, problem_name: str):
    assert case.optax_call is not None or case.torch_call is not None
    problem = PROBLEMS[problem_name]()
    lr = case.lr[problem_name]
    ours = _jax_trajectory(_ours(case, lr), problem)
    assert ours.dtype == np.float64 and np.all(np.isfinite(ours))
    # the trajectory goes somewhere: comparing parameters that barely move proves little
    moved = np.linalg.norm(ours[-1] - ours[0]) / np.linalg.norm(ours[0])
    assert moved > 0.05, f"{case.id} on {problem_name} moved only {moved:.3g}"
    if case.optax_call is not None:
        ref = _jax_trajectory(case.optax_call(lr), problem)
        err = _max_rel_err(ours, ref)
        assert err <= RTOL, f"{case.id} vs optax on {problem_name}: max rel err {err:.3g}"
    if case.torch_call is not None:
        ref = _torch_trajectory(case.torch_call, lr, problem)
        err = _max_rel_err(ours, ref)
        assert err <= RTOL, f"{case.id} vs torch on {problem_name}: max rel err {err:.3g}"


def test_table_covers_every_builtin_optimizer():
    covered = {c.name for c in CASES}
    assert covered == BUILTINS
    assert {c.name for c in CASES if c.optax_call} >= BUILTINS - {"amsgrad"}
    assert {c.name for c in CASES if c.torch_call} >= BUILTINS - {"nadam"}
