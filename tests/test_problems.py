"""The problem interface: sharing keys, picklable specs and batches, identity, a third kind."""

from __future__ import annotations

import ast
import pickle
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import optbench
from optbench import engine, problems, validate
from optbench.config import load_config
from optbench.problems.base import Batch, Columns, Outputs, Problem, ResolveContext
from optbench.results.records import records

ADAM = """
[optimizer.adam]
learning_rate = [1e-3, 1e-2]
"""


def _keys(problem_tables: str, body: str = ADAM) -> list[Hashable]:
    cfg = load_config("seeds = 2\n" + problem_tables + body)
    return [g.program_key(cfg.settings) for g in engine.groups(cfg)]


def test_surfaces_that_differ_only_in_numbers_share_a_program():
    a, b, c, d = _keys(
        """
[[problem]]
surface = "quadratic"
params = { kappa = 10.0 }
[[problem]]
surface = "quadratic"
label = "stiff"
params = { kappa = 1000.0, theta = 0.1 }
start = [2.0, -1.0]
[[problem]]
surface = "quadratic"
label = "noisy"
noise = 0.1
[[problem]]
surface = "quadratic"
label = "noisier"
noise = 0.5
"""
    )
    assert a == b  # parameter values and start points are traceable numbers
    assert c == d != a  # noise on or off changes the program, its level does not


def test_surfaces_with_other_shapes_do_not_share():
    base, two_starts, longer, other = _keys(
        """
[[problem]]
surface = "quadratic"
[[problem]]
surface = "quadratic"
label = "two"
start = [[2.0, -1.0], [1.0, 1.0]]
[[problem]]
surface = "quadratic"
label = "long"
steps = 2000
[[problem]]
surface = "booth"
"""
    )
    assert len({base, two_starts, longer, other}) == 4


def test_optimizer_structure_is_part_of_the_key():
    keys = _keys(
        '[[problem]]\nsurface = "booth"\n',
        """
[optimizer.a]
name = "adam"
learning_rate = [1e-3, 1e-2]
[optimizer.b]
name = "adam"
learning_rate = [1e-1, 3e-1, 1.0]
[optimizer.c]
name = "rmsprop"
learning_rate = [1e-3, 1e-2]
[optimizer.d]
name = "rmsprop"
learning_rate = [1e-3, 1e-2]
centered = true
""",
    )
    assert keys[0] == keys[1]  # other grid values (and sizes): one program over the stack
    assert len(set(keys[1:])) == 3


def test_tasks_that_differ_only_in_regularisation_share_a_program():
    plain, dropout, l2, augment, batchnorm, logreg = _keys(
        """
[[problem]]
task = "digits_cnn"
label = "cnn"
[[problem]]
task = "digits_cnn"
label = "dropout"
params = { dropout = 0.3 }
[[problem]]
task = "digits_cnn"
label = "l2"
params = { l2 = 1e-4 }
[[problem]]
task = "digits_cnn"
label = "augment"
params = { augment = true }
[[problem]]
task = "digits_cnn"
label = "bn"
params = { batchnorm = true }
[[problem]]
task = "digits_logreg"
"""
    )
    assert plain == dropout == l2 == augment
    assert len({plain, batchnorm, logreg}) == 3


@pytest.mark.parametrize(
    "table",
    [
        '[[problem]]\nsurface = "rosenbrock"\nstart = [[-1.0, 1.0], [1.5, 1.5]]\nnoise = 0.1',
        '[[problem]]\ntask = "adding"\nsteps = 4\nparams = { hidden = 8, length = 5 }',
    ],
)
def test_a_batch_pickles_and_runs_the_same_in_another_process_shape(table):
    cfg = load_config("seeds = 2\nsteps = 20\n" + table + ADAM)
    (group,) = engine.groups(cfg)
    b = engine.batch(group, cfg.settings)
    again = pickle.loads(pickle.dumps(b))
    assert again.problem == b.problem and hash(again.problem) == hash(b.problem)
    out, out2 = engine.execute(b), engine.execute(again)
    assert out.arrays.keys() == out2.arrays.keys()
    for k in out.arrays:
        np.testing.assert_array_equal(out.arrays[k], out2.arrays[k], err_msg=k)


def test_group_identity_follows_the_surface_file_contents(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    text = """
name = "bowl"
formula = "(x - 1)**2 + a*y**2"
coords = ["x", "y"]
plot_bounds = [[-2.0, 2.0], [-2.0, 2.0]]
start = [-1.5, 1.5]
[params]
a = 4.0
"""
    (folder / "bowl.toml").write_text(text)
    config = f'surfaces = "{folder}"\n[[problem]]\nsurface = "bowl"\n' + ADAM
    before = engine.groups(load_config(config))[0].hash
    assert engine.groups(load_config(config))[0].hash == before  # stable
    (folder / "bowl.toml").write_text(text.replace("a*y**2", "a*y**4"))
    assert engine.groups(load_config(config))[0].hash != before


# --------------------------------------------------------------------------- a third kind


@dataclass(frozen=True, eq=False)
class LineProblem(Problem):
    """A toy kind: minimise (w - target)^2 in closed form, one loss per step."""

    kind: ClassVar[str] = "line"
    keys: ClassVar[tuple[str, ...]] = ("steps",)

    label: str
    params: Mapping[str, Any]
    steps: int

    @classmethod
    def resolve(cls, raw: Mapping[str, Any], context: ResolveContext) -> LineProblem:
        validate.keys(raw.get("params", {}), ["target"], prefix="params.")
        target = validate.number(raw.get("params", {}).get("target", 1.0), "params.target")
        steps = validate.integer(raw.get("steps", context.steps), "steps", minimum=1)
        return cls(raw.get("label", raw["line"]), {"target": target}, steps)

    @property
    def name(self) -> str:
        return "line"

    @property
    def n_starts(self) -> int:
        return 1

    def optimizer_steps(self) -> int:
        return self.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "line": "line",
            "steps": self.steps,
            "params": dict(self.params),
        }

    def identity(self) -> dict[str, Any]:
        return self.to_dict()

    def program_key(self, optimizer, settings) -> Hashable:
        return (self.kind, self.steps)

    def run(self, batch: Batch, on_progress=None) -> Outputs:
        lr = batch.hyperparameters.get("learning_rate", batch.optimizer.grid["learning_rate"][0])
        lr = np.broadcast_to(np.asarray(lr, np.float64), (batch.size,))
        gap = 1.0 - 2.0 * lr  # gradient descent on (w - t)^2 from w = 0 contracts the gap
        k = np.arange(self.steps + 1)
        losses = (self.params["target"] * gap[:, None] ** k[None, :]) ** 2
        return Outputs({"losses": losses}, 0.0, 0.0)

    def rows(self, batch: Batch, outputs: Outputs, run_ids: np.ndarray) -> Columns:
        losses = outputs.arrays["losses"]
        runs = pd.DataFrame(
            {
                "final_loss": losses[:, -1],
                "best_loss": losses.min(axis=1),
                "steps_to_tol": pd.array([pd.NA] * batch.size, dtype="Int64"),
                "diverged": ~np.isfinite(losses[:, -1]),
                "escaped": False,
                "stop_step": self.steps,
            }
        )
        stop = np.full(batch.size, self.steps)
        curves = records(run_ids, np.arange(self.steps + 1), stop, {"loss": losses})
        return Columns(runs, curves, pd.DataFrame(columns=["run_id", "step", "x", "y"]))


def test_a_third_kind_of_problem_needs_no_change_elsewhere(monkeypatch, tmp_path):
    known = problems.kinds()
    monkeypatch.setattr(problems, "kinds", lambda: {**known, "line": LineProblem})
    res = optbench.run(
        """
steps = 5
[[problem]]
line = "line"
params = { target = 2.0 }
[[problem]]
surface = "booth"
[optimizer.sgd]
learning_rate = [0.1, 0.25]
""",
        tmp_path / "out",
    )
    line = res.runs[res.runs.problem == "line"].set_index("learning_rate")
    assert line.loc[0.25, "final_loss"] == pytest.approx(4.0 * 0.5**10)
    assert bool(line.loc[0.25, "selected"]) and not bool(line.loc[0.1, "selected"])
    assert set(res.runs.problem) == {"line", "booth"}
    back = optbench.load(tmp_path / "out")
    assert len(back.curves[back.curves.run_id.str.startswith("line:")]) == 2 * 6
    with pytest.raises(optbench.ConfigError) as err:
        load_config('[[problem]]\nline = "x"\nsurface = "booth"\n' + ADAM)
    assert "exactly one of" in str(err.value)


# --------------------------------------------------------------------------- layout


def _imports(path: Path) -> set[str]:
    """optbench modules imported by ``path`` (at any depth, outside TYPE_CHECKING blocks)."""
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optbench"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("optbench"))
    return found


def test_no_import_cycles_and_nothing_imports_the_cli():
    root = Path(optbench.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    # A module importing from its own package (``from optbench.rendering import _style``
    # inside optbench.rendering.scene) is not a cycle: the package is already importing.
    graph = {
        m: {i for i in _imports(p) if i in modules and not m.startswith(i)}
        for m, p in modules.items()
    }
    importers_of_cli = sorted(m for m, deps in graph.items() if "optbench.cli" in deps)
    assert importers_of_cli == ["optbench.__main__"]

    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, d]))
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_no_module_is_over_400_lines():
    root = Path(optbench.__file__).parent
    long = {
        str(p.relative_to(root)): n
        for p in root.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long
