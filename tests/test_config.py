"""Config parsing: every mistake is a ConfigError naming the key and the fix."""

from __future__ import annotations

import math

import pytest

from optbench import ConfigError
from optbench.config import load_config, override

BASE = """
name = "t"
steps = 50
[[problem]]
surface = "rosenbrock"
[optimizer.adam]
learning_rate = 0.01
"""


def test_minimal_config_resolves_defaults():
    cfg = load_config(BASE)
    assert cfg.name == "t" and cfg.steps == 50 and cfg.seeds == (0,)
    (p,) = cfg.problems
    assert p.label == "rosenbrock" and p.steps == 50 and p.params == {"a": 1.0, "b": 100.0}
    (o,) = cfg.optimizers
    assert o.name == "adam"
    assert o.grid["learning_rate"] == (0.01,)
    assert o.grid["b1"] == (0.9,) and o.grid["b2"] == (0.999,)


def test_grids_and_their_product():
    cfg = load_config(
        BASE.replace(
            "learning_rate = 0.01",
            "learning_rate = { logspace = [1e-4, 1e-1], num = 4 }\nb1 = [0.8, 0.9]",
        )
    )
    (o,) = cfg.optimizers
    assert o.grid["learning_rate"] == pytest.approx((1e-4, 1e-3, 1e-2, 1e-1))
    points = o.points()
    assert len(points) == 8
    assert {(p["learning_rate"], p["b1"]) for p in points} == {
        (lr, b1) for lr in o.grid["learning_rate"] for b1 in (0.8, 0.9)
    }
    lin = load_config(BASE.replace("0.01", "{ linspace = [0.1, 0.5], num = 5 }"))
    assert lin.optimizers[0].grid["learning_rate"] == pytest.approx((0.1, 0.2, 0.3, 0.4, 0.5))


def test_labels_seeds_and_starts():
    cfg = load_config(
        """
        seeds = [3, 7]
        [[problem]]
        surface = "rosenbrock"
        label = "rb_far"
        start = [[-1.5, 2.0], [0.5, -0.5]]
        noise = 0.1
        [optimizer.fast]
        name = "momentum"
        learning_rate = 1e-3
        """
    )
    assert cfg.seeds == (3, 7)
    assert cfg.problems[0].label == "rb_far"
    assert cfg.problems[0].start == ((-1.5, 2.0), (0.5, -0.5))
    assert cfg.optimizers[0].label == "fast" and cfg.optimizers[0].name == "momentum"


def test_hash_is_stable_and_round_trips():
    a = load_config(BASE)
    b = load_config(a.to_dict())
    assert a.hash() == b.hash()
    assert load_config(BASE.replace("steps = 50", "steps = 51")).hash() != a.hash()


def test_builtin_configs_load():
    from optbench.config import builtin_names

    names = builtin_names()
    assert "quickstart" in names
    for name in names:
        assert load_config(name).problems


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(text)
    return info.value


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (("steps = 50", "stesp = 50"), "stesp", "did you mean 'steps'"),
        (("steps = 50", "steps = 0"), "steps", "positive integer"),
        (("steps = 50", 'steps = "many"'), "steps", "positive integer"),
        (("learning_rate = 0.01", "learning_rate = -0.01"), "learning_rate", "> 0"),
        (("learning_rate = 0.01", "learnin_rate = 0.01"), "learnin_rate", "learning_rate"),
        (("[optimizer.adam]", "[optimizer.adma]"), "optimizer.adma", "adam"),
        (('surface = "rosenbrock"', 'surface = "rosenbrok"'), "surface", "rosenbrock"),
        (('surface = "rosenbrock"', 'surface = "rosenbrock"\nstart = [1.0]'), "start", "2 numbers"),
        (('surface = "rosenbrock"', 'surface = "rosenbrock"\nparams = { q = 1 }'), "params", "q"),
        (("learning_rate = 0.01", "learning_rate = 0.01\nb1 = 1.0"), "b1", "b1"),
        (("learning_rate = 0.01", 'learning_rate = "fast"'), "learning_rate", "number"),
        (('name = "t"', 'name = "t"\ndtype = "float16"'), "dtype", "float64"),
        (('name = "t"', 'name = "t"\nseeds = 0'), "seeds", "count"),
        (
            ("learning_rate = 0.01", "learning_rate = { logspace = [0, 1], num = 3 }"),
            "learning_rate",
            "> 0",
        ),
    ],
)
def test_config_errors_name_the_key_and_the_fix(change, key, words):
    err = _error(BASE.replace(*change))
    text = str(err)
    assert key in (err.key or ""), text
    assert words in text, text
    assert "\n" not in text


def test_grid_over_a_switch_is_rejected():
    err = _error(
        BASE.replace(
            "[optimizer.adam]\nlearning_rate = 0.01",
            "[optimizer.rmsprop]\ncentered = [true, false]",
        )
    )
    assert "only numeric hyperparameters can be grids" in str(err)
    assert err.key == "optimizer.rmsprop.centered"


def test_duplicate_labels_are_rejected():
    err = _error(BASE + '[[problem]]\nsurface = "rosenbrock"\n')
    assert "labelled 'rosenbrock'" in str(err) and "label" in str(err)


def test_malformed_toml_and_missing_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(bad)
    assert info.value.file == str(bad)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="quickstart"):
        load_config("quickstrat")


def test_errors_in_files_name_the_file(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(BASE.replace("steps = 50", "steps = -3"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: steps: ")


def test_override_subsets_and_steps():
    cfg = load_config(BASE + "[optimizer.sgd]\nlearning_rate = 1e-3\n")
    small = override(cfg, steps=7, seeds=3, optimizers=["sgd"])
    assert [o.label for o in small.optimizers] == ["sgd"]
    assert small.problems[0].steps == 7 and small.seeds == (0, 1, 2)
    with pytest.raises(ConfigError, match="did you mean 'sgd'"):
        override(cfg, optimizers=["sdg"])
    with pytest.raises(ConfigError, match="positive"):
        override(cfg, steps=0)


def test_tolerance_must_be_finite():
    err = _error(BASE.replace('name = "t"', 'name = "t"\ntolerance = inf'))
    assert err.key == "tolerance"
    assert not math.isnan(load_config(BASE).tolerance)


def test_schedules_are_checked_against_each_problem_s_steps():
    text = BASE.replace("learning_rate = 0.01", 'schedule = { kind = "cosine", warmup = 80 }')
    err = _error(text)
    assert err.key == "optimizer.adam.schedule.warmup"
    assert "50 steps" in str(err)
    assert load_config(text.replace("steps = 50", "steps = 500")).optimizers[0].schedule
    err = _error(BASE.replace("learning_rate = 0.01", 'schedule = { kind = "cosin" }'))
    assert "cosine" in str(err)
