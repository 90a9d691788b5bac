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
from optbench.rendering.summary import tex_escape


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
