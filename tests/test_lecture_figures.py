"""The lecture's figures and sections (gradient flow, learning-rate schedules, one task's
problems compared), read back from the figures' artists and the page."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from demo import demo_surface, write_demo
from demo_lecture import PROBLEMS, TASK_OPTIMIZERS, lecture_results, write_lecture_demo

import optbench
from optbench import results, schedules
from optbench.rendering import _style, chapters, compare, lecture, page, render_and_report, report
from optbench.results import schema

RECURRENT = ["adding_rnn", "adding_lstm", "adding_gru"]
DEEP = ["mlp_plain", "mlp_residual"]
CNNS = ["cnn", "cnn_dropout", "cnn_batchnorm"]
IDS = ["optimizers", "learning-rate-decay", "normalization-regularization", "vanishing-gradient"]


@pytest.fixture(autouse=True)
def _stand_in_surfaces(monkeypatch):
    monkeypatch.setattr(
        results.Results, "surface", lambda self, label: demo_surface(self.problem(label)["surface"])
    )


@pytest.fixture(scope="module")
def res():
    return lecture_results()


@pytest.fixture
def colors(res):
    return _style.colors(list(res.config["optimizer"]))


def _lines(ax) -> list:
    """The data lines of an axes (reference lines have no label)."""
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def _best(res, problem: str) -> str:
    """The optimizer whose selected runs have the lowest mean validation loss."""
    r = res.runs[(res.runs.problem == problem) & res.runs.selected]
    return r.groupby("optimizer")["val_loss"].mean().idxmin()


def _expected_ratios(res, problem: str, step: int) -> pd.Series:
    """The median over the best optimizer's selected runs of grad_norm / grad_norm(last),
    indexed by the positions back from the last, computed here from the frame."""
    r = res.runs[(res.runs.problem == problem) & res.runs.selected]
    ids = r.loc[r.optimizer == _best(res, problem), "run_id"]
    f = res.gradient_flow[res.gradient_flow.run_id.isin(ids) & (res.gradient_flow.step == step)]
    wide = f.pivot(index="position", columns="run_id", values="grad_norm")
    wide = wide / wide.loc[wide.index.max()]
    med = wide.median(axis=1)
    return pd.Series(med.to_numpy(), index=wide.index.max() - wide.index).sort_index()


# --------------------------------------------------------------------------- gradient flow


@pytest.mark.parametrize("when, step", [("init", 0), ("late", 300)])
def test_time_flow_one_line_per_recurrent_problem_normalised_at_the_last_step(res, when, step):
    lines = lecture.flow_lines(res, "time", when)
    assert [ln.problem for ln in lines] == RECURRENT
    for ln in lines:
        assert ln.step == step
        assert ln.optimizer == _best(res, ln.problem)
        assert ln.x.tolist() == list(range(PROBLEMS[ln.problem][1]["length"]))
        assert ln.y[ln.x == 0] == pytest.approx([1.0])
        want = _expected_ratios(res, ln.problem, step)
        np.testing.assert_allclose(ln.y, want.to_numpy(), rtol=1e-9)
    rnn, lstm, gru = (ln.y[-1] for ln in lines)
    assert rnn < lstm < gru < 1  # the tanh RNN's gradient vanishes fastest


def test_the_time_figure_has_two_log_panels_with_a_line_per_problem(res):
    fig = lecture.gradient_flow(res, "time")
    axes = fig.axes
    assert len(axes) == 2
    assert "initialisation" in axes[0].get_title() and "step 300" in axes[1].get_title()
    for ax, when in zip(axes, ("init", "late"), strict=True):
        assert ax.get_yscale() == "log"
        drawn = _lines(ax)
        assert len(drawn) == 3
        for line, want in zip(drawn, lecture.flow_lines(res, "time", when), strict=True):
            np.testing.assert_allclose(line.get_ydata(), want.y)
            assert line.get_xdata()[0] == 0 and line.get_ydata()[0] == pytest.approx(1.0)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0].startswith("adding_rnn (tanh RNN;") and "GRU" in labels[2]


def test_only_the_selected_runs_of_the_best_optimizer_count(res):
    r = res.runs[res.runs.problem == "adding_rnn"]
    other = r[~r.selected | (r.optimizer != _best(res, "adding_rnn"))].run_id
    assert len(other) > 0
    flow = res.gradient_flow.copy()
    flow.loc[flow.run_id.isin(other) & (flow.position == 1), "grad_norm"] = 1e9
    changed = results.Results(
        res.runs, res.curves, res.trajectories, res.meta, res.config, gradient_flow=flow
    )
    before = lecture.flow_lines(res, "time", "init")[0].y
    np.testing.assert_array_equal(lecture.flow_lines(changed, "time", "init")[0].y, before)


def test_depth_flow_residual_solid_plain_dashed(res):
    lines = lecture.flow_lines(res, "depth", "init")
    assert [ln.problem for ln in lines] == DEEP
    assert [ln.residual for ln in lines] == [False, True]
    for ln in lines:
        assert ln.x.tolist() == list(range(6))
        np.testing.assert_allclose(ln.y, _expected_ratios(res, ln.problem, 0).to_numpy())
    assert lines[0].y[-1] < 0.1 < 0.5 < lines[1].y[-1]
    fig = lecture.gradient_flow(res, "depth")
    for ax in fig.axes:
        assert [ln.get_linestyle() for ln in _lines(ax)] == ["--", "-"]
    assert lecture.flow_lines(res, "time", "init")[0].problem not in DEEP


def test_flow_edge_cases_give_fewer_panels_or_none(res):
    flow = res.gradient_flow
    only_init = results.Results(
        res.runs,
        res.curves,
        res.trajectories,
        res.meta,
        res.config,
        gradient_flow=flow[flow.step == 0],
    )
    fig = lecture.gradient_flow(only_init, "time")
    assert len(fig.axes) == 1 and "initialisation" in fig.axes[0].get_title()
    zero = flow.copy()
    zero["grad_norm"] = 0.0  # nothing to normalise by
    broken = results.Results(
        res.runs, res.curves, res.trajectories, res.meta, res.config, gradient_flow=zero
    )
    assert lecture.flow_lines(broken, "time", "init") == []
    assert lecture.gradient_flow(broken, "time") is None


# --------------------------------------------------------------------------- schedules


def test_schedule_lines_equal_optbench_schedules(res, colors):
    lines = lecture.schedule_lines(res)
    assert [ln.optimizer for ln in lines] == ["adam_cosine", "sgd_step"]
    fig = lecture.lr_schedules(res, colors)
    drawn = [line for ax in fig.axes for line in _lines(ax)]
    assert len(drawn) == 2
    for ln, line in zip(lines, drawn, strict=True):
        sel = res.runs[(res.runs.problem == "cnn") & (res.runs.optimizer == ln.optimizer)]
        peak = sel.loc[sel.selected, "learning_rate"].iloc[0]
        assert ln.problem == "cnn" and ln.total_steps == 200 and ln.peak == peak
        spec = TASK_OPTIMIZERS[ln.optimizer]["schedule"]
        want = peak * np.asarray(schedules.from_config(spec, 200)(np.arange(201)))
        np.testing.assert_allclose(line.get_xdata(), np.arange(201))
        np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-6)
        assert line.get_color() == colors[ln.optimizer]
    cosine, step = lines
    assert cosine.lr[0] == 0 and cosine.lr[20] == pytest.approx(cosine.peak)  # warmup 20
    assert step.lr[59] == step.peak and step.lr[60] == pytest.approx(step.peak / 2)
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "cosine, warmup 20" in legend and "step, every 60, factor 0.5" in legend


def test_the_schedule_is_read_from_runs_csv_without_the_config_table(res):
    config = {**res.config, "optimizer": {k: dict(v) for k, v in res.config["optimizer"].items()}}
    for table in config["optimizer"].values():
        table.pop("schedule", None)
    bare = results.Results(res.runs, res.curves, res.trajectories, res.meta, config)
    want = [(ln.optimizer, ln.lr.tolist()) for ln in lecture.schedule_lines(res)]
    assert [(ln.optimizer, ln.lr.tolist()) for ln in lecture.schedule_lines(bare)] == want


# --------------------------------------------------------------------------- one task's problems


def test_task_groups_and_what_differs(res):
    groups = compare.task_groups(res)
    assert groups == {"digits_cnn": CNNS, "adding": RECURRENT, "digits_mlp": DEEP}
    assert set(compare.varied(res, CNNS)) == {"dropout", "batchnorm"}
    # forget_bias / update_bias are set only for the cell that has that gate: not varied
    assert compare.varied(res, RECURRENT) == ["cell"]
    assert compare.varied(res, DEEP) == ["residual"]


def test_only_regularisation_problems_are_compared_under_regularisation(res):
    reg, other = compare.split_groups(res)
    assert reg == {"digits_cnn": CNNS}
    assert other == {"adding": RECURRENT, "digits_mlp": DEEP}


def test_decay_problems_are_those_of_the_schedules_no_comparison_claims(res):
    assert chapters.decay_problems(res) == []  # every scheduled task is compared elsewhere
    alone = ("cnn", "adding_rnn")
    assert chapters.decay_problems(lecture_results(problems=alone)) == ["cnn"]  # rnn: flow
    assert chapters.decay_problems(lecture_results(problems=alone, flow=False)) == list(alone)
    assert chapters.decay_problems(lecture_results(problems=alone, schedules=False)) == []


def test_the_decay_section_shows_the_scheduled_problems(tmp_path, quick_problems):
    kw = {"problems": ("cnn", "cnn_dropout", "adding_rnn"), "flow": False}
    text = report(write_lecture_demo(tmp_path / "decay", **kw)).read_text()
    decay, end = text.index('id="learning-rate-decay"'), text.index('id="tasks"')
    assert decay < text.index("<h2>adding_rnn</h2>") < end  # beside lr(t), not under tasks
    assert text.index('id="tasks"') < text.index("<h2>cnn</h2>")  # compared: a task


def test_comparison_train_solid_validation_dashed_one_colour_per_problem(res):
    fig = compare.comparison(res, "digits_cnn", CNNS)
    (ax,) = fig.axes
    drawn = ax.get_lines()
    assert len(drawn) == 2 * len(CNNS)
    assert ax.get_xlabel() == "epoch" and ax.get_yscale() == "log"
    for i, problem in enumerate(CNNS):
        train, val = drawn[2 * i], drawn[2 * i + 1]
        assert (train.get_linestyle(), val.get_linestyle()) == ("-", "--")
        assert train.get_color() == val.get_color()
        r = res.runs[(res.runs.problem == problem) & res.runs.selected]
        ids = r.loc[r.optimizer == _best(res, problem), "run_id"]
        c = res.curves[res.curves.run_id.isin(ids)]
        np.testing.assert_allclose(train.get_ydata(), c.groupby("epoch").train_loss.median())
        np.testing.assert_allclose(val.get_ydata(), c.groupby("epoch").val_loss.median())
    assert len({drawn[2 * i].get_color() for i in range(len(CNNS))}) == len(CNNS)


def test_comparison_table_medians_and_gap(res):
    table = compare.comparison_table(res, CNNS).set_index("problem")
    assert list(table.index) == CNNS
    for problem in CNNS:
        r = res.runs[(res.runs.problem == problem) & res.runs.selected]
        r = r[r.optimizer == _best(res, problem)]
        row = table.loc[problem]
        assert row.optimizer == _best(res, problem) and row.seeds == 2
        assert row.train_loss == pytest.approx(r.final_train_loss.median())
        assert row.val_loss == pytest.approx(r.val_loss.median())
        assert row.gap == pytest.approx(r.val_loss.median() - r.final_train_loss.median())
        assert row.test_accuracy == pytest.approx(r.test_accuracy.median())
    assert table.loc["cnn_dropout", "gap"] < table.loc["cnn", "gap"]  # the regularised one


# --------------------------------------------------------------------------- the page


def _order(page: str) -> list[str]:
    found = {i: page.find(f'id="{i}"') for i in [*IDS, "tasks"]}
    return [i for i, at in sorted(found.items(), key=lambda kv: kv[1]) if at >= 0]


@pytest.fixture
def quick_problems(monkeypatch):
    """Each problem's own section reduced to its heading (its figures are tested elsewhere)."""
    monkeypatch.setattr(page, "_problem", lambda res, problem, *a, **k: f"<h2>{problem}</h2>")


def test_the_report_follows_the_lecture(tmp_path, quick_problems):
    folder = write_lecture_demo(tmp_path / "lecture")
    text = report(folder).read_text()
    assert _order(text) == [*IDS, "tasks"]
    at = {i: text.index(f'id="{i}"') for i in [*IDS, "tasks"]}
    assert at["optimizers"] < text.index("<h2>rosenbrock</h2>") < at["learning-rate-decay"]
    assert at["tasks"] < text.index("<h2>cnn</h2>") < text.index("<h2>mlp_residual</h2>")
    for name in ("lr-schedules", "compare-digits_cnn", "gradient-time", "gradient-depth"):
        assert f"figures/lecture-{name}.png" in text
    for ref in re.findall(r'(?:src|href)="([^"#][^"]*)"', text):
        assert (folder / ref).is_file(), ref
    for anchor in IDS:
        assert f'href="#{anchor}"' in text  # the line of contents
    section = text[at["vanishing-gradient"] : at["tasks"]]
    assert "1 − u" in section and "tanh RNN" in section
    tables = text[at["normalization-regularization"] : at["vanishing-gradient"]]
    assert tables.count("<tr>") == 1 + len(CNNS)  # only the regularised task, 1 header
    assert "compare-adding" not in tables and "compare-digits_mlp" not in tables
    cells = text[at["vanishing-gradient"] : at["tasks"]]
    assert cells.count("<tr>") == 2 + len(RECURRENT) + len(DEEP)  # the architectures
    assert "figures/lecture-compare-adding.png" in cells


def test_render_and_report_draws_the_lecture_sections_too(tmp_path):
    res = lecture_results(problems=("cnn", "cnn_dropout", "adding_rnn"))
    res.trajectories = schema.empty_trajectories()  # no GIF to draw
    folder = res.save(tmp_path / "par")
    paths = render_and_report(folder, workers=1)
    page = paths[-1].read_text()
    assert _order(page) == [*IDS, "tasks"]
    assert page.index('id="tasks"') < page.index("<h2>adding_rnn</h2>")


def test_absent_data_gives_no_section_and_no_error(tmp_path, colors, quick_problems):
    res = lecture_results(problems=("cnn", "adding_lstm"), schedules=False, flow=False)
    assert lecture.gradient_flow(res, "time") is None
    assert lecture.gradient_flow(res, "depth") is None
    assert lecture.lr_schedules(res, colors) is None and compare.task_groups(res) == {}
    assert chapters.sections(res, tmp_path, colors) == {}
    text = report(res.save(tmp_path / "bare")).read_text()
    assert _order(text) == [] and "lecture's order" not in text
    order = [text.index(f"<h2>{p}</h2>") for p in ("rosenbrock", "cnn", "adding_lstm")]
    assert order == sorted(order)  # the problems as today: config order
    plain = optbench.load(write_demo(tmp_path / "demo", steps=60))  # every older folder
    assert chapters.sections(plain, tmp_path, colors) == {}


def test_only_what_applies_is_shown(tmp_path, colors):
    res = lecture_results(problems=("cnn", "adding_lstm"), schedules=True, flow=True)
    assert list(chapters.sections(res, tmp_path, colors)) == ["schedules", "vanishing"]
    res = lecture_results(problems=("cnn", "cnn_dropout"), schedules=False, flow=True)
    assert list(chapters.sections(res, tmp_path, colors)) == ["regularization"]
