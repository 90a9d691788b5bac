"""The results schema: dtypes survive files and resume, meta keys are read one way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import optbench
from optbench.results import schema

# Two groups reach the tolerance in some runs only (steps_to_tol is empty in others); the
# step task has no epochs while the dataset task has, so `epoch` is empty for some rows.
MIXED = """
name = "mixed"
steps = 400
tolerance = 1e-3
[[problem]]
surface = "booth"
[[problem]]
task = "adding"
steps = 6
params = { hidden = 8, length = 5 }
[[problem]]
task = "digits_logreg"
epochs = 2
[optimizer.adam]
learning_rate = [1e-3, 0.3]
"""


def test_a_resumed_sweep_writes_the_same_bytes_as_an_uninterrupted_one(tmp_path):
    fresh = tmp_path / "fresh"
    optbench.run(MIXED, fresh)
    runs = optbench.load(fresh).runs
    assert runs["steps_to_tol"].notna().any() and runs["steps_to_tol"].isna().any()

    def stop_at_third(event, **info):
        if event == "group" and info["index"] == 2:
            raise KeyboardInterrupt

    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        optbench.run(MIXED, resumed, progress=stop_at_third)
    optbench.run(MIXED, resumed, resume=True)
    for name in (schema.RUNS, schema.CURVES, schema.TRAJECTORIES):
        assert (resumed / name).read_bytes() == (fresh / name).read_bytes(), name
    as_text = pd.read_csv(fresh / schema.RUNS, dtype=str, keep_default_na=False)
    assert set(as_text["steps_to_tol"]) - {""} and all(
        v.isdigit() for v in as_text["steps_to_tol"] if v
    )
    epochs = pd.read_csv(fresh / schema.CURVES, dtype=str, keep_default_na=False)["epoch"]
    assert set(epochs) == {"", "1", "2"}


def test_loaded_frames_follow_the_schema(tmp_path):
    optbench.run(MIXED, tmp_path / "r")
    back = optbench.load(tmp_path / "r")
    runs = back.runs
    for col in schema.BOOLEAN:
        assert runs[col].dtype == bool, col
    for col in ("grid_index", "seed", "start", "stop_step"):
        assert runs[col].dtype == np.int64, col
    assert runs["steps_to_tol"].dtype == "Int64"
    assert back.curves["step"].dtype == np.int64
    assert list(runs.columns[:3]) == ["run_id", "problem", "surface"]
    assert schema.hyperparameter_columns(runs)[0] == "learning_rate"
    assert set(schema.hyperparameter_columns(runs)) == {
        "learning_rate",
        "b1",
        "b2",
        "eps",
        "weight_decay",
    }


def test_normalize_makes_integers_integers():
    frame = pd.DataFrame(
        {
            "steps_to_tol": [1634.0, np.nan],
            "epoch": [1.0, np.nan],
            "step": [3.0, 4.0],
            "diverged": [0, 1],
            "loss": [0.5, 0.25],
        }
    )
    out = schema.normalize(frame)
    assert out["steps_to_tol"].dtype == "Int64" and out["epoch"].dtype == "Int64"
    assert out["step"].dtype == np.int64 and out["diverged"].dtype == bool
    assert out.to_csv(index=False).splitlines() == [
        "steps_to_tol,epoch,step,diverged,loss",
        "1634,1,3,False,0.5",
        ",,4,True,0.25",
    ]
    pd.testing.assert_frame_equal(frame, frame.copy())  # the input is left as it was


def test_versions_are_read_from_flat_keys():
    meta = {"optbench": "0.1.0", "jax": "0.10.2", "numpy": "2.4", "platform": "Linux"}
    assert schema.versions(meta) == {"optbench": "0.1.0", "jax": "0.10.2", "numpy": "2.4"}
    assert schema.versions({"versions": {"jax": "0.4"}}) == {"jax": "0.4"}
