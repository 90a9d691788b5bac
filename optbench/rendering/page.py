"""``report(dir)``: a self-contained HTML page of a results folder, with its figures
(PNG for the page, PDF for papers) and the summary table as CSV and LaTeX."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib as mpl
import pandas as pd

from optbench.rendering import _inputs, _style, chapters, figures, pool, tables
from optbench.rendering._save import save_png_pdf
from optbench.rendering.ranking import section as ranking_section
from optbench.rendering.summary import summary
from optbench.results import schema, write_csv, write_text

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #222; max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 8px;
  border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 16px; margin: 20px 0 6px; }
.sub { color: #666; margin: 0 0 16px; }
figure { margin: 12px 0; } figure img { max-width: 100%; height: auto; display: block;
  border: 1px solid #eee; } figcaption { color: #555; font-size: 13px; margin-top: 4px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; } .row figure { flex: 1 1 480px; min-width: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid #eee; white-space: nowrap; }
th { border-bottom: 2px solid #999; background: #fafafa; }
td.l, th.l { text-align: left; } .sw { display: inline-block; width: 10px; height: 10px;
  border-radius: 2px; margin-right: 6px; }
pre { background: #f6f6f6; padding: 10px 14px; overflow-x: auto; font-size: 12.5px; }
a { color: #0b62a4; }
"""


def report(dir: str | Path, *, workers: int | None = 1) -> Path:
    """Write ``DIR/report.html`` (plus ``DIR/figures/``, ``summary.csv``, ``summary.tex``).

    The page needs no network: figures are files beside it, styles are inline. Per
    problem: loss curves (median and interquartile band over seeds), the learning-rate
    sensitivity, the animation if ``render`` made one, task metrics and, for recurrent
    tasks, the gradient norm w.r.t. the first hidden state. Before them the summary tables
    and the ranking across problems (time-to-target, performance profile, scores; also
    written to ``profiles.csv`` and ``scores.csv``); after them the config and the run's
    metadata. Where the results allow, sections across problems follow the lecture
    (:mod:`optbench.rendering.chapters`): learning-rate decay (the schedules), normalization
    and regularization (the problems of one task compared), the vanishing gradient (the
    gradient flowing back through time and depth); the surface problems then come before
    them and the tasks after them. Returns the path of the page.

    ``workers``: the number of processes that draw (default 1, this process; None: one per
    core, at most two, as ``optbench report`` does: the problems' sections and the
    lecture's are jobs shared with fresh worker processes, so a script calling it needs the
    ``if __name__ == "__main__":`` guard).

    Example::

        import optbench
        optbench.report("results/quickstart")  # -> results/quickstart/report.html
    """
    folder = Path(dir)
    res = _inputs.load(folder)
    jobs = [
        (folder, "problem", p, (folder / f"{_inputs.stem(res, p)}.gif").is_file())
        for p in _inputs.problems(res)
    ]
    if workers == 1:
        sections = [problem_section(res, p, folder, gif=gif) for _, _, p, gif in jobs]
        return write_page(res, folder, sections)
    # the ranking and lecture first: the longest jobs first keep both processes busy to the end
    done = pool.run(section_job, [(folder, "ranking"), (folder, "lecture"), *jobs], workers)
    return write_page(res, folder, done[2:], ranking=done[0], lecture=done[1])


def section_job(
    folder: Path, kind: str, problem: str | None = None, gif: bool = False
) -> str | dict[str, str]:
    """A drawing job of the report (for :mod:`optbench.rendering.pool`): for ``kind`` =
    ``"problem"`` the HTML of ``problem``'s section (:func:`problem_section`; ``gif``: show
    its animation), ``"lecture"`` the lecture's sections across problems
    (:func:`optbench.rendering.chapters.sections`), ``"ranking"`` the ranking's
    (:func:`optbench.rendering.ranking.section`, which also writes the scoring files)."""
    res = _inputs.load(folder)
    colors = _style.colors(_inputs.optimizers(res))
    if kind == "lecture":
        return chapters.sections(res, folder, colors)
    if kind == "ranking":
        return ranking_section(res, folder, colors)
    if kind != "problem" or problem is None:
        raise ValueError(f"no report section {kind!r} (problem {problem!r})")
    return problem_section(res, problem, folder, gif=gif)


def problem_section(res: Any, problem: str, folder: Path, *, gif: bool) -> str:
    """The HTML of one problem (drawing and saving its figures); ``gif``: show the animation."""
    figdir = folder / "figures"
    figdir.mkdir(exist_ok=True)
    colors = _style.colors(_inputs.optimizers(res))
    with mpl.rc_context(_style.RC):
        return _problem(res, problem, figdir, colors, gif=gif)


def write_page(
    res: Any,
    folder: Path,
    sections: list[str],
    lecture: dict[str, str] | None = None,
    ranking: str | None = None,
) -> Path:
    """Write the summary files, ``profiles.csv``, ``scores.csv`` and ``report.html`` around
    the problems' ``sections`` (one per problem, in :func:`~._inputs.problems` order).

    ``lecture``: the HTML of the sections across problems
    (:func:`optbench.rendering.chapters.sections`; drawn here when None); ``ranking``: the
    ranking's (:func:`optbench.rendering.ranking.section`, which writes the scoring files;
    made here when None). When any applies,
    the page follows the lecture: the surface problems (optimizers), learning-rate decay,
    normalization and regularization, the vanishing gradient, then the tasks.
    """
    colors = _style.colors(_inputs.optimizers(res))
    if lecture is None:
        lecture = chapters.sections(res, folder, colors)
    if ranking is None:
        ranking = ranking_section(res, folder, colors)
    table = summary(res)
    note = tables.note(table, *_inputs.seeds(res))
    write_csv(folder / "summary.csv", table)
    write_text(folder / "summary.tex", tables.to_latex(table, note))
    body = [_header(res, folder)]
    body.append("<h2>Summary</h2>" + tables.to_html(table, colors, note))
    body += _warnings(res, table)
    body.append(
        '<p class="sub">Downloads: <a href="summary.csv">summary.csv</a> · '
        '<a href="summary.tex">summary.tex</a> (booktabs) · '
        f'<a href="{schema.RUNS}">{schema.RUNS}</a> · '
        f'<a href="{schema.CURVES}">{schema.CURVES}</a></p>'
    )
    (folder / "figures").mkdir(exist_ok=True)
    body.append(ranking)
    body += _in_lecture_order(res, sections, lecture)
    body.append(_config_meta(res, folder))
    title = html.escape(str((res.config or {}).get("name") or folder.name))
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>optbench: {title}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    out = folder / "report.html"
    write_text(out, page)
    return out


def _in_lecture_order(res: Any, sections: list[str], lecture: dict[str, str]) -> list[str]:
    """The problems' sections as they were when no lecture section applies; else the surface
    problems' (wrapped in ``<section id="optimizers">``), the lecture's sections in
    :data:`~.chapters.ORDER`, then the other problems' (``<section id="tasks">``), after a
    line of contents."""
    if not lecture:
        return list(sections)
    labels = _inputs.problems(res)
    if len(labels) != len(sections):  # not one per problem: the lecture's sections first
        return [lecture[k] for k in chapters.ORDER if k in lecture] + list(sections)
    runs = res.runs
    tasks = set(runs.loc[_inputs.is_task(runs), "problem"].astype(str))
    decay = set(chapters.decay_problems(res)) if "schedules" in lecture else set()
    by = dict(zip(labels, sections, strict=True))
    surfaces = [by[p] for p in labels if p not in tasks and p not in decay]
    others = [by[p] for p in labels if p in tasks and p not in decay]
    lec = {k: [lecture[k]] for k in chapters.ORDER if k in lecture}
    if decay:  # lr(t), then the problems the schedules ran on beside constant rates
        lec["schedules"].append(
            "<p class='sub'>The problems the scheduled optimizers ran on, with the "
            "constant-rate optimizers beside them: loss curves and sensitivity.</p>"
        )
        lec["schedules"] += [by[p] for p in labels if p in decay]
    groups = [("optimizers", "optimizers on loss surfaces", surfaces)] if surfaces else []
    groups += [(a, t.lower(), lec[k]) for k, (t, a) in chapters.ORDER.items() if k in lec]
    groups += [("tasks", "the tasks one by one", others)] if others else []
    links = " · ".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t, _ in groups)
    out = [f"<p class='sub'>In the lecture's order: {links}.</p>"]
    for anchor, _, parts in groups:
        if anchor in ("optimizers", "tasks"):
            out.append(f'<section id="{anchor}">\n' + "\n".join(parts) + "\n</section>")
        else:
            out += parts
    return out


def _save(fig, figdir: Path, name: str) -> str:
    save_png_pdf(fig, figdir / name, dpi=150)
    return f"figures/{name}.png"


def _img(src: str, caption: str, pdf: bool = True) -> str:
    link = f' (<a href="{src[:-4]}.pdf">PDF</a>)' if pdf else ""
    return (
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}" loading="lazy">'
        f"<figcaption>{html.escape(caption)}{link}</figcaption></figure>"
    )


def _problem(res: Any, problem: str, figdir: Path, colors, *, gif: bool) -> str:
    slug = _inputs.stem(res, problem)
    spec = _inputs.problem_config(res, problem)
    kind = f"task {spec['task']}" if "task" in spec else f"surface {spec.get('surface', '?')}"
    title = html.escape(problem) or "<i>(empty label)</i>"
    parts = [f"<h2>{title}</h2><p class='sub'>{html.escape(kind)}</p>"]
    if gif:
        parts.append(
            _img(f"{slug}.gif", "Trajectories of the selected runs (animated).", pdf=False)
        )
    row = []
    row.append(
        _img(
            _save(figures.loss_curves(res, problem, colors), figdir, f"{slug}-loss"),
            "Loss vs step of the selected runs.",
        )
    )
    fig = figures.sensitivity(res, problem, colors)
    if fig is not None:  # None: every optimizer has a one-point grid
        row.append(_img(_save(fig, figdir, f"{slug}-sensitivity"), "Learning-rate sensitivity."))
    parts.append('<div class="row">' + "".join(row) + "</div>")
    fig = figures.task_curves(res, problem, colors)
    if fig is not None:
        parts.append(_img(_save(fig, figdir, f"{slug}-metrics"), "Task metrics."))
    fig = figures.grad_norm(res, problem, colors)
    if fig is not None:
        parts.append(
            _img(
                _save(fig, figdir, f"{slug}-grad-h0"),
                "Gradient norm w.r.t. the first hidden state (vanishing gradient).",
            )
        )
    return "\n".join(parts)


def _header(res: Any, folder: Path) -> str:
    meta = res.meta or {}
    name = (res.config or {}).get("name") or folder.name
    bits = [
        f"{len(res.runs):,} runs",
        f"{res.runs['problem'].nunique()} problems",
        f"{res.runs['optimizer'].nunique()} optimizers",
    ]
    if meta.get("date"):
        bits.append(str(meta["date"]))
    sub = html.escape(" · ".join(bits))
    return f"<h1>optbench: {html.escape(str(name))}</h1><p class='sub'>{sub}</p>"


def _warnings(res: Any, table: pd.DataFrame) -> list[str]:
    """Lines above the problems: selections at the edge of their grid."""
    if table.empty or not table["grid_edge"].any():
        return []
    edges = table[table["grid_edge"]]
    items = "".join(
        f"<li>{html.escape(str(r['problem']))} × {html.escape(str(r['optimizer']))}: "
        f"{html.escape(str(r['grid_edge_at']))}</li>"
        for _, r in edges.iterrows()
    )
    return [
        f"<p class='sub'><b>{tables.EDGE} {len(edges)} selected grid point"
        f"{'s' if len(edges) > 1 else ''} at the edge of the grid</b> (the best value may lie "
        f"outside it; widen the grid):</p><ul class='sub'>{items}</ul>"
    ]


#: Row names of the machine table that differ from the meta.json key.
_LABELS = {"device_kind": "device"}
#: Machine rows shown even when meta.json lacks them (the others only when recorded).
_ALWAYS = ("platform", "device_kind")


def _config_meta(res: Any, folder: Path) -> str:
    meta = dict(res.meta or {})
    parts = ["<h2>Machine and timing</h2>"]
    info: dict[str, Any] = dict(schema.versions(meta))
    for key in schema.MACHINE_KEYS:
        if meta.get(key) not in (None, "") or key in _ALWAYS:
            info[_LABELS.get(key, key)] = meta.get(key, "")
    info["config hash"] = meta.get("config_hash", "")
    parts.append(
        "<table><tbody>"
        + "".join(
            f'<tr><th class="l">{html.escape(str(k))}</th>'
            f'<td class="l">{html.escape(str(v))}</td></tr>'
            for k, v in info.items()
        )
        + "</tbody></table>"
    )
    groups = meta.get("groups") or []
    if groups:
        parts.append("<h3>Per group</h3><div class='scroll'><table><thead><tr>")
        cols = list(schema.GROUP_KEYS)
        parts.append(
            "".join(f'<th class="{"l" if i < 2 else ""}">{c}</th>' for i, c in enumerate(cols))
            + "</tr></thead><tbody>"
        )
        for g in groups:
            parts.append(
                "<tr>"
                + "".join(
                    f'<td class="{"l" if i < 2 else ""}">{html.escape(_cell(g.get(c)))}</td>'
                    for i, c in enumerate(cols)
                )
                + "</tr>"
            )
        parts.append("</tbody></table></div>")
    parts.append("<h2>Config</h2>")
    cfg = folder / schema.CONFIG
    text = cfg.read_text() if cfg.is_file() else json.dumps(res.config, indent=2, default=str)
    parts.append(f"<pre>{html.escape(text)}</pre>")
    return "\n".join(parts)


def _cell(v: Any) -> str:
    return _style.fmt(v) if isinstance(v, float) else "" if v is None else str(v)
