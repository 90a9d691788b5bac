"""Adadelta: Adagrad's step without a global learning rate, units matched by a second average."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optbench.optimizers import _base as B


class AdadeltaState(NamedTuple):
    """State of :func:`adadelta`: count, E[g^2] and E[dx^2] (both start at 0)."""

    count: jax.Array
    sq_grad_avg: B.PyTree
    sq_delta_avg: B.PyTree


@B.checked
def adadelta(
    learning_rate: B.ScalarOrSchedule = 1.0,
    rho: B.Scalar = 0.9,
    eps: B.Scalar = 1e-6,
    *,
    weight_decay: B.Scalar = 0.0,
) -> optax.GradientTransformation:
    r"""Adadelta (PyTorch's ``Adadelta``, optax's ``adadelta``).

    Update (the averages start at 0)::

        Eg <- rho * Eg + (1 - rho) * g^2
        d  <- sqrt(Ex + eps) / sqrt(Eg + eps) * g
        Ex <- rho * Ex + (1 - rho) * d^2
        p  <- p - lr * d

    ``eps`` sits inside both roots by definition: it sets the size of the very first
    steps (``Ex = 0``). Zeiler's paper has no learning rate (``lr = 1``, the default);
    the libraries multiply by one, and ``Ex`` accumulates the unscaled ``d``.

    Args:
      learning_rate: ``lr`` (> 0) or a schedule ``count -> lr``.
      rho: the decay of both averages, in [0, 1).
      eps: ``eps`` >= 0 (inside both roots).
      weight_decay: coupled L2, ``g <- g + weight_decay * p`` first (needs ``params``).

    References: M. D. Zeiler, "ADADELTA: an adaptive learning rate method", arXiv 2012.

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.adadelta()
      >>> params = jnp.array([1.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> bool(jnp.allclose(updates, -2 * jnp.sqrt(1e-6 / (0.1 * 4 + 1e-6))))
      True
    """

    def init(params):
        return AdadeltaState(
            count=B.zero_count(),
            sq_grad_avg=B.zeros_like(params),
            sq_delta_avg=B.zeros_like(params),
        )

    def update(grads, state, params=None):
        grads = B.add_coupled_weight_decay("adadelta", grads, params, weight_decay)

        def avg(x, old):
            r = B.like(rho, x)
            return r * old + (1 - r) * x * x

        eg = jax.tree.map(avg, grads, state.sq_grad_avg)

        def delta(g, eg, ex):
            e = B.like(eps, g)
            return jnp.sqrt(ex + e) / jnp.sqrt(eg + e) * g

        d = jax.tree.map(delta, grads, eg, state.sq_delta_avg)
        ex = jax.tree.map(avg, d, state.sq_delta_avg)
        lr = B.learning_rate_at(learning_rate, state.count)
        new_state = AdadeltaState(count=B.increment(state.count), sq_grad_avg=eg, sq_delta_avg=ex)
        return B.scale_by_lr(d, lr), new_state

    return optax.GradientTransformation(init, update)


# The signatures above are the one place the defaults are written down.
ADADELTA_DEFAULTS = B.signature_defaults(adadelta)
