"""Adam and its relatives: AdamW (decoupled decay), NAdam (Nesterov) and AMSGrad."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optbench._errors import ConfigError
from optbench.optimizers import _base as B


class AdamState(NamedTuple):
    """State of :func:`adam`, :func:`adamw` and :func:`nadam`: count, first moment ``mu``
    and second moment ``nu``."""

    count: jax.Array
    mu: B.PyTree
    nu: B.PyTree


# the same class under the names older code imports
AdamWState = AdamState
NadamState = AdamState


class AmsgradState(NamedTuple):
    """State of :func:`amsgrad`: count, ``mu``, ``nu`` and the running maximum ``nu_max``."""

    count: jax.Array
    mu: B.PyTree
    nu: B.PyTree
    nu_max: B.PyTree


def _adam_family(
    name: str,
    learning_rate: B.ScalarOrSchedule,
    b1: B.Scalar,
    b2: B.Scalar,
    eps: B.Scalar,
    weight_decay: B.Scalar,
    *,
    variant: str,
    decoupled: bool,
    bias_correction: bool | jax.Array = True,
    sqrt: bool | jax.Array = True,
) -> optax.GradientTransformation:
    """The shared loop; ``variant`` is "adam", "nadam" or "amsgrad". ``bias_correction``
    and ``sqrt`` are the switches of :func:`adam` and :func:`adamw` (the other variants
    keep both on)."""
    corrected = B.flag(bias_correction)
    root = B.flag(sqrt)

    def make_state(count, mu, nu, nu_max):
        if variant == "amsgrad":
            return AmsgradState(count=count, mu=mu, nu=nu, nu_max=nu_max)
        return AdamState(count=count, mu=mu, nu=nu)

    def init(params):
        zeros = B.zeros_like(params)
        return make_state(B.zero_count(), zeros, zeros, zeros)

    def update(grads, state, params=None):
        if not decoupled:
            grads = B.add_coupled_weight_decay(name, grads, params, weight_decay)
        elif params is None and not B.is_zero(weight_decay):
            raise ConfigError(
                f"{name}: decoupled weight_decay={B.show(weight_decay)} needs the "
                "parameters; call update(grads, state, params) or set weight_decay = 0",
                key="weight_decay",
            )
        mu = jax.tree.map(lambda g, m: B.like(b1, g) * m + (1 - B.like(b1, g)) * g, grads, state.mu)
        nu = jax.tree.map(
            lambda g, v: B.like(b2, g) * v + (1 - B.like(b2, g)) * g * g, grads, state.nu
        )
        count = B.increment(state.count)
        nu_max = None
        if variant == "amsgrad":
            nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu)

        def direction(g, m, v):
            if variant == "nadam":
                b = B.like(b1, g)
                m_hat = b * m / B.bias_correction(b1, B.increment(count), g) + (1 - b) * g / (
                    B.bias_correction(b1, count, g)
                )
            else:
                m_hat = B.select(corrected, m / B.bias_correction(b1, count, g), m)
            v_hat = B.select(corrected, v / B.bias_correction(b2, count, g), v)
            e = B.like(eps, g)
            return m_hat / B.select(root, jnp.sqrt(v_hat) + e, v_hat + e)

        u = jax.tree.map(direction, grads, mu, nu if nu_max is None else nu_max)
        if decoupled and not B.is_zero(weight_decay):
            u = jax.tree.map(lambda u, p: u + B.like(weight_decay, p) * p, u, params)
        lr = B.learning_rate_at(learning_rate, state.count)
        return B.scale_by_lr(u, lr), make_state(count, mu, nu, nu_max)

    return optax.GradientTransformation(init, update)


@B.checked
def adam(
    learning_rate: B.ScalarOrSchedule = 1e-3,
    b1: B.Scalar = 0.9,
    b2: B.Scalar = 0.999,
    eps: B.Scalar = 1e-8,
    *,
    bias_correction: bool = True,
    sqrt: bool = True,
    weight_decay: B.Scalar = 0.0,
) -> optax.GradientTransformation:
    r"""Adam (PyTorch's ``Adam``, optax's ``adam``).

    Update (m, v start at 0, t = 1, 2, ...)::

        m <- b1 * m + (1 - b1) * g
        v <- b2 * v + (1 - b2) * g^2
        m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)

    The lecture's slide writes "not quite Adam"::

        v_{t+1} = gamma * v_t + (1 - gamma) * grad f(x_t)
        cache_{t+1} = beta * cache_t + (1 - beta) * (grad f(x_t))^2
        x_{t+1} = x_t - alpha * v_{t+1} / (cache_{t+1} + eps)

    It lacks the bias correction (``m`` and ``v``, which start at 0 and so are biased
    towards 0 early on, are used as they are) and the square root (it divides by
    ``v + eps``). ``bias_correction=False`` drops the division by ``1 - b^t``,
    ``sqrt=False`` the root; both together are the slide's form exactly (``gamma = b1``,
    ``beta = b2``, ``alpha = lr``, its ``v`` is ``m``, its cache ``v``). The canonical
    method (Kingma & Ba, every library) has both, the default here. For a constant
    gradient ``g`` (and ``v >> eps``):

    * without the bias correction the step is ``(1 - b1^t) / sqrt(1 - b2^t)`` times
      Adam's, which with the default b1, b2 enlarges the early steps rather than damping
      them: 3.16 = ``(1 - b1) / sqrt(1 - b2)`` at t = 1, 6.57 at t = 12 (the largest),
      3.24 at t = 100, 1.26 at t = 1000 and 1.03 at t = 3000: it tends to 1 over a few
      times the ``1 / (1 - b2)`` steps ``v`` remembers. Only where
      ``1 - b1 < sqrt(1 - b2)`` (e.g. b1 = 0.99: 0.32) is the first step damped.
    * without the root the step is ``lr * m_hat / v_hat = lr / |g|`` per coordinate
      instead of ``lr``: not scale invariant (multiplying the loss by ``c`` divides the
      steps by ``c``); where ``v_hat << eps`` it is momentum SGD on ``m_hat`` with the
      learning rate ``lr / eps``.
    * with neither, the step is ``(1 - b1^t) / (1 - b2^t) * lr / |g|``: 100 lr / |g| at
      t = 1 with the defaults, 10.5 lr / |g| at t = 100.

    Args:
      learning_rate: step size ``lr`` (> 0) or a schedule ``count -> lr``.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: ``eps`` >= 0, added to the root of the second moment.
      bias_correction: divide ``m`` and ``v`` by ``1 - b^t``; False: the slide's form.
      sqrt: divide by ``sqrt(v_hat) + eps``; False: by ``v_hat + eps`` (the slide's form).
      weight_decay: coupled L2, ``g <- g + weight_decay * p`` first (needs ``params``).

    References: D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization",
    ICLR 2015.

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.adam(learning_rate=0.1)
      >>> params = jnp.array([1.0, -3.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> [round(float(u), 3) for u in updates]  # the first step has length lr per coordinate
      [-0.1, 0.1]
      >>> def first_step(**switches):
      ...     opt = optimizers.adam(learning_rate=0.1, **switches)
      ...     updates, _ = opt.update(2 * params, opt.init(params), params)
      ...     return [round(float(u), 3) for u in updates]
      >>> first_step(bias_correction=False)  # lr (1 - b1) / sqrt(1 - b2) = 3.16 lr
      [-0.316, 0.316]
      >>> first_step(sqrt=False)  # lr / g, g = (2, -6)
      [-0.05, 0.017]
      >>> first_step(bias_correction=False, sqrt=False)  # the slide's: 100 lr / g
      [-5.0, 1.667]
    """
    return _adam_family(
        "adam",
        learning_rate,
        b1,
        b2,
        eps,
        weight_decay,
        variant="adam",
        decoupled=False,
        bias_correction=bias_correction,
        sqrt=sqrt,
    )


@B.checked
def adamw(
    learning_rate: B.ScalarOrSchedule = 1e-3,
    b1: B.Scalar = 0.9,
    b2: B.Scalar = 0.999,
    eps: B.Scalar = 1e-8,
    *,
    bias_correction: bool = True,
    sqrt: bool = True,
    weight_decay: B.Scalar = 1e-2,
) -> optax.GradientTransformation:
    r"""AdamW: Adam with decoupled weight decay (PyTorch's ``AdamW``, optax's ``adamw``).

    Update: Adam's step plus a decay of the parameters that does not pass through the
    moments::

        p <- p - lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * p)

    PyTorch writes it as ``p <- (1 - lr wd) p`` before Adam's step: the same thing.

    ``bias_correction`` and ``sqrt`` are :func:`adam`'s switches (see there for what they
    change): both False give the lecture slide's "not quite Adam",
    ``x_{t+1} = x_t - alpha * v_{t+1} / (cache_{t+1} + eps)`` (``m`` and ``v`` used as
    they are, no root), plus the decoupled decay ``- lr * weight_decay * p``, which they
    leave unchanged. The canonical AdamW (Loshchilov & Hutter) has both, the default here.

    Args:
      learning_rate: step size ``lr`` (> 0) or a schedule ``count -> lr``.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: ``eps`` >= 0, added to the root of the second moment.
      bias_correction: divide ``m`` and ``v`` by ``1 - b^t``; False: the slide's form.
      sqrt: divide by ``sqrt(v_hat) + eps``; False: by ``v_hat + eps`` (the slide's form).
      weight_decay: decoupled decay, >= 0 (the default is PyTorch's; optax's is 1e-4).

    References: I. Loshchilov, F. Hutter, "Decoupled weight decay regularization",
    ICLR 2019; D. P. Kingma, J. Ba, "Adam", ICLR 2015.

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.adamw(learning_rate=0.1)
      >>> params = jnp.array([1.0, -3.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> [round(float(u), 3) for u in updates]  # Adam's -lr sign(g), minus lr * 0.01 * p
      [-0.101, 0.103]
      >>> opt = optimizers.adamw(learning_rate=0.1, bias_correction=False)
      >>> updates, _ = opt.update(2 * params, opt.init(params), params)
      >>> [round(float(u), 3) for u in updates]  # 3.16 lr sign(g), minus lr * 0.01 * p
      [-0.317, 0.319]
    """
    return _adam_family(
        "adamw",
        learning_rate,
        b1,
        b2,
        eps,
        weight_decay,
        variant="adam",
        decoupled=True,
        bias_correction=bias_correction,
        sqrt=sqrt,
    )


@B.checked
def nadam(
    learning_rate: B.ScalarOrSchedule = 2e-3,
    b1: B.Scalar = 0.9,
    b2: B.Scalar = 0.999,
    eps: B.Scalar = 1e-8,
    *,
    weight_decay: B.Scalar = 0.0,
) -> optax.GradientTransformation:
    r"""NAdam: Adam with a Nesterov look-ahead on the first moment (optax's ``nadam``).

    Update (Dozat's form with a constant ``b1``, as optax; t = 1, 2, ...)::

        m <- b1 * m + (1 - b1) * g
        v <- b2 * v + (1 - b2) * g^2
        m_hat = b1 * m / (1 - b1^(t+1)) + (1 - b1) * g / (1 - b1^t)
        v_hat = v / (1 - b2^t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)

    PyTorch's ``NAdam`` is a different algorithm (a warmed-up momentum schedule
    ``mu_t = b1 (1 - 0.5 * 0.96^(0.004 t))``) and gives a different trajectory.

    Args:
      learning_rate: step size ``lr`` (> 0) or a schedule ``count -> lr``.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: ``eps`` >= 0, added to the root of the second moment.
      weight_decay: coupled L2, ``g <- g + weight_decay * p`` first (needs ``params``).

    References: T. Dozat, "Incorporating Nesterov momentum into Adam", ICLR workshop
    2016.

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.nadam(learning_rate=0.1)
      >>> params = jnp.array([1.0, -3.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> [round(float(u), 3) for u in updates]  # (0.09 / 0.19 + 0.1 / 0.1) * lr * sign(g)
      [-0.147, 0.147]
    """
    return _adam_family(
        "nadam", learning_rate, b1, b2, eps, weight_decay, variant="nadam", decoupled=False
    )


@B.checked
def amsgrad(
    learning_rate: B.ScalarOrSchedule = 1e-3,
    b1: B.Scalar = 0.9,
    b2: B.Scalar = 0.999,
    eps: B.Scalar = 1e-8,
    *,
    weight_decay: B.Scalar = 0.0,
) -> optax.GradientTransformation:
    r"""AMSGrad: Adam with a non-decreasing second moment (PyTorch's ``amsgrad=True``).

    Update (PyTorch's form: the maximum is taken over the raw ``v``, then bias-corrected;
    t = 1, 2, ...)::

        m <- b1 * m + (1 - b1) * g
        v <- b2 * v + (1 - b2) * g^2
        v_max <- max(v_max, v)
        p <- p - lr * (m / (1 - b1^t)) / (sqrt(v_max / (1 - b2^t)) + eps)

    optax's ``amsgrad`` takes the maximum over the bias-corrected ``v_hat`` instead, a
    different trajectory.

    Args:
      learning_rate: step size ``lr`` (> 0) or a schedule ``count -> lr``.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: ``eps`` >= 0, added to the root of the second moment.
      weight_decay: coupled L2, ``g <- g + weight_decay * p`` first (needs ``params``).

    References: S. J. Reddi, S. Kale, S. Kumar, "On the convergence of Adam and
    beyond", ICLR 2018.

    Example:
      >>> import jax.numpy as jnp
      >>> from optbench import optimizers
      >>> opt = optimizers.amsgrad(learning_rate=0.1)
      >>> params = jnp.array([1.0, -3.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> [round(float(u), 3) for u in updates]  # the same first step as Adam
      [-0.1, 0.1]
    """
    return _adam_family(
        "amsgrad", learning_rate, b1, b2, eps, weight_decay, variant="amsgrad", decoupled=False
    )


# The signatures above are the one place the defaults are written down.
ADAM_DEFAULTS = B.signature_defaults(adam)
ADAMW_DEFAULTS = B.signature_defaults(adamw)
NADAM_DEFAULTS = B.signature_defaults(nadam)
AMSGRAD_DEFAULTS = B.signature_defaults(amsgrad)
