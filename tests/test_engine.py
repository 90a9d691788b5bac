"""The sweep engine: one compile per group, exact statistics, divergence, resume."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pandas as pd
import pytest
from compiles import count_compiles

import optbench
from optbench import ConfigError, compilation
from optbench.results import select


def sweep(body: str, **kw):
    return optbench.run("name = 'e'\n" + body, **kw)


ROSEN = """
steps = 300
[[problem]]
surface = "rosenbrock"
"""


@pytest.mark.parametrize("grid", [1, 16])
def test_one_compile_per_surface_problem_whatever_the_grid(grid, fresh_programs):
    """A surface problem's optimizers run as one program (``Problem.runs_together``)."""
    body = (
        "seeds = 2\n"
        + ROSEN
        + """
[[problem]]
surface = "quadratic"
[optimizer.adam]
learning_rate = { logspace = [1e-3, 1e-1], num = GRID }
[optimizer.momentum]
learning_rate = { logspace = [1e-4, 1e-2], num = GRID }
momentum = [0.5, 0.9]
""".replace("GRID", str(grid))
    )
    with count_compiles() as names:
        res = sweep(body)
    assert len(names) == 2, names
    assert len(res.runs) == 2 * 2 * (grid + 2 * grid)


TOGETHER = """
dtype = "DTYPE"
steps = 150
seeds = [3, 7]
[[problem]]
surface = "saddle"
[[problem]]
surface = "rosenbrock"
start = [[-1.2, 1.0], [0.5, 2.0]]
noise = 0.2
[[problem]]
surface = "quadratic_nd"
[optimizer.sgd]
learning_rate = [1e-3, 1e-2]
[optimizer.momentum]
learning_rate = 1e-3
momentum = [0.5, 0.9]
[optimizer.nesterov]
learning_rate = 1e-3
[optimizer.adagrad]
learning_rate = 0.1
[optimizer.adadelta]
learning_rate = 1.0
[optimizer.rmsprop]
learning_rate = [1e-3, 1e-2]
[optimizer.adam]
learning_rate = 1e-2
schedule = { kind = "cosine", warmup = 10 }
[optimizer.amsgrad]
learning_rate = 1e-2
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_run_has_the_same_bits_alone_and_in_its_problems_program(dtype, fresh_programs):
    """All of a problem's optimizers compile into one program; every run's numbers are
    those of its optimizer run alone (a program of its own), bit for bit."""
    import dataclasses

    from optbench.config import load_config

    cfg = load_config(TOGETHER.replace("DTYPE", dtype))
    together = optbench.run(cfg)
    assert len({g["program"] for g in together.meta["groups"]}) == len(cfg.problems)
    for o in cfg.optimizers:
        alone = optbench.run(dataclasses.replace(cfg, optimizers=(o,)))
        assert len({g["program"] for g in alone.meta["groups"]}) == len(cfg.problems)
        for table in ("runs", "curves", "trajectories"):
            ours = getattr(together, table)
            ours = ours[ours.run_id.str.split(":").str[1] == o.label].reset_index(drop=True)
            theirs = getattr(alone, table).reset_index(drop=True)
            assert len(theirs) > 0
            # (the sweep's runs table also has the other optimizers' hyperparameter columns)
            ours = ours[theirs.columns]
            pd.testing.assert_frame_equal(ours, theirs, check_exact=True, check_dtype=False)


def test_log_every_keeps_final_best_and_tolerance_exact():
    body = (
        "tolerance = 1e-2\n"
        + ROSEN.replace("300", "800")
        + """
[optimizer.adam]
learning_rate = [0.05, 0.3]
"""
    )
    dense = sweep("log_every = 1\n" + body)
    coarse = sweep("log_every = 37\n" + body)
    cols = ["final_loss", "best_loss", "steps_to_tol", "stop_step"]
    pd.testing.assert_frame_equal(dense.runs[cols], coarse.runs[cols])
    assert dense.runs["steps_to_tol"].notna().any()
    steps = coarse.curves.groupby("run_id")["step"].apply(list).iloc[0]
    assert steps[:3] == [0, 37, 74] and steps[-1] == 800
    # the recorded curve agrees with the dense one where both have a point
    merged = coarse.curves.merge(dense.curves, on=["run_id", "step"], suffixes=("_c", "_d"))
    np.testing.assert_array_equal(merged["loss_c"], merged["loss_d"])
    best = dense.curves.groupby("run_id")["loss"].min()
    np.testing.assert_allclose(dense.runs.set_index("run_id")["best_loss"], best[dense.runs.run_id])


def test_engine_matches_a_hand_written_loop_in_float64():
    res = sweep("""
dtype = "float64"
steps = 120
[[problem]]
surface = "rosenbrock"
start = [-1.2, 1.0]
[optimizer.momentum]
learning_rate = 1e-4
momentum = 0.9
""")
    x = np.array([-1.2, 1.0])
    b = np.zeros(2)
    path = [x.copy()]
    for _ in range(120):
        g = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
        b = 0.9 * b + g
        x = x - 1e-4 * b
        path.append(x.copy())
    traj = res.trajectories.set_index("step")
    for step in (0, 1, 2, 50, 120):
        np.testing.assert_allclose(
            traj.loc[step, ["x", "y"]].to_numpy(float), path[step], rtol=1e-12
        )
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    assert res.runs.final_loss.iloc[0] == pytest.approx(f, rel=1e-12)


def test_divergence_is_data_and_does_not_pollute_other_runs():
    body = (
        ROSEN
        + """
[optimizer.sgd]
learning_rate = LRS
"""
    )
    both = sweep(body.replace("LRS", "[1e-4, 10.0]"))
    alone = sweep(body.replace("LRS", "[1e-4]"))
    ok, bad = both.runs.iloc[0], both.runs.iloc[1]
    assert bad.diverged and not bad.escaped and bad.stop_step < 300
    assert not ok.diverged and ok.stop_step == 300
    assert ok.final_loss == alone.runs.final_loss.iloc[0]
    assert ok.selected and not bad.selected
    bad_curve = both.curves[both.curves.run_id == bad.run_id]
    assert bad_curve.step.max() <= bad.stop_step


def test_escaping_a_saddle_is_success():
    res = sweep("""
steps = 400
[[problem]]
surface = "saddle"
[optimizer.sgd]
learning_rate = 0.1
""")
    run = res.runs.iloc[0]
    assert run.escaped and not run.diverged and run.stop_step < 400
    assert pd.isna(run.steps_to_tol)
    traj = res.trajectories
    assert traj.step.max() == run.stop_step
    # Frozen where it stopped: the reported loss is the saddle's value at the last point
    # recorded, that point is outside the escape box, and the point recorded before it
    # (while the run was alive) is inside.
    end, before = traj.iloc[-1], traj.iloc[-2]
    assert run.final_loss == pytest.approx(end.x**2 - end.y**2, rel=1e-6)
    (lo_x, hi_x), (lo_y, hi_y) = optbench.surfaces.get("saddle").escape_bounds
    assert not (lo_x <= end.x <= hi_x and lo_y <= end.y <= hi_y)
    assert lo_x <= before.x <= hi_x and lo_y <= before.y <= hi_y


def test_noise_is_common_across_optimizers_and_differs_across_seeds():
    res = sweep("""
steps = 100
seeds = 2
[[problem]]
surface = "quadratic"
noise = 0.5
[optimizer.a]
name = "sgd"
learning_rate = 0.01
[optimizer.b]
name = "sgd"
learning_rate = 0.01
""")
    a = res.runs[res.runs.optimizer == "a"].final_loss.to_numpy()
    b = res.runs[res.runs.optimizer == "b"].final_loss.to_numpy()
    np.testing.assert_array_equal(a, b)
    assert a[0] != a[1]


def test_same_config_same_numbers():
    body = "seeds = 2\n" + ROSEN + "[optimizer.adam]\nlearning_rate = [0.01, 0.1]\n"
    body = body.replace("[[problem]]", "[[problem]]\nnoise = 0.3", 1)
    one, two = sweep(body), sweep(body)
    pd.testing.assert_frame_equal(one.runs, two.runs)
    pd.testing.assert_frame_equal(one.curves, two.curves)


def test_optax_optimizers_and_schedules_run():
    res = sweep(
        ROSEN
        + """
[optimizer.lion]
name = "optax:lion"
learning_rate = [1e-4, 1e-3]
[optimizer.cos]
name = "adam"
learning_rate = [0.01, 0.05]
schedule = { kind = "cosine", warmup = 10 }
"""
    )
    assert set(res.runs.algorithm) == {"optax:lion", "adam"}
    assert np.isfinite(res.runs.final_loss).all()
    assert (res.runs.groupby("optimizer").final_loss.min() < 24.2).all()


def test_selection_rule():
    runs = pd.DataFrame(
        {
            "problem": "p",
            "optimizer": "o",
            "grid_index": [0, 0, 1, 1, 2, 2],
            "learning_rate": [0.1, 0.1, 0.01, 0.01, 0.001, 0.001],
            "final_loss": [0.0, 0.0, 1.0, 1.0, 1.0, 1.0],
            "diverged": [True, False, False, False, False, False],
        }
    )
    # grid point 0 has a diverged seed: its mean is inf; 1 and 2 tie: the smaller lr wins
    assert select(runs).tolist() == [False, False, False, False, True, True]


def test_float32_and_float64():
    body = ROSEN + "[optimizer.adam]\nlearning_rate = 0.01\n"
    f32 = sweep(body)
    f64 = sweep(body.replace("steps = 300", "steps = 300\ndtype = 'float64'"))
    assert f32.runs.final_loss.iloc[0] == pytest.approx(f64.runs.final_loss.iloc[0], rel=1e-3)
    assert f32.runs.final_loss.iloc[0] != f64.runs.final_loss.iloc[0]


def test_quadratic_nd_runs_without_trajectories():
    res = sweep("""
steps = 200
[[problem]]
surface = "quadratic_nd"
[optimizer.adam]
learning_rate = 0.05
""")
    assert res.trajectories.empty
    assert res.runs.final_loss.iloc[0] < res.curves.loss.iloc[0]


# --------------------------------------------------------------------------- files


BODY = (
    ROSEN
    + """
[[problem]]
surface = "booth"
[optimizer.adam]
learning_rate = [0.01, 0.1]
[optimizer.sgd]
learning_rate = 1e-3
"""
)


def test_results_round_trip(tmp_path, fresh_programs):
    res = sweep(BODY, out=tmp_path / "r")
    for name in ("runs.csv", "curves.csv", "trajectories.csv", "config.toml", "meta.json"):
        assert (tmp_path / "r" / name).is_file()
    back = optbench.load(tmp_path / "r")
    pd.testing.assert_frame_equal(back.runs, res.runs, check_dtype=False)
    assert back.config == res.config
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    for key in (
        "optbench",
        "jax",
        "jaxlib",
        "numpy",
        "python",
        "platform",
        "device_kind",
        "config_hash",
        "date",
    ):
        assert meta[key]
    assert [(g["problem"], g["optimizer"]) for g in meta["groups"]] == [
        ("rosenbrock", "adam"),
        ("rosenbrock", "sgd"),
        ("booth", "adam"),
        ("booth", "sgd"),
    ]
    assert all(g["steps"] == 300 for g in meta["groups"])
    # each problem's two groups ran one program; its first group reports the compile
    rosen, booth = meta["groups"][:2], meta["groups"][2:]
    for pair in (rosen, booth):
        assert pair[0]["program"] == pair[1]["program"] != ""
        assert pair[0]["compile_s"] > 0 and pair[1]["compile_s"] == 0
    assert rosen[0]["program"] != booth[0]["program"]
    assert back.surface("booth").name == "booth"
    assert not list((tmp_path / "r").glob(".*.tmp"))


def test_existing_folder_needs_overwrite_or_resume(tmp_path):
    sweep(BODY, out=tmp_path / "r")
    before = (tmp_path / "r" / "runs.csv").read_bytes()
    with pytest.raises(ConfigError, match="--overwrite"):
        sweep(BODY, out=tmp_path / "r")
    assert (tmp_path / "r" / "runs.csv").read_bytes() == before
    sweep(BODY, out=tmp_path / "r", overwrite=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not an optbench results folder"):
        sweep(BODY, out=tmp_path / "other", overwrite=True)
    assert (tmp_path / "other" / "thesis.tex").read_text() == "precious"


def test_interrupt_keeps_finished_groups_and_resume_finishes(tmp_path, fresh_programs):
    out = tmp_path / "r"
    seen = []

    def interrupt(event, **info):
        if event == "group":
            seen.append(info["index"])
            if info["index"] == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optbench.run("name='e'\n" + BODY, out, progress=interrupt)
    partial = optbench.load(out)
    assert sorted(set(partial.runs.optimizer)) == ["adam", "sgd"]
    assert set(partial.runs.problem) == {"rosenbrock"}
    assert partial.meta["complete"] is False

    skipped = []
    # booth's program may have been compiled ahead before the interrupt: forget it, once the
    # thread compiling ahead is done
    while any(t.name.startswith("optbench-compile") for t in threading.enumerate()):
        time.sleep(0.05)
    compilation.clear_programs()
    with count_compiles() as names:
        full = optbench.run(
            "name='e'\n" + BODY,
            out,
            resume=True,
            progress=lambda e, **i: skipped.append(i["skipped"]) if e == "group" else None,
        )
    assert skipped == [True, True, False, False]
    assert len(names) == 1  # booth's two groups: one program
    assert full.meta["complete"] is True
    fresh = sweep(BODY)
    pd.testing.assert_frame_equal(full.runs.reset_index(drop=True), fresh.runs, check_dtype=False)


def test_finished_groups_are_checkpointed_while_the_sweep_runs(tmp_path, monkeypatch):
    from optbench import engine

    monkeypatch.setattr(engine, "CHECKPOINT_S", 0.0)  # checkpoint after every group
    out = tmp_path / "c"
    on_disk = []

    def look(event, **info):
        if event == "group":
            on_disk.append(len(list((out / ".parts").glob("*/group.json"))))

    optbench.run("name='c'\n" + BODY, out, progress=look)
    assert on_disk == [0, 1, 2, 3]  # a hard kill here would lose at most the running group
    assert not (out / ".parts").exists()  # a complete sweep keeps only its final files
