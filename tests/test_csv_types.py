"""CSV types: an integer problem parameter stays an integer where another problem lacks it."""

from __future__ import annotations

import pandas as pd

import optbench
from optbench.results import schema

MIXED = """
steps = 20
[[problem]]
surface = "quadratic"
params = { kappa = 20.0 }
[[problem]]
task = "adding"
steps = 4
params = { hidden = 8, length = 5 }
[optimizer.adam]
learning_rate = 0.01
"""


def test_integer_parameters_stay_integers_in_runs_csv(tmp_path):
    res = optbench.run(MIXED, tmp_path / "r")
    assert res.runs["param_length"].dtype == "Int64"  # in memory too
    text = pd.read_csv(tmp_path / "r" / schema.RUNS, dtype=str, keep_default_na=False)
    assert set(text["param_length"]) == {"", "5"} and set(text["param_hidden"]) == {"", "8"}
    assert set(text["param_kappa"]) == {"20.0", ""}  # a float parameter stays a float
    back = optbench.load(tmp_path / "r")
    assert back.runs["param_length"].dtype == "Int64"
    assert back.runs["param_kappa"].dtype == float
    assert set(schema.integer_params(back.config)) == {"param_hidden", "param_length"}
