"""Plain gradient descent, heavy-ball momentum and Nesterov momentum."""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from optbench.optimizers import _base as B


class SgdState(NamedTuple):
    """State of :func:`sgd`: only the number of updates done."""

    count: jax.Array


class MomentumState(NamedTuple):
    """State of :func:`momentum`: update count and the velocity ``b``."""

    count: jax.Array
    trace: B.PyTree


class NesterovState(NamedTuple):
    """State of :func:`nesterov`: update count and the velocity ``b``."""

    count: jax.Array
    trace: B.PyTree


@B.checked
def sgd(
    learning_rate: B.ScalarOrSchedule = 1e-2, *, weight_decay: B.Scalar = 0.0
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent.

    Update (lecture and canonical form agree)::

        p <- p - lr * g

    Args:
      learning_rate: step size ``lr`` (> 0), or a schedule ``count -> lr`` (count from 0).
      weight_decay: coupled L2, ``g <- g + weight_decay * p`` before the step (PyTorch's
        ``weight_decay``); needs ``params`` in ``update`` when nonzero.

    References: Robbins & Monro, "A stochastic approximation method", 1951.

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.sgd(learning_rate=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> params + updates
      Array([ 0.8, -1.6], dtype=float32)
    """

    def init(params):
        del params
        return SgdState(count=B.zero_count())

    def update(grads, state, params=None):
        grads = B.add_coupled_weight_decay("sgd", grads, params, weight_decay)
        lr = B.learning_rate_at(learning_rate, state.count)
        return B.scale_by_lr(grads, lr), SgdState(count=B.increment(state.count))

    return optax.GradientTransformation(init, update)


def _heavy_ball(name, learning_rate, momentum, weight_decay, nesterov, state_type):
    def init(params):
        return state_type(count=B.zero_count(), trace=B.zeros_like(params))

    def update(grads, state, params=None):
        grads = B.add_coupled_weight_decay(name, grads, params, weight_decay)
        trace = jax.tree.map(lambda g, b: B.like(momentum, g) * b + g, grads, state.trace)
        if nesterov:
            direction = jax.tree.map(lambda g, b: g + B.like(momentum, g) * b, grads, trace)
        else:
            direction = trace
        lr = B.learning_rate_at(learning_rate, state.count)
        new_state = state_type(count=B.increment(state.count), trace=trace)
        return B.scale_by_lr(direction, lr), new_state

    return optax.GradientTransformation(init, update)


@B.checked
def momentum(
    learning_rate: B.ScalarOrSchedule = 1e-2,
    momentum: B.Scalar = 0.9,
    *,
    weight_decay: B.Scalar = 0.0,
) -> optax.GradientTransformation:
    r"""Gradient descent with heavy-ball momentum (PyTorch's ``SGD(momentum=mu)``).

    Update, as the lecture writes it (b starts at 0)::

        b <- mu * b + g
        p <- p - lr * b

    Some texts write ``v <- mu v - lr g; p <- p + v``; for a constant learning rate the
    two are the same sequence of parameters (``v = -lr b``).

    Args:
      learning_rate: step size ``lr`` (> 0) or a schedule ``count -> lr``.
      momentum: ``mu`` in [0, 1).
      weight_decay: coupled L2, ``g <- g + weight_decay * p`` first (needs ``params``).

    References: B. T. Polyak, "Some methods of speeding up the convergence of iteration
    methods", USSR Computational Mathematics and Mathematical Physics, 1964.

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.momentum(learning_rate=0.1, momentum=0.9)
      >>> params = jnp.array([1.0])
      >>> state = opt.init(params)
      >>> for _ in range(2):
      ...     updates, state = opt.update(2 * params, state, params)
      ...     params = params + updates
      >>> params  # 1 - 0.2 = 0.8, then b = 0.9 * 2 + 1.6 = 3.4: 0.8 - 0.34
      Array([0.46], dtype=float32)
    """
    return _heavy_ball("momentum", learning_rate, momentum, weight_decay, False, MomentumState)


@B.checked
def nesterov(
    learning_rate: B.ScalarOrSchedule = 1e-2,
    momentum: B.Scalar = 0.9,
    *,
    weight_decay: B.Scalar = 0.0,
) -> optax.GradientTransformation:
    r"""Nesterov's accelerated gradient in the form of Sutskever et al. (PyTorch, optax).

    Update (b starts at 0)::

        b <- mu * b + g
        p <- p - lr * (g + mu * b)

    The lecture's slide writes the look-ahead form, with the gradient taken at the
    look-ahead point::

        v <- mu * v - lr * grad f(p + mu * v)
        p <- p + v

    Substituting ``p' = p + mu v`` turns it into the form above: for a constant learning
    rate both produce the same look-ahead iterates; with a schedule they differ slightly.

    Args:
      learning_rate: step size ``lr`` (> 0) or a schedule ``count -> lr``.
      momentum: ``mu`` in [0, 1).
      weight_decay: coupled L2, ``g <- g + weight_decay * p`` first (needs ``params``).

    References: Y. Nesterov, "A method for solving the convex programming problem with
    convergence rate O(1/k^2)", 1983; I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On
    the importance of initialization and momentum in deep learning", ICML 2013.

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.nesterov(learning_rate=0.1, momentum=0.9)
      >>> params = jnp.array([1.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> params + updates  # 1 - 0.1 * (2 + 0.9 * 2)
      Array([0.62], dtype=float32)
    """
    return _heavy_ball("nesterov", learning_rate, momentum, weight_decay, True, NesterovState)


# The signatures above are the one place the defaults are written down.
SGD_DEFAULTS = B.signature_defaults(sgd)
MOMENTUM_DEFAULTS = B.signature_defaults(momentum)
NESTEROV_DEFAULTS = B.signature_defaults(nesterov)
