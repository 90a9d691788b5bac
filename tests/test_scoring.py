"""Time-to-target, performance profiles and scores (DESIGN.md, "Scoring") against a
hand-computed example; honest selection with held-out seeds; the edge-of-grid flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import optbench
from optbench.config import load_config
from optbench.rendering.summary import edge, edge_warning, summary
from optbench.results import Results, schema, scoring, select

INF = np.inf


def _surface_runs(problem: str, surface: str, table: dict) -> list[dict]:
    """``table``: optimizer -> grid point -> per-seed (steps_to_tol, stop_step, flag)."""
    rows = []
    for opt, grid in table.items():
        for gi, seeds in enumerate(grid):
            for seed, (tol, stop, flag) in enumerate(seeds):
                rows.append(
                    {
                        "run_id": f"{problem}:{opt}:{gi}:{seed}:0",
                        "problem": problem,
                        "surface": surface,
                        "optimizer": opt,
                        "learning_rate": 10.0**-gi,
                        "grid_index": gi,
                        "seed": seed,
                        "start": 0,
                        "final_loss": 1.0,
                        "steps_to_tol": tol,
                        "diverged": flag == "diverged",
                        "escaped": flag == "escaped",
                        "stop_step": stop,
                    }
                )
    return rows


def example() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Four problems x three optimizers with times worked out by hand:

    - bowl: A per seed min(10, 30)=10, min(20, 5)=5, inf -> median 10; B 10 (a tie);
      C reaches the tolerance only after diverging (inf), then 100, inf -> inf.
    - saddle (escape): A 5; B never escapes (inf); C 10, 20, 30 -> 20.
    - hard: nobody gets there (inf for all).
    - task (val_loss <= 0.5, two seeds: the median of an even count): A 11 and 31 -> 21;
      B 21 and inf -> inf; C 11 and 11 -> 11.
    """
    na = None
    rows = _surface_runs(
        "bowl",
        "booth",
        {
            "A": [
                [(9, 300, ""), (19, 300, ""), (na, 300, "")],
                [(29, 300, ""), (4, 300, ""), (na, 300, "")],
            ],
            "B": [[(9, 300, ""), (9, 300, ""), (9, 300, "")]],
            "C": [[(50, 40, "diverged"), (99, 300, ""), (na, 7, "diverged")]],
        },
    )
    rows += _surface_runs(
        "saddle",
        "saddle",
        {
            "A": [[(na, 4, "escaped")] * 3],
            "B": [[(na, 300, "")] * 3],
            "C": [[(na, 9, "escaped"), (na, 19, "escaped"), (na, 29, "escaped")]],
        },
    )
    rows += _surface_runs("hard", "rastrigin", {o: [[(na, 300, "")] * 3] for o in "ABC"})
    curves = []
    for opt, firsts in {"A": [10, 30], "B": [20, None], "C": [10, 10]}.items():
        for seed, first in enumerate(firsts):
            rid = f"task:{opt}:0:{seed}:0"
            rows.append(
                {
                    "run_id": rid,
                    "problem": "task",
                    "task": "digits_mlp",
                    "optimizer": opt,
                    "learning_rate": 0.1,
                    "grid_index": 0,
                    "seed": seed,
                    "start": 0,
                    "final_loss": 1.0,
                    "steps_to_tol": na,
                    "diverged": False,
                    "escaped": False,
                    "stop_step": 40,
                    "val_loss": 0.4,
                }
            )
            for step in (0, 10, 20, 30, 40):
                reached = first is not None and step >= first
                curves.append({"run_id": rid, "step": step, "val_loss": 0.4 if reached else 0.9})
    runs = schema.normalize(pd.DataFrame(rows))
    runs["selected"] = select(runs)
    config = {
        "seeds": [0, 1, 2],
        "problem": [
            {"label": "bowl", "surface": "booth"},
            {"label": "saddle", "surface": "saddle"},
            {"label": "hard", "surface": "rastrigin"},
            {"label": "task", "task": "digits_mlp", "target": {"metric": "val_loss", "value": 0.5}},
        ],
    }
    return runs, pd.DataFrame(curves), config


def test_profiles_and_scores_match_the_hand_computed_example():
    runs, curves, config = example()
    prof = scoring.profiles(runs, curves, config).set_index(["problem", "optimizer"])
    want_t = {
        ("bowl", "A"): 10, ("bowl", "B"): 10, ("bowl", "C"): INF,
        ("saddle", "A"): 5, ("saddle", "B"): INF, ("saddle", "C"): 20,
        ("hard", "A"): INF, ("hard", "B"): INF, ("hard", "C"): INF,
        ("task", "A"): 21, ("task", "B"): INF, ("task", "C"): 11,
    }  # fmt: skip
    want_r = {
        ("bowl", "A"): 1, ("bowl", "B"): 1, ("bowl", "C"): INF,
        ("saddle", "A"): 1, ("saddle", "B"): INF, ("saddle", "C"): 4,
        ("hard", "A"): INF, ("hard", "B"): INF, ("hard", "C"): INF,
        ("task", "A"): 21 / 11, ("task", "B"): INF, ("task", "C"): 1,
    }  # fmt: skip
    for key, t in want_t.items():
        assert prof.loc[key, "time_to_target"] == t, key
        assert prof.loc[key, "ratio"] == pytest.approx(want_r[key]), key
    # the selected grid point of A on the bowl (lowest mean final loss: a tie, so the
    # smaller learning rate, grid point 1): seeds 30, 5, inf -> 30
    assert prof.loc[("bowl", "A"), "selected_time"] == 30
    scores = scoring.scores(prof.reset_index(), max_ratio=4.0).set_index("optimizer")
    assert scores.loc["A", "score"] == pytest.approx((1 + 1 + 0 + (4 - 21 / 11) / 3) / 4)
    assert scores.loc["B", "score"] == pytest.approx(1 / 4)
    assert scores.loc["C", "score"] == pytest.approx(1 / 4)  # r = 4 = r_max earns nothing
    assert scores["solved"].to_dict() == {"A": 0.75, "B": 0.25, "C": 0.5}


@pytest.mark.parametrize("r_max", [4.0, 1.5, 10.0])
def test_the_score_is_the_area_under_the_profile(r_max):
    runs, curves, config = example()
    prof = scoring.profiles(runs, curves, config)
    scores = scoring.scores(prof, max_ratio=r_max).set_index("optimizer")
    taus = np.linspace(1.0, r_max, 200_001)
    rho = scoring.rho(prof, taus)
    for opt in rho.columns:
        area = np.trapezoid(rho[opt].to_numpy(), taus) / (r_max - 1.0)
        assert scores.loc[opt, "score"] == pytest.approx(area, abs=1e-4), opt
        assert rho[opt].iloc[0] == ((prof.optimizer == opt) & (prof.ratio == 1)).sum() / 4


def test_a_task_without_target_is_not_ranked_and_csv_writes_infinity_empty(tmp_path):
    runs, curves, config = example()
    config["problem"][3].pop("target")
    prof = scoring.profiles(runs, curves, config)
    assert set(prof.problem) == {"bowl", "saddle", "hard"}
    res = Results(runs, curves, schema.empty_trajectories(), {}, config)
    res.save(tmp_path)
    text = (tmp_path / schema.PROFILES).read_text().splitlines()
    assert text[0] == "problem,optimizer,time_to_target,ratio,selected_time"
    assert "hard,A,,," in text
    back = scoring.from_csv(pd.read_csv(tmp_path / schema.PROFILES))
    pd.testing.assert_frame_equal(back, prof.reset_index(drop=True), check_dtype=False)
    assert list(pd.read_csv(tmp_path / schema.SCORES).columns) == ["optimizer", "score", "solved"]


def test_selection_uses_only_the_selection_seeds():
    # grid point 0 is best on seeds 0-1, grid point 1 on average over all four seeds
    runs = pd.DataFrame(
        {
            "problem": "p", "optimizer": "o", "seed": [0, 1, 2, 3] * 2,
            "grid_index": [0] * 4 + [1] * 4, "learning_rate": [0.1] * 4 + [1.0] * 4,
            "final_loss": [1.0, 1.0, 9.0, 9.0, 2.0, 2.0, 2.0, 2.0], "diverged": False,
        }
    )  # fmt: skip
    assert runs[select(runs)].grid_index.unique().tolist() == [1]
    assert runs[select(runs, seeds=[0, 1])].grid_index.unique().tolist() == [0]
    assert select(runs, seeds=[0, 1]).sum() == 4  # every seed of the chosen point is marked


HELD_OUT = """
name = "held"
steps = 200
seeds = 4
selection_seeds = 2
[[problem]]
surface = "rosenbrock"
noise = 2.0
[[problem]]
surface = "booth"
start = [0.5, 2.5]
tolerance = 1e-2
[optimizer.sgd]
learning_rate = [1e-4, 3e-4, 1e-3]
[optimizer.adam]
learning_rate = [0.01, 0.1]
"""


def test_held_out_seeds_select_and_the_others_are_reported(tmp_path):
    cfg = load_config(HELD_OUT)
    assert cfg.settings.selection_seeds == (0, 1)
    res = optbench.run(cfg, tmp_path / "h")
    runs = res.runs
    want = select(runs, seeds=[0, 1])
    assert runs["selected"].tolist() == want.tolist()
    table = summary(res)
    assert (table["runs"] == 2).all() and (table["seeds"] == 2).all()  # seeds 2 and 3
    page = optbench.report(tmp_path / "h").read_text()
    assert "held out from selection (2, 3)" in page and "selected on seeds 0, 1" in page
    # the per-problem tolerance decides steps_to_tol (booth, 1e-2) and is in config.toml
    assert "tolerance = 0.01" in (tmp_path / "h" / "config.toml").read_text()
    booth = runs[runs.problem == "booth"]
    gap = booth.best_loss.where(booth.steps_to_tol.notna())
    assert (gap.dropna() <= 1e-2).all() and booth.steps_to_tol.notna().any()
    # optbench report recomputes the scoring files from the folder alone
    for name in (schema.PROFILES, schema.SCORES):
        before = (tmp_path / "h" / name).read_bytes()
        (tmp_path / "h" / name).unlink()
        optbench.report(tmp_path / "h")
        assert (tmp_path / "h" / name).read_bytes() == before


def test_default_selection_is_every_seed():
    cfg = load_config(HELD_OUT.replace("selection_seeds = 2\n", ""))
    assert cfg.settings.selection_seeds is None
    assert load_config(HELD_OUT.replace("= 2\n", "= 4\n", 1)).settings.selection_seeds is None


@pytest.mark.parametrize(
    "line, words",
    [
        ("selection_seeds = 5", ["selection_seeds", "up to the 4 seeds"]),
        ("selection_seeds = [0, 9]", ["selection_seeds", "out of seeds"]),
        ("selection_seeds = 0", ["selection_seeds"]),
        ("max_ratio = 1.0", ["max_ratio", "> 1"]),
        ("max_ratio = 'big'", ["max_ratio"]),
    ],
)
def test_bad_selection_seeds_and_max_ratio_are_config_errors(line, words):
    text = HELD_OUT.replace("selection_seeds = 2", line)
    with pytest.raises(optbench.ConfigError) as err:
        load_config(text)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize(
    "table, words",
    [
        ('task = "adding"\ntarget = { metric = "val_accuracy", value = 0.9 }', ["regression"]),
        ('task = "digits_logreg"\ntarget = { metric = "test_loss", value = 0.1 }', ["val_loss"]),
        ('task = "digits_logreg"\ntarget = { metric = "val_accuracy", value = 1.5 }', ["[0, 1]"]),
        ('task = "digits_logreg"\ntarget = { value = 0.5 }', ["target.metric", "missing"]),
        ('task = "digits_logreg"\ntarget = 0.5', ["target", "table"]),
        ('task = "digits_logreg"\ntolerance = 0.1', ["tolerance"]),
        ('surface = "saddle"\ntolerance = 0.1', ["no known minimum"]),
        ('surface = "booth"\ntarget = { metric = "val_loss", value = 0.1 }', ["tolerance"]),
        ('surface = "booth"\ntolerance = -1.0', ["tolerance", ">= 0"]),
    ],
)
def test_bad_targets_and_tolerances_are_config_errors(table, words):
    text = f"steps = 10\n[[problem]]\n{table}\n[optimizer.adam]\nlearning_rate = 0.1\n"
    with pytest.raises(optbench.ConfigError) as err:
        load_config(text)
    for w in words:
        assert w in str(err.value), str(err.value)


def test_a_target_is_kept_in_the_config_but_not_in_the_group_identity():
    base = 'steps = 5\n[[problem]]\ntask = "adding"\n[optimizer.adam]\nlearning_rate = 0.1\n'
    with_target = base.replace(
        '"adding"\n', '"adding"\ntarget = { metric = "val_loss", value = 0.1 }\n'
    )
    a, b = load_config(base).problems[0], load_config(with_target).problems[0]
    assert b.to_dict()["target"] == {"metric": "val_loss", "value": 0.1}
    assert a.identity() == b.identity()  # resume keeps groups when only the target changes


def _edge_group(lrs: list[float], chosen: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    g = pd.DataFrame({"learning_rate": lrs, "b1": 0.9, "grid_index": range(len(lrs))})
    return g, g[g.learning_rate == chosen]


def test_the_edge_flag():
    assert edge(*_edge_group([1e-3, 1e-2, 1e-1], 1e-1)) == ["learning_rate largest of 3"]
    assert edge(*_edge_group([1e-3, 1e-2, 1e-1], 1e-3)) == ["learning_rate smallest of 3"]
    assert edge(*_edge_group([1e-3, 1e-2, 1e-1], 1e-2)) == []
    assert edge(*_edge_group([1e-3, 1e-2], 1e-2)) == []  # two values: no interior to miss
    table = pd.DataFrame(
        {"problem": ["p", "q"], "optimizer": ["a", "b"], "grid_edge": [True, False],
         "grid_edge_at": ["learning_rate largest of 3", ""]}
    )  # fmt: skip
    line = edge_warning(table)
    assert line.startswith("1 selected grid point at the edge of its grid: p x a")
    assert edge_warning(table.assign(grid_edge=False)) is None
