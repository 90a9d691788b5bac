"""The report's ranking across problems: time-to-target, the performance profile and the
scores (:mod:`optbench.results.scoring`), recomputed from the results folder and written
to ``profiles.csv`` and ``scores.csv`` beside the page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench.rendering import _inputs, figures
from optbench.rendering._save import save_png_pdf
from optbench.rendering.tables import sig
from optbench.results import schema, scoring, write_scoring


def _time(t: float) -> str:
    return "never" if not np.isfinite(t) else sig(t) if t != int(t) else f"{int(t):,}"


def grid_sizes(runs: pd.DataFrame) -> dict[str, int]:
    """Each optimizer's largest grid (number of grid points) over the problems."""
    if runs.empty:
        return {}
    sizes = runs.groupby(["optimizer", "problem"])["grid_index"].nunique()
    return {str(k): int(v) for k, v in sizes.groupby(level=0).max().items()}


def section(res: Any, folder: Path, colors: dict[str, str]) -> str:
    """The HTML of the ranking (``""`` when no problem has a target), writing
    ``profiles.csv``, ``scores.csv`` and, for two or more problems, ``figures/profile``."""
    prof, scores = write_scoring(folder, res)
    problems = _inputs.problems(res)
    scored = list(dict.fromkeys(prof["problem"].astype(str)))
    unscored = [p for p in problems if p not in scored]
    if not scored:
        return (
            "<h2>Time to target</h2><p class='sub'>No problem has a target: set "
            '<code>target = { metric = "val_loss", value = ... }</code> on a task (surfaces '
            "use their tolerance or escape) to rank the optimizers.</p>"
        )
    r_max = scoring.max_ratio(res.config or {})
    parts = ["<h2>Time to target</h2>"]
    words = (
        "Time = the first step at which a run meets its problem's target, plus one (surfaces "
        "bounded below: within the tolerance of the minimum; unbounded: escaping; tasks: "
        "their validation target). Per optimizer and problem: each seed's best grid point, "
        "then the median over seeds (infinite when half or more never get there); "
        "r = time / the fastest optimizer's."
    )
    if len(scored) >= 2:
        fig = figures.profile(prof, scores, colors, r_max)
        save_png_pdf(fig, folder / "figures" / "profile", dpi=150)
        parts.append(
            '<figure><img src="figures/profile.png" alt="Performance profile" loading="lazy">'
            "<figcaption>Performance profile (Dolan and Moré 2002): the fraction of problems "
            f"with r ≤ τ, τ in [1, {r_max:g}]; B is the area under it, normalised to [0, 1] "
            '(<a href="figures/profile.pdf">PDF</a>).</figcaption></figure>'
        )
        parts.append(_scores_html(scores, colors, len(scored), r_max))
    parts.append(_times_html(prof, colors))
    notes = [words]
    sizes = grid_sizes(res.runs)
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{o} {n}" for o, n in sizes.items())
        notes.append(
            f"The grids differ in size ({listed} points): the best grid point per seed "
            "credits larger grids; 'selected' is the time of the grid point chosen by the "
            "selection rule, for comparison."
        )
    if any("task" in _inputs.problem_config(res, p) for p in scored):
        notes.append(
            "A task is measured at its curve points only (every epoch for dataset tasks, "
            "every log_every steps otherwise), so its times are that coarse and ties common."
        )
    if unscored:
        notes.append(
            "Not ranked (no target): " + ", ".join(unscored) + ". Set target = { metric = "
            '"val_loss", value = ... } on a task to rank it.'
        )
    parts.append(
        "".join(f"<p class='sub'>{html.escape(n)}</p>" for n in notes)
        + f"<p class='sub'>Downloads: <a href=\"{schema.PROFILES}\">{schema.PROFILES}</a> · "
        f'<a href="{schema.SCORES}">{schema.SCORES}</a></p>'
    )
    return "\n".join(parts)


def _swatch(colors: dict[str, str], opt: str) -> str:
    return f'<span class="sw" style="background:{colors.get(opt, "#888")}"></span>'


def _scores_html(scores: pd.DataFrame, colors: dict[str, str], n: int, r_max: float) -> str:
    rows = scores.sort_values("score", ascending=False, kind="stable")
    out = [
        '<div class="scroll"><table><thead><tr><th class="l">optimizer</th>'
        f"<th>score B (r<sub>max</sub> = {r_max:g})</th><th>solved</th></tr></thead><tbody>"
    ]
    for _, r in rows.iterrows():
        opt = str(r["optimizer"])
        out.append(
            f'<tr><td class="l">{_swatch(colors, opt)}{html.escape(opt)}</td>'
            f"<td>{r['score']:.3f}</td><td>{round(r['solved'] * n)}/{n}</td></tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def _times_html(prof: pd.DataFrame, colors: dict[str, str]) -> str:
    opts = list(dict.fromkeys(prof["optimizer"].astype(str)))
    out = ['<div class="scroll"><table><thead><tr><th class="l">problem</th>']
    out += [f"<th>{_swatch(colors, o)}{html.escape(o)}</th>" for o in opts]
    out.append("</tr></thead><tbody>")
    for problem, rows in prof.groupby("problem", sort=False):
        cells = [f'<td class="l">{html.escape(str(problem))}</td>']
        by = rows.set_index(rows["optimizer"].astype(str))
        for o in opts:
            if o not in by.index:
                cells.append("<td></td>")
                continue
            t, r, s = (float(by.loc[o, k]) for k in ("time_to_target", "ratio", "selected_time"))
            best = " style='font-weight:600'" if np.isfinite(r) and r == 1.0 else ""
            ratio = f"r {r:.2f}" if np.isfinite(r) else "r ∞"
            cells.append(
                f"<td{best}>{_time(t)}<br><small>{ratio} · selected {_time(s)}</small></td>"
            )
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)
