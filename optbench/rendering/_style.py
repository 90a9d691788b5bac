"""Shared look: one colour per optimizer, number formatting, file names.

Figures are drawn with matplotlib's object API on Agg canvases (never pyplot), so
rendering needs no display and leaves the user's matplotlib backend alone.
"""

from __future__ import annotations

import collections
import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

# Okabe & Ito's colour-blind-safe qualitative palette (yellow left out: unreadable on
# a pale background), then tab10's remaining hues for long optimizer lists.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#8c564b",  # brown
    "#7f7f7f",  # grey
    "#bcbd22",  # olive
    "#9467bd",  # purple
    "#17becf",  # cyan
)

RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "savefig.bbox": None,  # figures use constrained layout; a tight bbox would draw twice
    "pdf.fonttype": 42,  # embed TrueType: text stays text in papers
}


def colors(labels: Sequence[str]) -> dict[str, str]:
    """Map optimizer labels (in their config order) to colours, the same everywhere."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def ordered(values: Iterable[str]) -> list[str]:
    """Unique values in order of first appearance (labels as the config lists them)."""
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(str(v), None)
    return list(seen)


def slug(label: str) -> str:
    """A label made safe as a file name: ``"Rosenbrock (a=1)"`` -> ``"Rosenbrock_a_1"``."""
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", str(label)).strip("_-")
    return s or "problem"


_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")


def file_stems(labels: Iterable[str]) -> dict[str, str]:
    """A distinct, safe file name stem for each problem label (its GIF, stills, figures).

    A label of letters, digits, ``_`` and ``-`` (at most 80, not starting with ``-`` or
    ``_``) is its own stem; any other (dots, slashes, spaces, empty, too long) becomes its
    slug plus 8 hex digits of its hash, and so does every label whose stem would coincide
    with another's on a case-insensitive file system. Stems have no dots, so adding a
    suffix never eats part of the name.

    Example:
        >>> file_stems(["rosenbrock", "a.b", "a/b", ""])  # doctest: +NORMALIZE_WHITESPACE
        {'rosenbrock': 'rosenbrock', 'a.b': 'a_b-2e7336dc', 'a/b': 'a_b-c14cddc0',
         '': 'problem-e3b0c442'}
    """
    labels = list(dict.fromkeys(str(x) for x in labels))

    def hashed(label: str) -> str:
        return f"{slug(label)[:60]}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"

    stems = {x: x if _SAFE.fullmatch(x) else hashed(x) for x in labels}
    counts = collections.Counter(s.casefold() for s in stems.values())
    return {x: hashed(x) if counts[s.casefold()] > 1 else s for x, s in stems.items()}


def fmt(x: float, digits: int = 3) -> str:
    """A compact number: ``0.001`` -> ``"1e-03"``, ``0.25`` -> ``"0.25"``, NaN -> ``"–"``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 1, 0)}e}".replace("e-0", "e-").replace("e+0", "e+")


_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)


def power_label(value: float, _pos: int | None = None) -> str:
    """A tick label such as ``10⁻³`` or ``2×10⁻⁵`` in plain Unicode (no mathtext to parse:
    much faster); values from 0.001 to 10,000 that are not powers of ten as ``0.02``."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else ""
    exponent = math.log10(abs(value))
    sign = "\u2212" if value < 0 else ""
    if abs(exponent - round(exponent)) > 1e-9:
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:.6g}".replace("-", "\u2212")
        e = math.floor(exponent)
        mantissa = f"{abs(value) / 10**e:.3g}"
        return f"{sign}{mantissa}\u00d710" + str(e).translate(_SUPERSCRIPT)
    e = round(exponent)
    body = {0: "1", 1: "10"}.get(e, "10" + str(e).translate(_SUPERSCRIPT))
    return sign + body


def log_ticks(vmin: float, vmax: float, most: int = 8) -> list[float]:
    """Major tick positions of a log axis over ``[vmin, vmax]`` with at least two inside:
    powers of ten (thinned to at most ``most``), else multiples 1, 2, 5 of them, else 1-9,
    else evenly spaced values, so a loss that spans less than a decade still has labels.

    Example:
        >>> log_ticks(1e-6, 1.0)
        [1e-06, 1e-05, 0.0001, 0.001, 0.01, 0.1, 1.0]
        >>> log_ticks(0.03, 0.09)
        [0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09]
        >>> log_ticks(0.104, 0.111)
        [0.104, 0.106, 0.108, 0.11]
    """
    from matplotlib.ticker import MaxNLocator

    lo, hi = sorted((float(vmin), float(vmax)))
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= 0:
        return []
    lo = max(lo, hi * 1e-300)
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))

    def inside(subs: tuple[float, ...]) -> list[float]:
        ticks = (float(f"{m * 10.0**e:.12g}") for e in range(e0, e1 + 1) for m in subs)
        return [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]

    decades = inside((1.0,))
    if len(decades) >= 2:
        step = math.ceil(len(decades) / most)
        return decades[::step]
    for subs in ((1.0, 2.0, 5.0), tuple(float(m) for m in range(1, 10))):
        ticks = inside(subs)
        if len(ticks) >= 2:
            return ticks
    even = MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    return [float(f"{t:.12g}") for t in even if lo <= t <= hi and t > 0]


def _log_locator() -> Any:
    from matplotlib.ticker import Locator

    class LogTicks(Locator):
        """:func:`log_ticks` over the axis's current view."""

        def __call__(self) -> list[float]:
            return self.tick_values(*self.axis.get_view_interval())

        def tick_values(self, vmin: float, vmax: float) -> list[float]:
            """The ticks over ``[vmin, vmax]``."""
            return log_ticks(vmin, vmax)

    return LogTicks()


def set_scale(ax: Any, which: str, scale: str, **kwargs: Any) -> None:
    """``ax.set_xscale``/``set_yscale`` with plain-Unicode power labels on log axes; a log
    axis always has at least two labelled ticks (:func:`log_ticks`), however narrow."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    getattr(ax, f"set_{which}scale")(scale, **kwargs)
    if scale in ("log", "symlog"):
        axis = getattr(ax, f"{which}axis")
        if scale == "log":
            axis.set_major_locator(_log_locator())
        axis.set_major_formatter(FuncFormatter(power_label))
        axis.set_minor_formatter(NullFormatter())
