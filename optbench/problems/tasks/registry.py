"""The task catalogue: names, parameters with defaults and validation, and :class:`Task`."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optax

from optbench import validate
from optbench._errors import ConfigError
from optbench.problems.tasks import data, models
from optbench.problems.tasks.cells import CELLS
from optbench.problems.tasks.layers import ACTIVATIONS, BATCHNORM_ALPHA, DROPOUT_MODES
from optbench.problems.tasks.plan import Part, TaskResult
from optbench.problems.tasks.train import TRACED_PARAMS, train

# A parameter is (default, check): ``check(task, key, value)`` returns the clean value or
# raises ConfigError. Each check is one call of optbench.validate, its message led by
# "task 'NAME': KEY".
Check = Callable[[str, str, Any], Any]


def _flag(task: str, key: str, value: Any) -> bool:
    return validate.flag(value, key, subject=f"task {task!r}: {key}")


def _number(minimum: float, maximum: float | None = None, *, open_max: bool = False) -> Check:
    def check(task: str, key: str, value: Any) -> float:
        return validate.number(
            value,
            key,
            minimum=minimum,
            maximum=maximum,
            open_max=open_max,
            subject=f"task {task!r}: {key}",
            repr_bounds=True,
        )

    return check


def _integer(minimum: int) -> Check:
    def check(task: str, key: str, value: Any) -> int:
        return validate.integer(
            value,
            key,
            minimum=minimum,
            subject=f"task {task!r}: {key}",
            fix=f"give a whole number >= {minimum}",
        )

    return check


def _choice(valid: tuple[str, ...]) -> Check:
    def check(task: str, key: str, value: Any) -> str:
        return validate.choice(value, key, valid, what=key, subject=f"task {task!r}")

    return check


_REG = {
    "batchnorm": (False, _flag),
    "dropout": (0.0, _number(0.0, 1.0, open_max=True)),
    "l1": (0.0, _number(0.0)),
    "l2": (0.0, _number(0.0)),
    "augment": (False, _flag),
    "activation": ("relu", _choice(tuple(ACTIVATIONS))),
    "dropout_mode": ("inverted", _choice(DROPOUT_MODES)),
    # The batchnorm running averages' weight of each batch, in (0, 1]: 1 keeps the last batch.
    "bn_alpha": (
        BATCHNORM_ALPHA,
        lambda task, key, value: validate.number(
            value,
            key,
            minimum=0.0,
            maximum=1.0,
            open_min=True,
            subject=f"task {task!r}: {key}",
            repr_bounds=True,
        ),
    ),
}


def _gate_bias(forget: float, update: float) -> dict[str, tuple[Any, Check]]:
    """The initial biases of the gates that keep the state: the LSTM's forget gate f and the
    GRU's update gate z (z = 1 keeps the state); see :mod:`.cells` for the measurements.
    Used only by initialisation, yet compiled in like the other structural parameters."""
    return {
        "forget_bias": (forget, _number(-10.0, 10.0)),
        "update_bias": (update, _number(-10.0, 10.0)),
    }


# The cell each gate bias belongs to: the resolved parameters of the other cells omit it.
_CELL_ONLY = {"forget_bias": "lstm", "update_bias": "gru"}


def _gate_biases(p: dict[str, Any]) -> dict[str, float]:
    return {k: p[k] for k in _CELL_ONLY if k in p}


@dataclass(frozen=True)
class _TaskDef:
    description: str
    params: dict[str, tuple[Any, Check]]
    build: Callable[[dict], models.Model]
    budget: str
    recurrent: bool


_TASKS: dict[str, _TaskDef] = {
    "digits_cnn": _TaskDef(
        "8x8 digits, CNN: conv3x3(16)-act-pool-conv3x3(32)-act-pool-dense(10), cross-entropy",
        dict(_REG),
        lambda p: models.digits_cnn(
            batchnorm=p["batchnorm"],
            dropout=p["dropout"],
            activation=p["activation"],
            dropout_mode=p["dropout_mode"],
            bn_alpha=p["bn_alpha"],
        ),
        "epochs",
        False,
    ),
    "digits_mlp": _TaskDef(
        "8x8 digits, MLP: depth x dense(hidden)-act (residual: identity skips around blocks "
        "2..depth), then dense(10), on the 64 pixels, cross-entropy",
        {
            "hidden": (128, _integer(1)),
            "depth": (1, _integer(1)),
            "residual": (False, _flag),
            **_REG,
        },
        lambda p: models.digits_mlp(
            hidden=p["hidden"],
            batchnorm=p["batchnorm"],
            dropout=p["dropout"],
            activation=p["activation"],
            depth=p["depth"],
            residual=p["residual"],
            dropout_mode=p["dropout_mode"],
            bn_alpha=p["bn_alpha"],
        ),
        "epochs",
        False,
    ),
    "digits_logreg": _TaskDef(
        "8x8 digits, multinomial logistic regression (convex), cross-entropy",
        {"l1": _REG["l1"], "l2": _REG["l2"], "augment": _REG["augment"]},
        lambda p: models.digits_logreg(),
        "epochs",
        False,
    ),
    "digits_rnn": _TaskDef(
        "8x8 digits read row by row (8 steps of 8 pixels) by a recurrent cell, then dense(10)",
        {
            "cell": ("lstm", _choice(tuple(CELLS))),
            "hidden": (64, _integer(1)),
            # 8 steps need no help to carry the state, and a GRU that writes 5 % per step
            # (update_bias 3) learnt slower: test accuracy after 10 epochs of Adam 3e-3
            # 0.83-0.86 against 0.93-0.94 at 0 (0.55 against 0.86 at 1e-3; 2 seeds each).
            **_gate_bias(1.0, 0.0),
        },
        lambda p: models.sequence_model(
            cell=p["cell"], hidden=p["hidden"], inputs=8, outputs=10, **_gate_biases(p)
        ),
        "epochs",
        True,
    ),
    "adding": _TaskDef(
        "the adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015): sum the "
        "two marked values of a sequence; MSE, 1/6 for predicting the mean",
        {
            "length": (50, _integer(2)),
            "cell": ("lstm", _choice(tuple(CELLS))),
            "hidden": (64, _integer(1)),
            # The smallest whole-number biases that keep the gradient at h_1 within an order
            # of magnitude of h_50 at initialisation (see .cells): g_1/g_50 0.37-1.1 at
            # forget bias 2 (0.010-0.020 at 1), 0.18-0.20 at update bias 3 (0.02 at 2).
            **_gate_bias(2.0, 3.0),
        },
        lambda p: models.sequence_model(
            cell=p["cell"], hidden=p["hidden"], inputs=2, outputs=1, **_gate_biases(p)
        ),
        "steps",
        True,
    ),
}


def _cell_only(name: str, given: dict[str, Any], resolved: dict[str, Any]) -> None:
    """Drop from ``resolved`` the gate biases of the cells other than its ``cell``; one of
    them given explicitly is an error (it would change nothing)."""
    for key, cell in _CELL_ONLY.items():
        if key not in resolved or resolved["cell"] == cell:
            continue
        if key in given:
            raise ConfigError(
                f"task {name!r}: {key} is a parameter of cell = {cell!r}, not of "
                f"cell = {resolved['cell']!r}; remove it or set cell = {cell!r}",
                key=key,
            )
        del resolved[key]


@dataclass(frozen=True, eq=False)
class Task:
    """A training task with resolved parameters; :meth:`run` trains a group of runs.

    Attributes:
        name: the catalogue name.
        params: every parameter, defaults filled in.
        budget: ``"epochs"`` (dataset tasks) or ``"steps"`` (``adding``).
        recurrent: whether the model is recurrent (it then records ``grad_norm_h0``).
        description: one line.
    """

    name: str
    params: dict[str, Any]
    budget: str
    recurrent: bool
    description: str
    _model: models.Model = field(repr=False)

    def _check(self, budget: int, batch_size: int) -> None:
        for key, v in (("batch_size", batch_size), (self.budget, budget)):
            _integer(1)(self.name, key, v)
        if self.budget == "epochs":
            n = data.digits_split().y_train.shape[0]
            if batch_size > n:
                raise ConfigError(
                    f"task {self.name!r}: batch_size {batch_size} exceeds the {n} training "
                    f"images; use a batch_size <= {n}",
                    key="batch_size",
                )

    def num_steps(self, budget: int, batch_size: int) -> int:
        """Optimizer steps of a run: ``budget`` steps, or ``budget`` epochs of
        ``n_train // batch_size`` minibatches (the incomplete last minibatch is dropped)."""
        self._check(budget, batch_size)
        if self.budget == "steps":
            return int(budget)
        return int(budget) * (data.digits_split().y_train.shape[0] // int(batch_size))

    def run(
        self,
        make_optimizer: Callable[[dict], optax.GradientTransformation],
        hparams: dict[str, np.ndarray],
        seeds: np.ndarray,
        *,
        budget: int,
        batch_size: int,
        log_every: int,
        dtype,
        on_chunk: Callable[[int, int], None] | None = None,
        cache_key: Hashable | None = None,
    ) -> TaskResult:
        """Train one run per seed (``hparams[k][i]`` belongs to ``seeds[i]``), vmapped.

        ``make_optimizer`` is called inside the jitted program with a dict of traced scalar
        hyperparameters. ``budget``: epochs or steps (see :attr:`budget`). Curve points every
        ``log_every`` steps (dataset tasks: rounded down to whole epochs, at least one) and
        after the last step. ``on_chunk(done, total)`` is called after each chunk, in units
        of the budget. ``cache_key`` (optional) names the program in this process's cache
        (:func:`optbench.compilation.program`): it must cover everything but the
        hyperparameter values and seeds. See :mod:`optbench.problems.tasks.train` for the
        metrics.

        Example:
            >>> import optax, numpy as np, jax.numpy as jnp
            >>> task = get("digits_logreg")
            >>> res = task.run(lambda h: optax.adam(h["learning_rate"]),
            ...                {"learning_rate": np.array([1e-2, 1e-3])}, np.array([0, 0]),
            ...                budget=2, batch_size=64, log_every=16, dtype=jnp.float32)
            >>> res.curves["test_loss"].shape
            (2, 2)
        """
        part = Part(make_optimizer, hparams, seeds)
        kw = dict(budget=budget, batch_size=batch_size, log_every=log_every, dtype=dtype)
        return self.run_together([part], **kw, on_chunk=on_chunk, cache_key=cache_key)[0]

    def run_together(
        self,
        parts: Sequence[Part],
        *,
        budget: int,
        batch_size: int,
        log_every: int,
        dtype,
        on_chunk: Callable[[int, int], None] | None = None,
        cache_key: Hashable | None = None,
    ) -> list[TaskResult]:
        """:meth:`run` for several optimizers' runs at once (:class:`~.plan.Part`: an
        optimizer factory, its hyperparameters, its seeds), in one program (one compile);
        each part's result is the one :meth:`run` gives it alone, bit for bit."""
        self._check(budget, batch_size)
        validate.integer(log_every, "log_every", minimum=1)
        checked = []
        for make, hparams, seeds in parts:
            seeds = np.atleast_1d(np.asarray(seeds))
            for k, v in hparams.items():
                if np.shape(v) not in ((), seeds.shape):
                    raise ConfigError(
                        f"hyperparameter {k!r} has shape {np.shape(v)}, expected one value per "
                        f"seed {seeds.shape}",
                        key=k,
                    )
            checked.append(Part(make, hparams, seeds))
        p = self.params
        return train(
            self._model,
            dataset=self.budget == "epochs",
            parts=checked,
            budget=int(budget),
            batch_size=int(batch_size),
            log_every=int(log_every),
            dtype=dtype,
            regularization={k: v for k, v in p.items() if k in TRACED_PARAMS},
            seq_length=p.get("length"),
            on_chunk=on_chunk,
            cache_key=cache_key,
            # the initialisation depends on the model alone: one program for every optimizer
            model_key=(self.name, tuple(sorted((k, repr(v)) for k, v in p.items()))),
        )


def _lookup(name: str) -> _TaskDef:
    return _TASKS[validate.choice(name, "task", _TASKS, what="task")]


def get(name: str, **params: Any) -> Task:
    """The task ``name`` with ``params`` (the others take their defaults).

    Unknown names, unknown parameters and invalid values raise :class:`optbench.ConfigError`,
    as does a gate bias given for another cell (``update_bias`` with ``cell = "lstm"``); the
    resolved parameters leave out the gate biases of the other cells.

    Example:
        >>> get("adding", cell="gru").params  # forget_bias is the LSTM's: left out
        {'length': 50, 'cell': 'gru', 'hidden': 64, 'update_bias': 3.0}
    """
    d = _lookup(name)
    for key in params:
        validate.choice(key, key, d.params, what="parameter", subject=f"task {name!r}")
    resolved = {}
    for key, (default, check) in d.params.items():
        resolved[key] = check(name, key, params[key]) if key in params else default
    _cell_only(name, params, resolved)
    return Task(name, resolved, d.budget, d.recurrent, d.description, d.build(resolved))


def names() -> list[str]:
    """The task names, sorted."""
    return sorted(_TASKS)


def defaults(name: str) -> dict[str, Any]:
    """The parameters of task ``name`` with their default values."""
    return {k: v[0] for k, v in _lookup(name).params.items()}


def describe(name: str) -> str:
    """One line describing task ``name``, its budget unit and its parameters."""
    d = _lookup(name)
    ps = ", ".join(f"{k}={v[0]!r}" for k, v in d.params.items())
    return f"{name}: {d.description} (budget in {d.budget}; params: {ps})"
