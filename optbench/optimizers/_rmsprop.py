"""RMSProp: Adagrad with a leaky (exponential moving) average of squared gradients."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optbench.optimizers import _base as B


class RmspropState(NamedTuple):
    """State of :func:`rmsprop`: count, E[g^2] (``nu``) and, when centered, E[g] (``mu``)."""

    count: jax.Array
    nu: B.PyTree
    mu: B.PyTree | None


@B.checked
def rmsprop(
    learning_rate: B.ScalarOrSchedule = 1e-2,
    decay: B.Scalar = 0.9,
    eps: B.Scalar = 1e-8,
    *,
    centered: bool = False,
    eps_in_sqrt: bool = False,
    sqrt: bool = True,
    initial_accumulator_value: B.Scalar = 0.0,
    weight_decay: B.Scalar = 0.0,
) -> optax.GradientTransformation:
    r"""RMSProp (PyTorch's ``RMSprop`` with ``alpha = decay`` by default).

    Update (s starts at ``initial_accumulator_value``, m at 0)::

        s <- decay * s + (1 - decay) * g^2
        p <- p - lr * g / (sqrt(s) + eps)

    ``centered=True`` divides by an estimate of the standard deviation instead::

        m <- decay * m + (1 - decay) * g
        p <- p - lr * g / (sqrt(s - m^2) + eps)

    The lecture's slide writes the update without the square root::

        cache_{t+1} = beta * cache_t + (1 - beta) * (grad f(x_t))^2
        x_{t+1} = x_t - alpha * grad f(x_t) / (cache_{t+1} + eps)

    ``sqrt=False`` is that form, ``p <- p - lr * g / (s + eps)`` (centered:
    ``/ (s - m^2 + eps)``, the variance in place of the standard deviation). Tieleman &
    Hinton and every library divide by the root mean square, the default here. The
    slide's form is not scale invariant: where ``s >> eps`` its step is ``lr * g / s``, so
    multiplying the loss by ``c`` divides the steps by ``c``; for a constant gradient it
    tends to ``lr / |g|`` per coordinate instead of ``lr`` (the first step, from ``s = 0``,
    is ``lr / ((1 - decay) |g|)`` instead of ``lr / sqrt(1 - decay)``). Where ``s << eps``
    it is SGD with the learning rate ``lr / eps``: the longest first step,
    ``lr / (2 sqrt((1 - decay) eps))`` (1.6e4 lr with the defaults), comes at
    ``|g| = sqrt(eps / (1 - decay))``.

    ``eps_in_sqrt=True`` uses ``sqrt(s + eps)`` (``sqrt(s - m^2 + eps)``); then the
    defaults equal ``optax.rmsprop(lr)`` exactly (optax's ``eps_in_sqrt`` defaults to
    True, its ``initial_scale`` is ``initial_accumulator_value``). It needs the root:
    ``sqrt=False`` with ``eps_in_sqrt=True`` is a ConfigError.

    Args:
      learning_rate: step size ``lr`` (> 0) or a schedule ``count -> lr``.
      decay: the decay of the average, in [0, 1) (PyTorch's ``alpha``).
      eps: ``eps`` >= 0.
      centered: subtract the squared mean gradient ``m^2``.
      eps_in_sqrt: put ``eps`` under the square root.
      sqrt: divide by the root ``sqrt(s) + eps``; False: by ``s + eps`` (the slide's form).
      initial_accumulator_value: the starting value of ``s`` (>= 0).
      weight_decay: coupled L2, ``g <- g + weight_decay * p`` first (needs ``params``).

    References: T. Tieleman, G. Hinton, "Lecture 6.5 - rmsprop: divide the gradient by a
    running average of its recent magnitude", COURSERA: Neural Networks for Machine
    Learning, 2012; A. Graves, "Generating sequences with recurrent neural networks",
    2013 (the centered form).

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.rmsprop(learning_rate=0.01)
      >>> params = jnp.array([1.0, -3.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> [round(float(u), 4) for u in updates]  # -lr g / sqrt(0.1 g^2) = -lr sign(g) / sqrt(0.1)
      [-0.0316, 0.0316]
      >>> slide = optimizers.rmsprop(learning_rate=0.01, sqrt=False)
      >>> updates, _ = slide.update(2 * params, slide.init(params), params)
      >>> [round(float(u), 4) for u in updates]  # -lr g / (0.1 g^2) = -10 lr / g
      [-0.05, 0.0167]
    """
    is_centered = B.flag(centered)
    in_sqrt = B.flag(eps_in_sqrt)
    root = B.flag(sqrt)
    B.check_root_and_eps("rmsprop", root, in_sqrt)

    def init(params):
        return RmspropState(
            count=B.zero_count(),
            nu=B.full_like(params, initial_accumulator_value),
            mu=None if is_centered is False else B.zeros_like(params),
        )

    def update(grads, state, params=None):
        grads = B.add_coupled_weight_decay("rmsprop", grads, params, weight_decay)

        def avg(x, old):
            d = B.like(decay, x)
            return d * old + (1 - d) * x

        nu = jax.tree.map(lambda g, n: avg(g * g, n), grads, state.nu)
        if state.mu is None:
            mu, var = None, nu
        else:
            mu = jax.tree.map(avg, grads, state.mu)
            var = jax.tree.map(lambda n, m: B.select(is_centered, n - m * m, n), nu, mu)

        def scaled(g, v):
            e = B.like(eps, g)
            rooted = B.select(in_sqrt, jnp.sqrt(v + e), jnp.sqrt(v) + e)
            return g / B.select(root, rooted, v + e)

        direction = jax.tree.map(scaled, grads, var)
        lr = B.learning_rate_at(learning_rate, state.count)
        new_state = RmspropState(count=B.increment(state.count), nu=nu, mu=mu)
        return B.scale_by_lr(direction, lr), new_state

    return optax.GradientTransformation(init, update)


# The signatures above are the one place the defaults are written down.
RMSPROP_DEFAULTS = B.signature_defaults(rmsprop)
