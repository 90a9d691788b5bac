"""Rendering where it used to crash or mix files up (issue 15, item 5), on folders the engine
really wrote: coordinates not named x and y, a loss that is not finite at the start, and
labels that are not safe file names."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import optbench
from optbench.rendering import render, render_and_report, report

UV = """
name = "uvbowl"
description = "A bowl in u and v."
reference = "test"
formula = "(u - 1)**2 + 3*(v + 0.5)**2"
coords = ["u", "v"]
plot_bounds = [[-2.0, 2.0], [-2.0, 2.0]]
start = [-1.5, 1.5]
[[minima]]
point = [1.0, -0.5]
value = 0.0
"""

LOG = """
name = "logbowl"
description = "log(x) + y^2: NaN for x < 0, where it starts."
reference = "test"
formula = "log(x) + y**2"
coords = ["x", "y"]
plot_bounds = [[-2.0, 2.0], [-2.0, 2.0]]
start = [-1.5, 1.5]
"""


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("surfaces")
    (folder / "uvbowl.toml").write_text(UV)
    (folder / "logbowl.toml").write_text(LOG)
    return folder


def _run(folder, surfaces, problems: str):
    config = f"""
steps = 40
surfaces = "{surfaces}"
{problems}
[optimizer.adam]
learning_rate = [0.01, 0.1]
[optimizer.sgd]
learning_rate = 0.01
"""
    optbench.run(config, folder)
    return folder


def _references(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_coordinates_not_named_x_and_y_render(tmp_path, surfaces):
    folder = _run(tmp_path / "uv", surfaces, '[[problem]]\nsurface = "uvbowl"')
    assert "start_u" in pd.read_csv(folder / "runs.csv").columns  # was: KeyError start_x
    paths = render(folder, frames=12, mp4=False)
    assert {p.name for p in paths} == {"uvbowl.gif", "uvbowl.png", "uvbowl.pdf"}
    page = report(folder).read_text()
    assert "uvbowl.gif" in _references(page)


def test_a_loss_not_finite_at_the_start_renders_and_reports(tmp_path, surfaces):
    folder = _run(
        tmp_path / "nan",
        surfaces,
        '[[problem]]\nsurface = "logbowl"\n[[problem]]\nsurface = "uvbowl"',
    )
    runs = pd.read_csv(folder / "runs.csv")
    log = runs[runs.problem == "logbowl"]
    assert log.diverged.all() and (log.stop_step == 0).all()
    paths = render_and_report(folder, workers=1)  # was: ValueError in the report
    assert (folder / "logbowl.gif").is_file() and paths[-1].name == "report.html"
    page = paths[-1].read_text()
    for ref in _references(page):
        assert (folder / ref).is_file(), ref
    summary = pd.read_csv(folder / "summary.csv").set_index(["problem", "optimizer"])
    assert (summary.loc["logbowl", "diverged"] == summary.loc["logbowl", "runs"]).all()
    profiles = pd.read_csv(folder / "profiles.csv")
    assert profiles[profiles.problem == "logbowl"].time_to_target.isna().all()  # never


LABELS = ["r.1", "r.2", "r/1", "r_1", "", "R_1", "x" * 300]


def test_labels_that_are_not_file_names_get_distinct_files(tmp_path, surfaces):
    problems = "\n".join(
        f'[[problem]]\nsurface = "rosenbrock"\nlabel = "{label}"\nsteps = 30' for label in LABELS
    )
    folder = _run(tmp_path / "labels", surfaces, problems)
    paths = render_and_report(folder, workers=1)
    gifs = [p for p in paths if p.suffix == ".gif"]
    assert len(gifs) == len(LABELS) == len({p.name.casefold() for p in gifs})
    assert all(p.is_file() and p.parent == folder for p in gifs)  # no "/" in a name
    assert all(len(p.name) < 100 for p in paths)
    page = paths[-1].read_text()
    refs = _references(page)
    for ref in refs:
        assert (folder / ref).is_file(), ref
    # each problem's section shows its own animation and figures, no one else's
    sections = page.split("<h2>")
    for gif in gifs:
        owners = [s for s in sections if f'src="{gif.name}"' in s]
        assert len(owners) == 1, gif.name
    losses = {r for r in refs if r.endswith("-loss.png")}
    assert len(losses) == len(LABELS)


def test_two_drawing_processes_write_what_one_writes(tmp_path, surfaces):
    """``render(workers=2)`` (what ``optbench render`` does) splits each problem into its
    animation and its stills, drawn by this process and a worker: same files, same order,
    the same bytes as drawing them all here (PDFs aside: they carry their creation date)."""
    one = _run(
        tmp_path / "one",
        surfaces,
        '[[problem]]\nsurface = "uvbowl"\n[[problem]]\nsurface = "saddle"',
    )
    two = tmp_path / "two"
    __import__("shutil").copytree(one, two)
    serial = render(one, frames=12, mp4=False, workers=1)
    shared = render(two, frames=12, mp4=False, workers=2)
    assert [p.name for p in serial] == [p.name for p in shared] == [
        "uvbowl.gif", "uvbowl.png", "uvbowl.pdf", "saddle.gif", "saddle.png", "saddle.pdf",
    ]  # fmt: skip
    for a, b in zip(serial, shared, strict=True):
        assert b.parent == two
        if a.suffix != ".pdf":
            assert a.read_bytes() == b.read_bytes(), a.name


def test_a_report_drawn_by_two_processes_is_the_one_drawn_by_one(tmp_path, surfaces):
    """``report(workers=2)`` (what ``optbench report`` does): the same page and figures."""
    one = _run(
        tmp_path / "one",
        surfaces,
        '[[problem]]\nsurface = "uvbowl"\n[[problem]]\nsurface = "saddle"',
    )
    render(one, frames=12, mp4=False, problems=["saddle"])
    two = tmp_path / "two"
    __import__("shutil").copytree(one, two)
    page = report(one, workers=1).read_text()
    assert report(two, workers=2).read_text() == page.replace(str(one), str(two))
    assert "saddle.gif" in _references(page) and "uvbowl.gif" not in _references(page)
    pngs = sorted(p.name for p in (one / "figures").glob("*.png"))
    assert pngs and pngs == sorted(p.name for p in (two / "figures").glob("*.png"))
    for name in pngs:
        assert (one / "figures" / name).read_bytes() == (two / "figures" / name).read_bytes()
