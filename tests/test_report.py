"""The HTML report, its figures and the summary table."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from optbench import results
from optbench.rendering import report
from optbench.rendering._demo import demo_surface, write_demo
from optbench.rendering.summary import tex_escape


@pytest.fixture(autouse=True)
def _stand_in_surfaces(monkeypatch):
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


def test_summary_tex_is_booktabs_and_escaped(folder, page):
    tex = (folder / "summary.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0]
    rows = [ln for ln in body.splitlines() if ln.strip().endswith(r"\\")]
    assert len(rows) == len(pd.read_csv(folder / "summary.csv"))
    assert tex_escape("a_b & 5% #1 {x}") == r"a\_b \& 5\% \#1 \{x\}"


def test_page_has_the_sections(page):
    for text in ("Summary", "rosenbrock", "saddle", "lstm", "Config", "compile_s", "jaxlib"):
        assert text in page
