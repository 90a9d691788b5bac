"""Adagrad: per-coordinate step sizes from the sum of all squared gradients."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optbench.optimizers import _base as B


class AdagradState(NamedTuple):
    """State of :func:`adagrad`: update count and the running sum of squared gradients."""

    count: jax.Array
    sum_of_squares: B.PyTree


@B.checked
def adagrad(
    learning_rate: B.ScalarOrSchedule = 1e-2,
    eps: B.Scalar = 1e-10,
    initial_accumulator_value: B.Scalar = 0.0,
    *,
    eps_in_sqrt: bool = False,
    sqrt: bool = True,
    weight_decay: B.Scalar = 0.0,
) -> optax.GradientTransformation:
    r"""Adagrad (PyTorch's ``Adagrad`` by default).

    Update (s starts at ``initial_accumulator_value``)::

        s <- s + g^2
        p <- p - lr * g / (sqrt(s) + eps)

    The lecture's slide writes it without the square root::

        cache_{t+1} = cache_t + (grad f(x_t))^2
        x_{t+1} = x_t - alpha * grad f(x_t) / (cache_{t+1} + eps)

    ``sqrt=False`` is that form, ``p <- p - lr * g / (s + eps)``. The canonical method
    (Duchi et al.) and every library divide by ``sqrt(s)``, the default here. The slide's
    form is not scale invariant: where ``s >> eps`` its step is ``lr * g / s``, so
    multiplying the loss by ``c`` divides the steps by ``c`` (the canonical steps do not
    change, up to ``eps``); for gradients of constant size ``|g|`` (and ``s`` from 0) the
    step at t is ``lr / (t |g|)`` where the canonical one is ``lr / sqrt(t)``. Where
    ``s << eps`` it is SGD with the learning rate ``lr / eps``: the longest first step,
    ``lr / (2 sqrt(eps))`` (5e4 lr with the default ``eps``), comes at ``|g| = sqrt(eps)``.

    With ``eps_in_sqrt=True`` the denominator is ``sqrt(s + eps)``; then
    ``adagrad(lr, eps=1e-7, initial_accumulator_value=0.1, eps_in_sqrt=True)`` is exactly
    ``optax.adagrad(lr)``. It needs the root: ``sqrt=False`` with ``eps_in_sqrt=True`` is
    a ConfigError. A coordinate whose denominator is 0 (only possible with ``eps = 0`` and
    no gradient yet) gets a zero update, as in optax.

    Args:
      learning_rate: step size ``lr`` (> 0) or a schedule ``count -> lr``.
      eps: ``eps`` >= 0, added to the root (or under it with ``eps_in_sqrt``).
      initial_accumulator_value: the starting value of ``s`` (>= 0).
      eps_in_sqrt: put ``eps`` under the square root.
      sqrt: divide by ``sqrt(s) + eps``; False: by ``s + eps`` (the slide's form).
      weight_decay: coupled L2, ``g <- g + weight_decay * p`` first (needs ``params``).

    References: J. Duchi, E. Hazan, Y. Singer, "Adaptive subgradient methods for online
    learning and stochastic optimization", JMLR 2011.

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.adagrad(learning_rate=0.5)
      >>> params = jnp.array([1.0, -3.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> params + updates  # the first step has length lr in every coordinate
      Array([ 0.5, -2.5], dtype=float32)
      >>> slide = optimizers.adagrad(learning_rate=0.5, sqrt=False)
      >>> updates, _ = slide.update(2 * params, slide.init(params), params)
      >>> [round(float(u), 4) for u in updates]  # -lr g / g^2 = -lr / g, g = (2, -6)
      [-0.25, 0.0833]
    """
    in_sqrt = B.flag(eps_in_sqrt)
    root = B.flag(sqrt)
    B.check_root_and_eps("adagrad", root, in_sqrt)

    def init(params):
        return AdagradState(
            count=B.zero_count(),
            sum_of_squares=B.full_like(params, initial_accumulator_value),
        )

    def update(grads, state, params=None):
        grads = B.add_coupled_weight_decay("adagrad", grads, params, weight_decay)
        s = jax.tree.map(lambda g, s: s + g * g, grads, state.sum_of_squares)

        def scaled(g, s):
            e = B.like(eps, g)
            rooted = B.select(in_sqrt, jnp.sqrt(s + e), jnp.sqrt(s) + e)
            denom = B.select(root, rooted, s + e)
            return jnp.where(denom > 0, g / jnp.where(denom > 0, denom, 1), 0)

        direction = jax.tree.map(scaled, grads, s)
        lr = B.learning_rate_at(learning_rate, state.count)
        new_state = AdagradState(count=B.increment(state.count), sum_of_squares=s)
        return B.scale_by_lr(direction, lr), new_state

    return optax.GradientTransformation(init, update)


# The signatures above are the one place the defaults are written down.
ADAGRAD_DEFAULTS = B.signature_defaults(adagrad)
