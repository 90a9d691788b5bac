"""The HTML report, its figures and the summary table."""

from __future__ import annotations

import json
import re

import jax
import numpy as np
import pandas as pd
import pytest
from demo import demo_surface, write_demo

import optbench
from optbench import results
from optbench.rendering import report
from optbench.rendering.summary import mean_ci, tex_escape


@pytest.fixture(autouse=True)
def _stand_in_surfaces(request, monkeypatch):
    if "real_run" in request.fixturenames:  # a folder the engine wrote: its real surfaces
        return
    monkeypatch.setattr(
        results.Results, "surface", lambda self, label: demo_surface(self.problem(label)["surface"])
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    f = write_demo(tmp_path_factory.mktemp("rep"), steps=120)
    (f / "rosenbrock.gif").write_bytes(b"GIF89a")  # as if render had run
    return f


@pytest.fixture(scope="module")
def page(folder):
    return report(folder).read_text()


def test_every_reference_exists_and_nothing_is_remote(folder, page):
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs
    assert not re.search(r"https?://", page)
    for ref in refs:
        assert (folder / ref).is_file(), ref
    assert "rosenbrock.gif" in refs
    assert any(r.endswith("lstm-grad-h0.png") for r in refs)
    assert any(r.endswith("-sensitivity.png") for r in refs)


def test_figures_as_png_and_pdf(folder, page):
    pngs = sorted((folder / "figures").glob("*.png"))
    assert pngs
    for p in pngs:
        assert p.with_suffix(".pdf").is_file()


def test_summary_csv_rows_and_selected_lr(folder, page):
    table = pd.read_csv(folder / "summary.csv")
    runs = pd.read_csv(folder / "runs.csv")
    assert len(table) == runs.groupby(["problem", "optimizer"]).ngroups
    assert not table.duplicated(["problem", "optimizer"]).any()
    for _, row in table.iterrows():
        sel = runs[
            (runs.problem == row.problem) & (runs.optimizer == row.optimizer) & runs.selected
        ]
        assert sel.learning_rate.nunique() == 1
        assert row.learning_rate == pytest.approx(sel.learning_rate.iloc[0])
        grid = runs[(runs.problem == row.problem) & (runs.optimizer == row.optimizer)]
        assert row.grid_size == grid.grid_index.nunique()
        assert 0.0 <= row.diverged_fraction <= 1.0
    saddle = table[table.problem == "saddle"]
    assert (saddle.escaped_fraction > 0).any()


@pytest.mark.parametrize("n", [2, 3, 5, 16, 101])
def test_the_interval_is_scipys_t_interval(n):
    from scipy import stats

    values = np.random.default_rng(n).lognormal(size=n)
    got = mean_ci(np.append(values, [np.nan, np.inf]), level=0.95)
    low, high = stats.t.interval(0.95, n - 1, loc=values.mean(), scale=stats.sem(values))
    assert got["mean"] == values.mean()
    np.testing.assert_allclose([got["ci_low"], got["ci_high"]], [low, high], rtol=1e-13)


def test_summary_tex_is_booktabs_and_escaped(folder, page):
    tex = (folder / "summary.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    # one tabular per problem kind (surfaces, tasks), each with its own columns
    bodies = [t.split(r"\bottomrule")[0] for t in tex.split(r"\midrule")[1:]]
    rows = [ln for body in bodies for ln in body.splitlines() if ln.strip().endswith(r"\\")]
    assert len(rows) == len(pd.read_csv(folder / "summary.csv"))
    assert tex_escape("a_b & 5% #1 {x}") == r"a\_b \& 5\% \#1 \{x\}"


def test_page_has_the_sections(page):
    for text in ("Summary", "rosenbrock", "saddle", "lstm", "Config", "compile_s", "jaxlib"):
        assert text in page


REAL = """
name = "real"
steps = 50
seeds = 1
[[problem]]
surface = "rosenbrock"
[optimizer.sgd]
learning_rate = 1e-3
[optimizer.adam]
learning_rate = 0.05
"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A small sweep the engine really ran (2 optimizers x rosenbrock), and its report."""
    folder = tmp_path_factory.mktemp("real") / "real"
    optbench.run(REAL, out=folder)
    return folder, optbench.report(folder).read_text()


def _machine_table(page: str) -> dict[str, str]:
    rows = re.findall(r'<tr><th class="l">([^<]*)</th><td class="l">([^<]*)</td></tr>', page)
    return dict(rows)


def test_report_of_a_real_run_shows_the_package_versions(real_run):
    folder, page = real_run
    table = _machine_table(page)
    assert table["jax"] == jax.__version__
    assert table["numpy"] == np.__version__
    meta = json.loads((folder / "meta.json").read_text())
    for key in ("jaxlib", "pandas", "python", "optbench"):
        assert table[key] == str(meta[key])
    assert table["platform"] == meta["platform"]


def test_the_demo_folder_has_the_meta_keys_of_a_real_run(real_run, folder):
    real_folder, _ = real_run
    real = json.loads((real_folder / "meta.json").read_text())
    demo = json.loads((folder / "meta.json").read_text())
    assert set(demo) == set(real)
    assert "versions" not in demo
    assert {k for g in demo["groups"] for k in g} == {k for g in real["groups"] for k in g}


# --- summary.tex a paper can \input: strictly parsed, and compiled when LaTeX is there ---

_TEX_COMMANDS = {
    r"\times", r"\pm", r"\ddagger", r"\_", r"\&", r"\%", r"\#", r"\$", r"\{", r"\}",
    r"\textbackslash", r"\textasciitilde", r"\textasciicircum",
}  # fmt: skip


def _strict_cell(cell: str) -> None:
    """Balanced braces and math, only known commands, no unescaped special character."""
    body = re.sub(r"\\[A-Za-z]+|\\.", lambda m: " " if m.group() in _TEX_COMMANDS else "?", cell)
    assert "?" not in body, f"unknown command in {cell!r}"
    unescaped = re.sub(r"\\[A-Za-z]+|\\.", "", cell)
    assert unescaped.count("$") % 2 == 0, cell
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, cell
    assert depth == 0, cell
    outside_math = "".join(unescaped.split("$")[::2])
    assert not set(outside_math) & set("#%&_^~\\"), cell


def _strict_tabulars(tex: str) -> list[list[list[str]]]:
    """The rows of each tabular, every line checked against booktabs' grammar."""
    tables, rows, spec = [], None, ""
    for line in tex.splitlines():
        s = line.strip()
        if not s or s.startswith("%"):
            continue
        if m := re.fullmatch(r"\\begin\{tabular\}\{([lrc]+)\}", s):
            assert rows is None, "nested tabular"
            rows, spec, rule = [], m.group(1), 0
        elif s == r"\end{tabular}":
            assert rows is not None and rule == 3, "a tabular needs top, mid and bottom rules"
            tables.append(rows)
            rows = None
        elif rows is None:
            assert s.startswith(r"\par\smallskip{\footnotesize ") and s.endswith(r"\par}"), s
            _strict_cell(s[len(r"\par\smallskip{\footnotesize ") : -len(r"\par}")])
        elif s in (r"\toprule", r"\midrule", r"\bottomrule"):
            assert [r"\toprule", r"\midrule", r"\bottomrule"].index(s) == rule, s
            rule += 1
        elif s == r"\addlinespace":
            assert rule == 2
        else:
            assert s.endswith(r"\\") and rule in (1, 2), s
            cells = re.split(r"(?<!\\)&", s[:-2])
            assert len(cells) == len(spec), (spec, s)
            for cell in cells:
                _strict_cell(cell.strip())
            rows.append([c.strip() for c in cells])
    assert rows is None and tables
    return tables


HOSTILE = r"a_b & 5% #1 {x} ~^\ $"


@pytest.fixture(scope="module")
def hostile_tex(folder, page):
    from optbench.rendering import summary
    from optbench.rendering.summary import to_latex

    table = summary(optbench.load(folder))
    table.loc[table.problem == "lstm", "problem"] = HOSTILE
    table.loc[0, "optimizer"] = "opt_1"
    table.loc[1, "schedule"] = "cosine, warmup 10"
    return to_latex(table, "Mean ± 95% t-interval over 3–5 seeds; ‡ at the edge.")


def test_summary_tex_parses_strictly(folder, page, hostile_tex):
    tables = _strict_tabulars((folder / "summary.tex").read_text())
    assert [len(t) for t in tables] == [1 + 6, 1 + 3]  # header and rows: surfaces, the task
    heads = [t[0] for t in tables]
    assert "Final loss" in heads[0] and "Val. loss" not in heads[0]
    assert {"Val. loss", "Test loss"} <= set(heads[1]) and "Steps to tol." not in heads[1]
    assert "Escaped" not in heads[1] and "Reached" not in heads[1]
    tables = _strict_tabulars(hostile_tex)
    assert any(r"a\_b \& 5\% \#1 \{x\}" in row[0] for row in tables[1])


def test_summary_tex_compiles_with_latex(tmp_path, hostile_tex, folder, page):
    import shutil
    import subprocess

    if shutil.which("pdflatex") is None:
        pytest.skip("no pdflatex (Debian: apt-get install texlive-latex-recommended)")
    body = (folder / "summary.tex").read_text() + "\n" + hostile_tex
    doc = (
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
        "\\usepackage[utf8]{inputenc}\n\\usepackage[margin=1cm,landscape]{geometry}\n"
        f"\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )
    (tmp_path / "t.tex").write_text(doc)
    out = subprocess.run(
        ["pdflatex", "-halt-on-error", "-interaction=nonstopmode", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000
