"""Contour backgrounds and loss axes that draw well for any surface.

A bounded-below surface is contoured on ``log10(f - f_min + c)``: the levels crowd
around the minimum, where optimizers spend their time, and a negative minimum is no
problem. A surface unbounded below (a saddle) is contoured on a symmetric logarithm of
``f - f_0`` about a central value ``f_0``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optbench.rendering._style import set_scale


@dataclass(frozen=True)
class Background:
    """A surface sampled on a grid, transformed for contouring.

    ``z[j, i]`` is the transformed value at ``(x[i], y[j])``; ``levels`` are evenly spaced
    in ``z``; ``kind`` is ``"log"`` or ``"symlog"``.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    levels: np.ndarray
    bounds: np.ndarray
    kind: str


def evaluate(fn: Callable, bounds: np.ndarray, n: int = 200) -> tuple[np.ndarray, ...]:
    """``fn`` on an ``n x n`` grid over ``bounds`` ([[x0, x1], [y0, y1]]): ``(x, y, f)``.

    ``fn`` takes one point (a length-2 array); a JAX function is vmapped and jitted once,
    anything else is called point by point.
    """
    b = np.asarray(bounds, dtype=float)
    x = np.linspace(b[0, 0], b[0, 1], n)
    y = np.linspace(b[1, 0], b[1, 1], n)
    xx, yy = np.meshgrid(x, y)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    return x, y, evaluate_points(fn, pts).reshape(n, n)


#: Points are evaluated in blocks of this many (the last one padded), so that a surface's
#: jitted function compiles once per process whatever the number of points: the
#: 200 x 200 background and every path of a problem reuse it. Before, each call compiled
#: for its own length: seven compiles per animated problem, 0.45 s of its 0.53 s build
#: (the quickstart's Rosenbrock, 2026-12-02).
BLOCK = 1 << 16


@functools.lru_cache(maxsize=32)
def _vmapped(fn: Callable) -> Callable:
    import jax

    return jax.jit(jax.vmap(fn))


def evaluate_points(fn: Callable, pts: np.ndarray) -> np.ndarray:
    """``fn`` at each row of ``pts`` [n, 2] as a float64 array (NaN where it fails)."""
    pts = np.asarray(pts, dtype=float)
    if len(pts) == 0:
        return np.zeros(0)
    try:
        n = len(pts)
        padded = np.zeros((-(-n // BLOCK) * BLOCK, pts.shape[1]), dtype=np.float32)
        padded[:n] = pts
        blocks = [_vmapped(fn)(padded[i : i + BLOCK]) for i in range(0, len(padded), BLOCK)]
        return np.concatenate([np.asarray(b, dtype=float) for b in blocks])[:n]
    except Exception:
        out = np.empty(len(pts))
        for i, p in enumerate(pts):
            try:
                out[i] = float(fn(p))
            except Exception:
                out[i] = np.nan
        return out


def background(
    fn: Callable,
    bounds: np.ndarray,
    *,
    min_value: float | None = None,
    bounded_below: bool = True,
    n: int = 200,
    n_levels: int = 24,
) -> Background:
    """Sample ``fn`` over ``bounds`` and choose contour levels (see the module docstring).

    Example::

        bg = background(lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2,
                        np.array([[-2, 2], [-1, 3]]), min_value=0.0)
    """
    x, y, f = evaluate(fn, bounds, n)
    finite = np.isfinite(f)
    if not finite.any():
        f = np.zeros_like(f)
        finite = np.ones_like(f, dtype=bool)
    f = np.where(finite, f, np.nanmax(np.where(finite, f, -np.inf)))
    if bounded_below:
        fmin = float(f.min()) if min_value is None else min(float(min_value), float(f.min()))
        g = f - fmin
        gmax = max(float(g.max()), 1e-12)
        c = max(float(np.percentile(g, 0.5)), gmax * 1e-7, 1e-12)
        z = np.log10(g + c)
        kind = "log"
    else:
        lo, hi = float(f.min()), float(f.max())
        f0 = 0.0 if lo < 0.0 < hi else float(np.median(f))
        d = f - f0
        lt = max(0.02 * float(np.abs(d).max()), 1e-12)
        z = np.sign(d) * np.log10(1.0 + np.abs(d) / lt)
        kind = "symlog"
    levels = np.linspace(float(z.min()), float(z.max()), n_levels)
    if levels[-1] <= levels[0]:
        levels = np.array([levels[0] - 1.0, levels[0] + 1.0])
    return Background(x, y, z, levels, np.asarray(bounds, dtype=float), kind)


@dataclass(frozen=True)
class LossAxis:
    """How a loss is plotted: ``value - offset`` on ``scale`` ("log", "symlog", "linear")."""

    offset: float
    scale: str
    label: str
    linthresh: float = 1.0
    floor: float = 0.0

    def transform(self, loss: np.ndarray) -> np.ndarray:
        """The plotted value: the gap to ``offset``, floored above zero on a log axis."""
        v = np.asarray(loss, dtype=float) - self.offset
        if self.scale == "log":
            v = np.where(np.isfinite(v), np.maximum(v, self.floor), v)
        return v

    def apply(self, ax) -> None:
        """Set the y scale and label of a matplotlib axes."""
        if self.scale == "symlog":
            set_scale(ax, "y", "symlog", linthresh=self.linthresh)
        else:
            set_scale(ax, "y", self.scale)
        ax.set_ylabel(self.label)


def loss_axis(
    losses: np.ndarray,
    *,
    min_value: float | None = None,
    bounded_below: bool = True,
    name: str = "loss",
) -> LossAxis:
    """Pick the y axis for ``losses``: log of the gap to a known minimum, log of the loss
    when it stays positive, else symmetric log (saddles, losses unbounded below)."""
    v = np.asarray(losses, dtype=float)
    v = v[np.isfinite(v)]
    if bounded_below and min_value is not None and np.isfinite(min_value):
        gap = v - min_value
        pos = gap[gap > 0]
        floor = max(float(pos.min()) * 0.5, 1e-12) if pos.size else 1e-12
        label = name if min_value == 0 else f"{name} − f*"
        return LossAxis(float(min_value), "log", label, floor=floor)
    if v.size and (v > 0).all():
        return LossAxis(0.0, "log", name, floor=float(v.min()) * 0.5)
    big = float(np.abs(v).max()) if v.size else 1.0
    lt = max(1e-3 * big, 1e-12)
    return LossAxis(0.0, "symlog", name, linthresh=lt)


def escape_floor(curves: list[np.ndarray]) -> float | None:
    """The lowest loss worth showing of ``curves`` on a surface unbounded below: the lowest
    of the curves' minima within ten times the median minimum, so that a few runs that leave
    for -1e11 in one step (escaped past the box) do not squash every other curve flat; None
    when no curve reaches beyond that (nothing to clip)."""
    mins = np.array([float(np.nanmin(c)) for c in curves if np.isfinite(c).any()])
    if mins.size < 2:
        return None
    ref = float(np.median(mins))
    cutoff = 10.0 * ref if ref < -1.0 else -10.0 * max(abs(ref), 1.0)
    keep = mins >= cutoff
    if keep.all() or not keep.any():
        return None
    return float(mins[keep].min())
