"""The summary table: one row per (problem, optimizer), as CSV and as booktabs LaTeX."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from optbench.rendering import _inputs
from optbench.rendering._style import fmt


def summary(res: Any) -> pd.DataFrame:
    """Per (problem, optimizer): the selected learning rate, final and best loss (median,
    interquartile range over seeds and starts of the selected point), median steps to
    tolerance, diverged and escaped fractions over the selected runs, and grid size."""
    rows = []
    r = res.runs
    for problem in _inputs.problems(res):
        pr = r[r["problem"].astype(str) == problem]
        for opt in _inputs.optimizers(res):
            g = pr[pr["optimizer"].astype(str) == opt]
            if g.empty:
                continue
            sel = g[g["selected"].astype(bool)]
            fin = sel["final_loss"].astype(float).to_numpy()
            best = sel["best_loss"].astype(float).to_numpy()
            tol = sel["steps_to_tol"].astype(float)
            row = {
                "problem": problem,
                "optimizer": opt,
                "algorithm": str(g["algorithm"].iloc[0]) if "algorithm" in g else opt,
                "learning_rate": float(sel["learning_rate"].iloc[0]) if len(sel) else np.nan,
                "final_loss_median": _q(fin, 0.5),
                "final_loss_q25": _q(fin, 0.25),
                "final_loss_q75": _q(fin, 0.75),
                "best_loss_median": _q(best, 0.5),
                "steps_to_tol_median": float(tol.median()) if tol.notna().any() else np.nan,
                "reached_fraction": float(tol.notna().mean()) if len(sel) else np.nan,
                "diverged_fraction": float(sel["diverged"].astype(bool).mean()),
                "escaped_fraction": float(sel["escaped"].astype(bool).mean()),
                "runs": len(sel),
                "grid_size": int(g["grid_index"].nunique()),
            }
            if "val_loss" in g.columns and _inputs.is_task(g).any():
                row["val_loss_median"] = _q(sel["val_loss"].astype(float).to_numpy(), 0.5)
                row["test_accuracy_median"] = _q(sel["test_accuracy"].astype(float).to_numpy(), 0.5)
            rows.append(row)
    return pd.DataFrame(rows)


def _q(v: np.ndarray, q: float) -> float:
    v = v[~np.isnan(v)]
    return float(np.quantile(v, q)) if v.size else float("nan")


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


def _num(x: float) -> str:
    s = fmt(x)
    if s == "–":
        return "--"
    if "e" in s:
        m, e = s.split("e")
        return f"${m}\\times10^{{{int(e)}}}$"
    return s


def to_latex(table: pd.DataFrame) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``) of :func:`summary`."""
    head = (
        "Problem",
        "Optimizer",
        "lr",
        "Final loss",
        "IQR",
        "Best loss",
        "Steps to tol.",
        "Div.",
        "Esc.",
        "Grid",
    )
    lines = [
        "% optbench summary: median over seeds and starts of the selected grid point",
        r"\begin{tabular}{llrrlrrrrr}",
        r"\toprule",
        " & ".join(head) + r" \\",
        r"\midrule",
    ]
    last = None
    for _, r in table.iterrows():
        prob = tex_escape(r["problem"]) if r["problem"] != last else ""
        if last is not None and r["problem"] != last:
            lines.append(r"\addlinespace")
        last = r["problem"]
        cells = [
            prob,
            tex_escape(r["optimizer"]),
            _num(r["learning_rate"]),
            _num(r["final_loss_median"]),
            f"[{_num(r['final_loss_q25'])}, {_num(r['final_loss_q75'])}]",
            _num(r["best_loss_median"]),
            _num(r["steps_to_tol_median"]),
            f"{r['diverged_fraction']:.0%}".replace("%", r"\%"),
            f"{r['escaped_fraction']:.0%}".replace("%", r"\%"),
            str(int(r["grid_size"])),
        ]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)
