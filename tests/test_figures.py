"""Readable figures: labelled ticks on any log axis, limits from the data, a linear epoch
axis for dataset tasks (read back from the figures' axes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from demo import demo_surface, write_demo
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import optbench
from optbench import results
from optbench.rendering import _style, figures
from optbench.rendering._style import log_ticks, set_scale


@pytest.fixture(autouse=True)
def _stand_in_surfaces(monkeypatch):
    monkeypatch.setattr(
        results.Results, "surface", lambda self, label: demo_surface(self.problem(label)["surface"])
    )


def _labels_in_view(ax, which: str = "y") -> list[str]:
    FigureCanvasAgg(ax.figure).draw()
    axis = getattr(ax, f"{which}axis")
    lo, hi = sorted(getattr(ax, f"get_{which}lim")())
    return [
        t.get_text()
        for t, v in zip(axis.get_majorticklabels(), axis.get_majorticklocs(), strict=True)
        if lo <= v <= hi and t.get_text()
    ]


@pytest.mark.parametrize(
    "lo, hi", [(0.104, 0.111), (0.16, 0.17), (0.3, 0.9), (2e-5, 7e-5), (1e-9, 1e3), (0.99, 1.0)]
)
def test_a_log_axis_has_labelled_ticks_however_narrow(lo, hi):
    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1, 2], [lo, (lo * hi) ** 0.5, hi])
    set_scale(ax, "y", "log")
    labels = _labels_in_view(ax)
    assert len(labels) >= 2, (lo, hi, labels)
    assert len(labels) <= 10
    assert len(log_ticks(lo, hi)) >= 2


def test_tick_labels_read_as_numbers():
    assert _style.power_label(1e-3) == "10\u207b\u00b3"
    assert _style.power_label(2e-5) == "2\u00d710\u207b\u2075"
    assert _style.power_label(0.106) == "0.106"


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
    """The demo folder with the task's losses squeezed into [0.16, 0.17] (as the adding
    problem's plateau) and an epoch column (as a dataset task)."""
    folder = write_demo(tmp_path_factory.mktemp("narrow"), steps=60)
    curves = pd.read_csv(folder / "curves.csv")
    task = curves["train_loss"].notna()
    for col in ("train_loss", "val_loss", "test_loss"):
        v = curves.loc[task, col]
        curves.loc[task, col] = 0.16 + 0.01 * (v - v.min()) / (v.max() - v.min())
    curves["epoch"] = pd.array(np.where(task, curves["step"] // 20, np.nan), dtype="Int64")
    curves.to_csv(folder / "curves.csv", index=False)
    return optbench.load(folder)


def test_task_figures_label_their_narrow_log_axes_and_use_linear_epochs(narrow):
    colors = _style.colors(["sgd", "momentum", "adam"])
    fig = figures.loss_curves(narrow, "lstm", colors)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and len(_labels_in_view(ax)) >= 2
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == "epoch"
    fig = figures.task_curves(narrow, "lstm", colors)
    for ax in fig.axes:
        if ax.get_visible():
            assert len(_labels_in_view(ax)) >= 2, ax.get_title()
            assert ax.get_xscale() == "linear" and ax.get_xlabel() == "epoch"


def test_surface_loss_curves_keep_a_symlog_step_axis(narrow):
    fig = figures.loss_curves(narrow, "rosenbrock", _style.colors(["sgd", "momentum", "adam"]))
    assert fig.axes[0].get_xscale() == "symlog" and fig.axes[0].get_xlabel() == "step"


def test_sensitivity_limits_follow_the_data_when_nothing_diverged(narrow):
    fig = figures.sensitivity(narrow, "lstm", _style.colors(["sgd", "momentum", "adam"]))
    (ax,) = fig.axes
    r = narrow.runs[narrow.runs.problem == "lstm"]
    assert not r.diverged.any()
    lo, hi = ax.get_ylim()
    assert r.val_loss.max() <= hi <= r.val_loss.max() * 1.5  # not 3x the top value
    assert r.val_loss.min() / 1.5 <= lo <= r.val_loss.min()
    assert len(_labels_in_view(ax)) >= 2 and len(_labels_in_view(ax, "x")) >= 2


def _frame(labels, losses=None):
    from optbench.rendering.levels import background, loss_axis
    from optbench.rendering.scene import Frame, Scene, Track

    bounds = np.array([[-1.5, 1.5], [-1.5, 1.5]])
    bg = background(lambda p: p[0] ** 2 - p[1] ** 2, bounds, bounded_below=False, n=40)
    losses = losses or [np.array([1.0, -1.0, -200.0])] * len(labels)
    tracks = [
        Track(
            lab,
            _style.PALETTE[i % len(_style.PALETTE)],
            np.arange(len(v)),
            np.zeros((len(v), 2)),
            v,
            status="escaped",
        )
        for i, (lab, v) in enumerate(zip(labels, losses, strict=True))
    ]
    la = loss_axis(np.concatenate(losses), bounded_below=False)
    scene = Scene(bg, "saddle", starts=np.zeros((1, 2)), loss_axis=la)
    frame = Frame(scene, tracks)
    frame.rgb(2)
    return frame


@pytest.mark.parametrize("n", [4, 9, 14])
def test_the_animation_legend_fits_the_frame(n):
    labels = [f"optimizer_slide_{i}  lr=100 (escaped at {i})" for i in range(n)]
    frame = _frame(labels)
    box = frame.fig.legends[0].get_window_extent(frame.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= frame.fig.bbox.width and box.y0 >= 0


def test_a_few_short_labels_keep_four_columns_at_the_usual_size():
    frame = _frame(["sgd  lr=0.1", "adam  lr=1", "momentum  lr=0.1"])
    legend = frame.fig.legends[0]
    assert legend._ncols == 4  # start + three optimizers, one row
    assert {t.get_fontsize() for t in legend.get_texts()} == {9.0}


def test_a_run_far_below_the_others_does_not_set_the_animation_loss_axis():
    far = [np.array([1.0, -1.0, -200.0 - 50 * i]) for i in range(4)] + [np.array([1.0, -2e11])]
    frame = _frame([f"o{i}" for i in range(5)], far)
    assert -1e4 < frame.lax.get_ylim()[0] < -300


def test_escaped_runs_far_below_leave_the_loss_figure_through_the_bottom(tmp_path):
    res = optbench.load(write_demo(tmp_path / "d", steps=60))
    colors = _style.colors(list(res.config["optimizer"]))
    sel = res.runs[(res.runs.problem == "saddle") & res.runs.selected]
    ids = sel.loc[sel.optimizer == sel.optimizer.iloc[0], "run_id"]
    c = res.curves
    last = c[c.run_id.isin(ids)].groupby("run_id").tail(1).index
    res.curves.loc[last, "loss"] = -2e11
    fig = figures.loss_curves(res, "saddle", colors)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] > -1e6
    assert any("off the axis" in t.get_text() for t in ax.get_legend().get_texts())
    assert figures.escape_floor([np.array([1.0, -5.0]), np.array([1.0, -6.0])]) is None


def test_no_sensitivity_figure_for_one_point_grids(tmp_path):
    res = optbench.load(write_demo(tmp_path / "d", steps=60))
    colors = _style.colors(list(res.config["optimizer"]))
    assert figures.sensitivity(res, "rosenbrock", colors) is not None
    res.runs = res.runs[res.runs.grid_index == 0]
    assert figures.sensitivity(res, "rosenbrock", colors) is None


def test_no_empty_panel_when_a_task_has_no_accuracy(tmp_path):
    res = optbench.load(write_demo(tmp_path / "d", steps=60))
    tasks = res.runs.loc[res.runs.task.notna(), "problem"].astype(str).unique()
    colors = _style.colors(list(res.config["optimizer"]))
    for col in ("test_accuracy", "val_accuracy"):
        if col in res.curves:
            res.curves[col] = np.nan
    fig = figures.task_curves(res, tasks[0], colors)
    assert all(ax.get_visible() and ax.has_data() for ax in fig.axes)


def test_pdfs_embed_truetype_subsets_without_layout_tables(tmp_path):
    """The PDF's fonts are TrueType subsets holding the glyphs (what a paper needs; also for a
    figure saved outside the style it was built in), without the GSUB/GPOS tables no PDF
    reader uses (they cost half of a PDF's save); the switch is undone after the save."""
    import io
    import re
    import zlib

    import matplotlib
    from fontTools import subset
    from fontTools.ttLib import TTFont

    from optbench.rendering._save import LAYOUT_TABLES, save_png_pdf

    original = subset.Options
    with matplotlib.rc_context(_style.RC):  # built under the style, saved outside it
        fig = Figure(figsize=(4, 3))
        ax = fig.add_subplot()
        ax.plot([1, 2, 3])
        ax.set_title("Rosenbrock: adam, $\\eta = 0.1$")
    _, pdf = save_png_pdf(fig, tmp_path / "f", dpi=50)
    assert subset.Options is original
    data = pdf.read_bytes()
    assert b"/FontFile2" in data and b"/Subtype /Type3" not in data
    fonts = []
    for ref in re.findall(rb"/FontFile2 (\d+) 0 R", data):
        start = data.index(b"\n%s 0 obj" % ref)
        body = data[data.index(b"stream\n", start) + 7 :]
        fonts.append(TTFont(io.BytesIO(zlib.decompress(body[: body.index(b"endstream")]))))
    assert fonts and all("glyf" in f and f["maxp"].numGlyphs > 3 for f in fonts)
    assert not any(t in f for f in fonts for t in LAYOUT_TABLES)
