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
