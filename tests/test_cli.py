"""The command line: thin over the library; every user error is one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from optbench.cli import app

runner = CliRunner()

GOOD = """
name = "cli"
steps = 60
[[problem]]
surface = "rosenbrock"
[optimizer.adam]
learning_rate = [0.01, 0.1]
[optimizer.sgd]
learning_rate = 1e-3
"""


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_run_writes_the_results_folder(workdir):
    cfg = write(workdir / "exp.toml", GOOD)
    result = invoke("run", str(cfg), "--no-render")
    assert result.exit_code == 0, result.output + result.stderr
    out = workdir / "results" / "cli"
    for name in ("runs.csv", "curves.csv", "trajectories.csv", "config.toml", "meta.json"):
        assert (out / name).is_file()
    assert "adam" in result.output  # the summary table
    # --steps/--optimizers/--out override the config
    result = invoke(
        "run", str(cfg), "--no-render", "--steps", "7", "--optimizers", "sgd", "--out", "small"
    )
    assert result.exit_code == 0, result.stderr
    runs = (workdir / "small" / "runs.csv").read_text()
    assert ",adam," not in runs and ",sgd," in runs


def _assert_user_error(result, *words: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    err = result.stderr.strip()
    assert err.startswith("optbench: error: "), err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output + result.stderr
    for word in words:
        assert word in err, err
    return err


CASES = {
    "malformed toml": (GOOD.replace('name = "cli"', "name = "), ["exp.toml", "not valid TOML"]),
    "unknown key": (GOOD.replace("steps = 60", "stepz = 60"), ["exp.toml: stepz", "steps"]),
    "unknown optimizer": (
        GOOD.replace("[optimizer.sgd]", "[optimizer.sdg]"),
        ["optimizer.sdg", "'sgd'"],
    ),
    "duplicate label": (GOOD + '[[problem]]\nsurface = "rosenbrock"\n', ["label"]),
    "wrong type": (GOOD.replace("steps = 60", 'steps = "sixty"'), ["steps", "integer"]),
    "steps <= 0": (GOOD.replace("steps = 60", "steps = 0"), ["steps", "positive"]),
    "learning rate <= 0": (
        GOOD.replace("learning_rate = 1e-3", "learning_rate = -1e-3"),
        ["learning_rate", "> 0"],
    ),
    "start of the wrong dimension": (
        GOOD.replace('surface = "rosenbrock"', 'surface = "rosenbrock"\nstart = [1, 2, 3]'),
        ["start", "2 numbers"],
    ),
    "grid over a non-numeric value": (
        GOOD + "[optimizer.rmsprop]\ncentered = [true, false]\n",
        ["centered", "only numeric hyperparameters can be grids"],
    ),
    "unknown surface": (GOOD.replace('"rosenbrock"', '"rosenbrok"'), ["surface", "rosenbrock"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_errors_exit_2_with_one_line_and_write_nothing(workdir, case):
    text, words = CASES[case]
    cfg = write(workdir / "exp.toml", text)
    _assert_user_error(invoke("run", str(cfg), "--no-render"), *words)
    assert not (workdir / "results").exists()


def test_missing_file_and_unknown_builtin(workdir):
    _assert_user_error(invoke("run", "nope.toml"), "nope.toml", "no such file")
    _assert_user_error(invoke("run", "quickstrat"), "did you mean 'quickstart'")
    assert not (workdir / "results").exists()


def test_unsafe_formula_in_a_surface_folder(workdir):
    folder = workdir / "mine"
    folder.mkdir()
    write(
        folder / "evil.toml",
        'name = "evil"\ndescription = "x"\nreference = "x"\n'
        'formula = "__import__(\'os\').system(\'echo hi\')"\ncoords = ["x", "y"]\n'
        "plot_bounds = [[-1.0, 1.0], [-1.0, 1.0]]\nstart = [0.5, 0.5]\n",
    )
    cfg = write(workdir / "exp.toml", GOOD)
    err = _assert_user_error(invoke("run", str(cfg), "--surfaces", str(folder)), "evil.toml")
    assert "formula" in err
    assert not (workdir / "results").exists()


def test_usage_errors_are_one_line_too(workdir):
    _assert_user_error(invoke("run", "--bogus"), "--bogus")
    _assert_user_error(invoke("run", "--steps", "many"), "--steps")
    _assert_user_error(invoke("run", "--steps", "0"), "--steps", "positive")
    _assert_user_error(invoke("list", "widgets"), "widgets")


def test_existing_folder_needs_a_flag(workdir):
    cfg = write(workdir / "exp.toml", GOOD)
    assert invoke("run", str(cfg), "--no-render").exit_code == 0
    _assert_user_error(invoke("run", str(cfg), "--no-render"), "--overwrite", "--resume")
    assert invoke("run", str(cfg), "--no-render", "--resume").exit_code == 0
    assert invoke("run", str(cfg), "--no-render", "--overwrite").exit_code == 0


def test_list_shows_every_catalogue(workdir):
    result = invoke("list")
    assert result.exit_code == 0, result.stderr
    for word in ("adam", "nesterov", "rosenbrock", "quadratic_nd", "quickstart", "digits_cnn"):
        assert word in result.output
    optimizers = invoke("list", "optimizers")
    assert "learning_rate=0.001" in optimizers.output and "rosenbrock" not in optimizers.output


def test_render_without_2d_surfaces_exits_2(workdir):
    cfg = write(
        workdir / "nd.toml",
        GOOD.replace('surface = "rosenbrock"', 'surface = "quadratic_nd"').replace("cli", "nd"),
    )
    assert invoke("run", str(cfg), "--no-render").exit_code == 0
    _assert_user_error(invoke("render", "results/nd"), "report")
    _assert_user_error(invoke("render", "no_such_dir"), "no_such_dir")


def test_help_runs():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "run" in result.output and "report" in result.output
