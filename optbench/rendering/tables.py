"""The summary as tables for people: HTML for the report and booktabs LaTeX for papers.

One table per problem kind (surfaces, then tasks), each with only the columns that apply
to it; a column that applies to some of its problems only (steps to tolerance on a
saddle) reads "n/a" where it does not. Numbers have three significant digits throughout,
a mean and its 95% interval the same decimal places. The learning rate of a scheduled
optimizer is its peak, and the header says so; a selected point at the edge of its grid
is marked with a double dagger.

Example:
    >>> sig(0.1664), sig(0.17), sig(123456.0), sig(-0.000012345)
    ('0.166', '0.170', '1.23e+05', '-1.23e-05')
    >>> plus_minus(0.16643, 0.16643 - 0.0123, 0.16643 + 0.0123)
    '0.166 ± 0.012'
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

EDGE = "\u2021"  # double dagger: selected at the edge of its grid
NA = "n/a"


def _digits(x: float, digits: int) -> tuple[float, int | None]:
    """``x`` rounded to ``digits`` significant digits, and its decimal places in fixed
    notation (None when it is written with an exponent)."""
    r = float(f"{x:.{digits}g}")
    if r == 0 or not 1e-3 <= abs(r) < 1e4:
        return r, None
    return r, max(digits - 1 - math.floor(math.log10(abs(r))), 0)


def sig(x: Any, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits, trailing zeros kept (``0.170``); an
    exponent outside [0.001, 10,000); ``""`` for NaN and ``inf`` for infinity."""
    if x is None or pd.isna(x):
        return ""
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    _, places = _digits(x, digits)
    return f"{x:.{digits - 1}e}" if places is None else f"{x:.{places}f}"


def plus_minus(mean: float, low: float, high: float, digits: int = 3) -> str:
    """``"mean ± half"`` of a symmetric interval, the half-width at the mean's decimal
    places (a common exponent ``(1.23 ± 0.05)e-07`` for small or large values)."""
    if pd.isna(mean):
        return ""
    if pd.isna(low) or pd.isna(high):
        return sig(mean, digits)
    half = (float(high) - float(low)) / 2
    _, places = _digits(float(mean), digits)
    if places is not None:
        return f"{mean:.{places}f} ± {half:.{places}f}"
    if mean == 0:
        return f"0 ± {sig(half, digits)}"
    e = math.floor(math.log10(abs(float(f"{mean:.{digits}g}"))))
    return f"({mean / 10**e:.{digits - 1}f} ± {half / 10**e:.{digits - 1}f})e{e:+03d}"


def fraction(count: Any, total: Any) -> str:
    """``"k/n"``."""
    return f"{int(count)}/{int(total)}"


@dataclass(frozen=True)
class Column:
    """One column of a table: header, alignment, cell text and whether it applies."""

    head: str
    align: str  # "l" or "r"
    cell: Callable[[pd.Series], str]
    applies: Callable[[pd.DataFrame], bool] = lambda t: True


def _has(col: str) -> Callable[[pd.DataFrame], bool]:
    return lambda t: col in t and t[col].notna().any()


def _stat(metric: str) -> Callable[[pd.Series], str]:
    def cell(r: pd.Series) -> str:
        if f"{metric}_mean" not in r or pd.isna(r[f"{metric}_mean"]):
            return "diverged" if r.get("runs") and r.get("runs") == r.get("diverged") else NA
        return plus_minus(r[f"{metric}_mean"], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"])

    return cell


def _or_na(col: str, text: Callable[[Any], str]) -> Callable[[pd.Series], str]:
    return lambda r: NA if col not in r or pd.isna(r[col]) else text(r[col])


def _lr(r: pd.Series) -> str:
    return sig(r["learning_rate"]) + (f" {EDGE}" if r.get("grid_edge") else "")


def _schedule(r: pd.Series) -> str:
    s = r.get("schedule")
    return "constant" if s is None or pd.isna(s) or not str(s) else str(s)


def _steps(r: pd.Series) -> str:
    """The median steps to tolerance: "n/a" without a known minimum, "never" if no run
    reached it, a whole number unless the median falls between two."""
    if pd.isna(r.get("reached_fraction")):
        return NA
    v = r.get("steps_to_tol_median")
    if v is None or pd.isna(v):
        return "never"
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def _frac(col: str) -> Callable[[pd.Series], str]:
    return _or_na(col, lambda v: f"{v:.0%}")


def columns(table: pd.DataFrame, kind: str) -> list[Column]:
    """The columns of the ``kind`` table ("surface" or "task") that apply to ``table``."""
    peak = "schedule" in table and (table["schedule"].fillna("") != "").any()
    common = [
        Column("Problem", "l", lambda r: str(r["problem"])),
        Column("Optimizer", "l", lambda r: str(r["optimizer"])),
        Column("Peak lr" if peak else "lr", "r", _lr),
        Column("Schedule", "l", _schedule, lambda t: peak),
    ]
    if kind == "surface":
        own = [
            Column("Final loss", "r", _stat("final_loss")),
            Column("Steps to tol.", "r", _steps, _has("reached_fraction")),
            Column("Reached", "r", _frac("reached_fraction"), _has("reached_fraction")),
            Column("Escaped", "r", _frac("escaped_fraction"), _has("escaped_fraction")),
        ]
    else:
        own = [
            Column("Val. loss", "r", _stat("val_loss")),
            Column("Test loss", "r", _stat("test_loss")),
            Column("Test acc.", "r", _stat("test_accuracy"), _has("test_accuracy_mean")),
        ]
    tail = [
        Column("Diverged", "r", lambda r: fraction(r["diverged"], r["runs"])),
        Column("Grid", "r", lambda r: str(int(r["grid_size"]))),
    ]
    return [c for c in (*common, *own, *tail) if c.applies(table)]


def by_kind(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``[("surface", rows), ("task", rows)]``, the kinds that ``table`` has."""
    if table.empty:
        return []
    return [
        (k, table[table["kind"] == k]) for k in ("surface", "task") if (table["kind"] == k).any()
    ]


def note(table: pd.DataFrame, selecting: list[int], reported: list[int]) -> str:
    """What the numbers are, in one paragraph (the same words under both tables)."""
    if selecting == reported:
        over = (
            "the one seed (no interval)"
            if len(reported) == 1
            else f"all {len(reported)} seeds (the same seeds selected the grid point)"
        )
    else:
        n = len(reported)
        over = (
            f"the {n} seed{'s' if n > 1 else ''} held out from selection ({_seed_list(reported)})"
        )
    words = [
        f"Mean ± 95% t-interval over {over} of each optimizer's selected grid point "
        "(lowest mean final loss; validation loss for tasks"
        + ("" if selecting == reported else f"; selected on seeds {_seed_list(selecting)}")
        + "); each (seed, start) pair is a run; diverged runs are left out of the mean and "
        "counted apart."
    ]
    if "schedule" in table and (table["schedule"].fillna("") != "").any():
        words.append("Peak lr: the learning rate a schedule scales.")
    if "grid_edge" in table and table["grid_edge"].any():
        words.append(f"{EDGE} selected at the edge of its grid: widen the grid.")
    return " ".join(words)


def _seed_list(seeds: list[int]) -> str:
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(str(s) for s in seeds)


# --------------------------------------------------------------------------- HTML


def to_html(table: pd.DataFrame, colors: dict[str, str], text: str) -> str:
    """The summary as HTML tables (one per kind), ``text`` below them."""
    out = []
    for kind, rows in by_kind(table):
        cols = columns(rows, kind)
        out.append(f"<h3>{'Surfaces' if kind == 'surface' else 'Training tasks'}</h3>")
        out.append('<div class="scroll"><table><thead><tr>')
        out += [f'<th class="{c.align}">{html.escape(c.head)}</th>' for c in cols]
        out.append("</tr></thead><tbody>")
        for _, r in rows.iterrows():
            cells = []
            for c in cols:
                value = html.escape(_html_number(c.cell(r)) if c.align == "r" else c.cell(r))
                if c.head == "Optimizer":
                    color = colors.get(str(r["optimizer"]), "#888")
                    value = f'<span class="sw" style="background:{color}"></span>{value}'
                title = ""
                if c.head.endswith("lr") and r.get("grid_edge"):
                    title = f' title="{html.escape(str(r["grid_edge_at"]))}"'
                cells.append(f'<td class="{c.align}"{title}>{value}</td>')
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table></div>")
    out.append(f"<p class='sub'>{html.escape(text)}</p>")
    return "".join(out)


_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)


def _html_number(text: str) -> str:
    """``1.23e-05`` -> ``1.23×10⁻⁵`` and a minus sign for a hyphen, for the page."""

    def power(m: re.Match) -> str:
        return "\u00d710" + str(int(m.group(1))).translate(_SUPERSCRIPT)

    text = re.sub(r"(?<=[\d)])e([+-]\d+)", power, text)
    return re.sub(r"(?<![\w])-(?=[\d(])", "\u2212", text)


# --------------------------------------------------------------------------- LaTeX

_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(s: str) -> str:
    """Escape LaTeX's special characters: ``"a_b & 5%"`` -> ``"a\\_b \\& 5\\%"``."""
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def _tex_cell(text: str) -> str:
    """A cell's text in LaTeX: numbers in math mode (minus signs, ±, exponents)."""
    t = text.replace(EDGE, "").strip()
    mark = r"$^{\ddagger}$" if EDGE in text else ""
    if t in ("", NA) or t.isdigit() or not any(c.isdigit() for c in t) or "/" in t or "%" in t:
        return tex_escape(t) + mark
    if t.startswith("(") and ")e" in t:  # (m ± h)e-07
        body, e = t[1:].split(")e")
        return f"$({_tex_math(body)})\\times10^{{{int(e)}}}$" + mark
    return f"${_tex_math(t)}$" + mark


def _tex_math(t: str) -> str:
    parts = []
    for piece in t.split(" ± "):
        if "e" in piece:
            m, e = piece.split("e")
            piece = f"{m}\\times10^{{{int(e)}}}"
        parts.append(piece)
    return r" \pm ".join(parts)


def to_latex(table: pd.DataFrame, text: str = "") -> str:
    """Booktabs tables of :func:`~optbench.rendering.summary.summary` (one ``tabular`` per
    problem kind; needs ``\\usepackage{booktabs}``), ``text`` as a note under each."""
    out = ["% optbench summary (booktabs): \\usepackage{booktabs}"]
    for kind, rows in by_kind(table):
        cols = columns(rows, kind)
        out += [
            f"% {'surfaces' if kind == 'surface' else 'training tasks'}",
            r"\begin{tabular}{" + "".join(c.align for c in cols) + "}",
            r"\toprule",
            " & ".join(tex_escape(c.head) for c in cols) + r" \\",
            r"\midrule",
        ]
        last = None
        for _, r in rows.iterrows():
            if last is not None and r["problem"] != last:
                out.append(r"\addlinespace")
            cells = [
                _tex_cell(c.cell(r)) if c.align == "r" else tex_escape(c.cell(r)) for c in cols
            ]
            if r["problem"] == last:
                cells[0] = ""
            last = r["problem"]
            out.append(" & ".join(cells) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", ""]
    if text and len(out) > 1:
        words = tex_escape(text).replace("±", r"$\pm$").replace(EDGE, r"$^{\ddagger}$")
        out += [r"\par\smallskip{\footnotesize " + words.replace("–", "--") + r"\par}", ""]
    return "\n".join(out)
