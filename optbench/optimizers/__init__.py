"""The classic deep-learning optimizers, written from their update equations in jax.numpy.

Each factory returns an ``optax.GradientTransformation``: ``init(params) -> state`` and
``update(grads, state, params=None) -> (updates, state)``, where the updates are *added*
to the parameters. States are typed NamedTuples with an int32 ``count`` (updates done) and
the moment trees. Any pytree works, and float32/float64 parameters keep their dtype.

Every numeric hyperparameter may be a traced JAX value, so one compiled program can be
vmapped over a grid of learning rates; ``learning_rate`` may also be a schedule, a
function of the step count from 0 (see :mod:`optbench.schedules`). :func:`validate` checks
a whole grid of hyperparameters at once, building the optimizer only once.

Defaults live in one place, each factory's signature; the ``*_DEFAULTS`` dicts and
:func:`defaults` are read from it.

Example:
  >>> import jax.numpy as jnp
  >>> from optbench import optimizers
  >>> opt = optimizers.get("adam", learning_rate=0.1)
  >>> params = {"w": jnp.ones(3)}
  >>> state = opt.init(params)
  >>> updates, state = opt.update({"w": 2 * params["w"]}, state, params)
  >>> optimizers.names()[:3]
  ['sgd', 'momentum', 'nesterov']
  >>> optimizers.validate("adam", {"learning_rate": [1e-4, 1e-3, 1e-2]})  # a whole grid
"""

from optbench.optimizers._adadelta import ADADELTA_DEFAULTS, AdadeltaState, adadelta
from optbench.optimizers._adagrad import ADAGRAD_DEFAULTS, AdagradState, adagrad
from optbench.optimizers._adam import (
    ADAM_DEFAULTS,
    ADAMW_DEFAULTS,
    AMSGRAD_DEFAULTS,
    NADAM_DEFAULTS,
    AdamState,
    AdamWState,
    AmsgradState,
    NadamState,
    adam,
    adamw,
    amsgrad,
    nadam,
)
from optbench.optimizers._base import ScalarOrSchedule, Schedule
from optbench.optimizers._registry import defaults, describe, get, names, register, validate
from optbench.optimizers._rmsprop import RMSPROP_DEFAULTS, RmspropState, rmsprop
from optbench.optimizers._sgd import (
    MOMENTUM_DEFAULTS,
    NESTEROV_DEFAULTS,
    SGD_DEFAULTS,
    MomentumState,
    NesterovState,
    SgdState,
    momentum,
    nesterov,
    sgd,
)

_BUILTINS = [
    (sgd, SGD_DEFAULTS, "SGD: p -= lr g"),
    (momentum, MOMENTUM_DEFAULTS, "heavy-ball momentum: b = mu b + g; p -= lr b (Polyak 1964)"),
    (
        nesterov,
        NESTEROV_DEFAULTS,
        "Nesterov momentum: b = mu b + g; p -= lr (g + mu b) (Nesterov 1983, Sutskever 2013)",
    ),
    (adagrad, ADAGRAD_DEFAULTS, "Adagrad: lr / sqrt(sum of squared gradients) (Duchi 2011)"),
    (adadelta, ADADELTA_DEFAULTS, "Adadelta: ratio of RMS updates to RMS gradients (Zeiler 2012)"),
    (
        rmsprop,
        RMSPROP_DEFAULTS,
        "RMSProp: lr / RMS of recent gradients, optionally centered (Tieleman & Hinton 2012)",
    ),
    (adam, ADAM_DEFAULTS, "Adam: bias-corrected first and second moments (Kingma & Ba 2015)"),
    (adamw, ADAMW_DEFAULTS, "AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019)"),
    (nadam, NADAM_DEFAULTS, "NAdam: Adam with a Nesterov look-ahead on m (Dozat 2016)"),
    (
        amsgrad,
        AMSGRAD_DEFAULTS,
        "AMSGrad: Adam with a running max of v, PyTorch's form (Reddi et al. 2018)",
    ),
]
for _factory, _defaults, _summary in _BUILTINS:
    register(_factory.__name__, _factory, _defaults, description=_summary)
del _factory, _defaults, _summary

__all__ = [
    "AdadeltaState",
    "AdagradState",
    "AdamState",
    "AdamWState",
    "AmsgradState",
    "MomentumState",
    "NadamState",
    "NesterovState",
    "RmspropState",
    "ScalarOrSchedule",
    "Schedule",
    "SgdState",
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "amsgrad",
    "defaults",
    "describe",
    "get",
    "momentum",
    "nadam",
    "names",
    "nesterov",
    "register",
    "rmsprop",
    "sgd",
    "validate",
]
