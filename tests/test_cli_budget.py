"""The command line's budget overrides (--steps, --epochs) and its edge-of-grid warning."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from optbench.cli import app

runner = CliRunner()

MIXED = """
name = "mixed"
steps = 30
[[problem]]
surface = "booth"
[[problem]]
task = "digits_logreg"
label = "logreg"
epochs = 2
[optimizer.adam]
learning_rate = [1e-4, 1e-3, 1e-2]
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    err = result.stderr.strip()
    assert err.startswith("optbench: error: ") and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err


def test_steps_and_epochs_override_their_own_problems_and_say_so(workdir):
    (workdir / "m.toml").write_text(MIXED)
    result = runner.invoke(app, ["run", "m.toml", "--no-render", "--steps", "12", "--epochs", "1"])
    assert result.exit_code == 0, result.output + result.stderr
    runs = pd.read_csv(workdir / "results" / "mixed" / "runs.csv")
    assert (runs[runs.problem == "booth"].stop_step == 12).all()
    curves = pd.read_csv(workdir / "results" / "mixed" / "curves.csv")
    assert curves.epoch.max() == 1  # logreg trained one epoch, not two
    # --steps alone on a sweep with an epoch-based problem: one line says what it did
    result = runner.invoke(app, ["run", "m.toml", "--no-render", "--steps", "12", "--out", "s"])
    assert result.exit_code == 0, result.stderr
    notes = [ln for ln in result.stderr.splitlines() if ln.startswith("optbench: note:")]
    assert len(notes) == 1 and "--steps 12" in notes[0] and "logreg" in notes[0]
    assert "--epochs" in notes[0]


def test_a_budget_that_reaches_no_problem_is_an_error(workdir):
    (workdir / "m.toml").write_text(MIXED)
    _one_line_error(
        runner.invoke(app, ["run", "m.toml", "--problems", "logreg", "--steps", "5"]),
        "--steps",
        "epochs",
        "--epochs",
    )
    _one_line_error(
        runner.invoke(app, ["run", "m.toml", "--problems", "booth", "--epochs", "5"]),
        "--epochs",
        "--steps",
    )
    _one_line_error(runner.invoke(app, ["run", "m.toml", "--epochs", "0"]), "--epochs")
    assert not (workdir / "results").exists()


def test_selection_at_the_edge_of_its_grid_is_one_warning_line(workdir):
    (workdir / "e.toml").write_text(
        'name = "edge"\nsteps = 40\n[[problem]]\nsurface = "booth"\n'
        "[optimizer.sgd]\nlearning_rate = [1e-5, 1e-4, 1e-3]\n"
    )
    result = runner.invoke(app, ["run", "e.toml", "--no-render"])
    assert result.exit_code == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("optbench: warning:")]
    assert len(warnings) == 1, result.stderr
    assert "booth x sgd (learning_rate largest of 3)" in warnings[0]
    result = runner.invoke(app, ["report", "results/edge"])
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(workdir / "results" / "edge" / "summary.csv")
    assert table.grid_edge.tolist() == [True]
    assert "\u2021" in (workdir / "results" / "edge" / "report.html").read_text()
