"""Shared look: one colour per optimizer, number formatting, file names.

Figures are drawn with matplotlib's object API on Agg canvases (never pyplot), so
rendering needs no display and leaves the user's matplotlib backend alone.
"""

from __future__ import annotations

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
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(label)).strip("._-")
    return s or "problem"


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
    """A tick label such as ``10⁻³`` in plain Unicode (no mathtext to parse: much faster)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else ""
    exponent = math.log10(abs(value))
    sign = "\u2212" if value < 0 else ""
    if abs(exponent - round(exponent)) > 1e-9:
        return f"{value:g}".replace("-", "\u2212")
    e = round(exponent)
    body = {0: "1", 1: "10"}.get(e, "10" + str(e).translate(_SUPERSCRIPT))
    return sign + body


def set_scale(ax: Any, which: str, scale: str, **kwargs: Any) -> None:
    """``ax.set_xscale``/``set_yscale`` with plain-Unicode power labels on log axes."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    getattr(ax, f"set_{which}scale")(scale, **kwargs)
    if scale in ("log", "symlog"):
        axis = getattr(ax, f"{which}axis")
        axis.set_major_formatter(FuncFormatter(power_label))
        axis.set_minor_formatter(NullFormatter())
