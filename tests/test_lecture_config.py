"""The built-in lecture config: what runs where, and a shortened run whose report follows
the lecture (optimizers, learning-rate decay, normalization and regularization, the
vanishing gradient)."""

from __future__ import annotations

import re

import pytest

import optbench
from optbench.config import builtin_names, load_config, override
from optbench.rendering import report

#: The page's anchors in the lecture's order (rendering/page.py and rendering/chapters.py).
SECTIONS = (
    "optimizers",
    "learning-rate-decay",
    "normalization-regularization",
    "vanishing-gradient",
    "tasks",
)
#: The slide's forms, each beside its canonical optimizer on the surfaces.
SLIDE_FORMS = {
    "adagrad_slide": ("adagrad", {"sqrt": False}),
    "rmsprop_slide": ("rmsprop", {"sqrt": False}),
    "adam_slide": ("adam", {"sqrt": False, "bias_correction": False}),
}
#: One problem (or two sharing a program) per section: a shortened run of these shows
#: every section in a few tens of seconds.
SHORT_PROBLEMS = ["saddle", "quadratic_100d_noisy", "cnn", "cnn_dropout", "adding_rnn", "mlp_plain"]


@pytest.fixture(scope="module")
def cfg():
    return load_config("lecture")


def _runs_on(cfg, label):
    (problem,) = [p for p in cfg.problems if p.label == label]
    return [o.label for o in cfg.optimizers_for(problem)]


def test_lecture_is_a_builtin_config_with_a_one_line_description(cfg):
    assert "lecture" in builtin_names()
    assert cfg.name == "lecture"
    assert cfg.description and "\n" not in cfg.description


def test_the_slide_forms_run_beside_the_canonical_ones_on_the_surfaces(cfg):
    by_label = {o.label: o for o in cfg.optimizers}
    for label, (name, switches) in SLIDE_FORMS.items():
        assert by_label[label].name == name
        for key, value in switches.items():
            assert by_label[label].switches[key] == value, (label, key)
    for surface in ("saddle", "rosenbrock", "quadratic"):
        runs = _runs_on(cfg, surface)
        for label, (name, _) in SLIDE_FORMS.items():
            assert label in runs and name in runs, (surface, label)
        assert {"sgd", "momentum", "nesterov"} <= set(runs)


def test_one_adam_trains_every_network_and_a_schedule_runs_beside_a_constant_rate(cfg):
    tasks = [p for p in cfg.problems if p.kind == "task"]
    assert tasks
    for p in tasks:
        (label,) = _runs_on(cfg, p.label)
        assert next(o for o in cfg.optimizers if o.label == label).name == "adam"
    scheduled = [o for o in cfg.optimizers if o.schedule is not None]
    assert scheduled
    for o in scheduled:
        problems = [p.label for p in cfg.problems if o.label in _runs_on(cfg, p.label)]
        assert problems, o.label
        for label in problems:  # the same algorithm with a constant rate beside it
            assert any(
                other.schedule is None and other.name == o.name
                for other in cfg.optimizers
                if other.label in _runs_on(cfg, label)
            ), (o.label, label)


@pytest.mark.slow
def test_a_shortened_run_reports_the_lecture_in_order(cfg, tmp_path):
    short = override(cfg, steps=40, epochs=2, seeds=1, problems=SHORT_PROBLEMS)
    out = tmp_path / "lecture"
    optbench.run(short, out=out)
    page = report(out).read_text()

    found = {a: page.find(f'id="{a}"') for a in SECTIONS}
    assert all(i >= 0 for i in found.values()), found
    assert sorted(found, key=found.get) == list(SECTIONS), found
    contents = re.search(r"In the lecture's order: (.*?)</p>", page)
    assert contents is not None
    assert re.findall(r'href="#([^"]+)"', contents.group(1)) == list(SECTIONS)

    for name in (
        "lecture-lr-schedules",
        "lecture-compare-digits_cnn",
        "lecture-gradient-time",
        "lecture-gradient-depth",
    ):
        assert (out / "figures" / f"{name}.png").is_file(), name
        assert f"figures/{name}.png" in page, name
    # each figure sits in its own section
    assert found["learning-rate-decay"] < page.find("lecture-lr-schedules.png")
    assert page.find("lecture-lr-schedules.png") < found["normalization-regularization"]
    reg = page.find("lecture-compare-digits_cnn.png")
    assert found["normalization-regularization"] < reg < found["vanishing-gradient"]
    for name in ("lecture-gradient-time.png", "lecture-gradient-depth.png"):
        assert found["vanishing-gradient"] < page.find(name) < found["tasks"]
