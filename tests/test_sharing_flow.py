"""Gradient flow (gradient_flow.csv), per-problem optimizer lists, and task programs shared
by problems that differ only in their traced regularisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from compiles import count_compiles
from typer.testing import CliRunner

import optbench
from optbench import ConfigError, compilation, engine
from optbench.cli import app
from optbench.config import load_config, override
from optbench.problems.tasks import data, flow, registry, train
from optbench.results import schema

# --------------------------------------------------------------------------- 1. gradient flow

FLOW_CONFIG = """
name = "flow"
dtype = "float64"
seeds = [0, 1]

[[problem]]
task = "adding"
steps = 8
batch_size = 8
params = { cell = "gru", length = 6, hidden = 4 }

[[problem]]
task = "digits_mlp"
epochs = 2
params = { depth = 3, hidden = 8, activation = "sigmoid" }

[[problem]]
task = "digits_logreg"
epochs = 1

[optimizer.adam]
learning_rate = [1e-2, 1e300]
"""
# learning rate 1e300: every run of that grid point overflows after its first update.

ADDING = {"cell": "gru", "length": 6, "hidden": 4}
MLP = {"depth": 3, "hidden": 8, "activation": "sigmoid"}
# Measurement steps: at 0 and at the flow points among the curve points. adding: 8 points at
# steps 1..8; digits_mlp: 2 points (1,077 // 64 = 16 steps an epoch) at 16 and 32.
FLOW_STEPS = {"adding": [0, 2, 4, 6, 8], "digits_mlp": [0, 16, 32]}
POSITIONS = {"adding": 6, "digits_mlp": 3}


@pytest.fixture(scope="module")
def flow_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "r"
    res = optbench.run(FLOW_CONFIG, out)
    return res, out


def _run_seed(runs: pd.DataFrame, run_id: str) -> int:
    return int(runs.loc[runs["run_id"] == run_id, "seed"].iloc[0])


def _init_params(task: str, params: dict, seed: int):
    """The model's initial parameters as the training program draws them (float64)."""
    model = registry.get(task, **params)._model
    k_init, _ = jax.random.split(jax.random.PRNGKey(seed))
    return model.init(k_init, jnp.float64)[0]


def _rms(g: jax.Array) -> float:
    """sqrt(mean_i ||g_i||^2) over the examples (rows) of g."""
    return float(jnp.sqrt(jnp.mean(jnp.sum(jnp.square(g), axis=1))))


def _gru_flow(params: dict, x: jax.Array, y: jax.Array) -> list[float]:
    """The GRU unrolled by hand; for each t, the RMS over examples of ||dJ_i / dh_t||."""
    p, out = params["rnn"], params["out"]
    hidden = p["w_h"].shape[0]

    def sigmoid(a):
        return 1.0 / (1.0 + jnp.exp(-a))

    def step(h, x_t):
        xp = x_t @ p["w"] + p["b"]
        hh = h @ p["w_h"] + p["b_h"]
        r = sigmoid(xp[:, :hidden] + hh[:, :hidden])
        z = sigmoid(xp[:, hidden : 2 * hidden] + hh[:, hidden : 2 * hidden])
        n = jnp.tanh(xp[:, 2 * hidden :] + r * hh[:, 2 * hidden :])
        return (1.0 - z) * n + z * h

    length = x.shape[1]
    states, h = [], jnp.zeros((x.shape[0], hidden), x.dtype)
    for t in range(length):
        h = step(h, x[:, t])
        states.append(h)

    def loss_from(t):
        def rest(h):  # sum_i J_i: row i of the gradient is dJ_i / dh_t,i
            for s in range(t + 1, length):
                h = step(h, x[:, s])
            pred = (h @ out["w"] + out["b"])[:, 0]
            return jnp.sum(jnp.square(pred - y))

        return rest

    return [_rms(jax.grad(loss_from(t))(states[t])) for t in range(length)]


def _mlp_flow(params: dict, x: jax.Array, y: jax.Array, depth: int) -> list[float]:
    """The sigmoid MLP by hand; for each block l, the RMS of ||dJ_i / d(block l's output)||."""
    names = ["hidden"] + [f"hidden{i}" for i in range(2, depth + 1)]

    def block(a, name):
        return 1.0 / (1.0 + jnp.exp(-(a @ params[name]["w"] + params[name]["b"])))

    outputs, a = [], x.reshape(x.shape[0], -1)
    for name in names:
        a = block(a, name)
        outputs.append(a)

    def loss_from(l):
        def rest(a):
            for name in names[l + 1 :]:
                a = block(a, name)
            logits = a @ params["out"]["w"] + params["out"]["b"]
            lse = jnp.log(jnp.sum(jnp.exp(logits - logits.max(1, keepdims=True)), 1))
            lse = lse + logits.max(1)
            return jnp.sum(lse - logits[jnp.arange(logits.shape[0]), y])

        return rest

    return [_rms(jax.grad(loss_from(l))(outputs[l])) for l in range(depth)]


def _at_step(frame: pd.DataFrame, run_id: str, step: int) -> np.ndarray:
    rows = frame[(frame["run_id"] == run_id) & (frame["step"] == step)]
    assert rows["position"].tolist() == list(range(1, len(rows) + 1)), rows
    return rows["grad_norm"].to_numpy()


def test_gradient_flow_csv_has_every_position_at_step_0_and_the_flow_points(flow_sweep):
    res, out = flow_sweep
    text = (out / schema.GRADIENT_FLOW).read_text()
    assert text.splitlines()[0] == "run_id,step,position,grad_norm"
    loaded = optbench.load(out).gradient_flow
    pd.testing.assert_frame_equal(loaded, res.gradient_flow)
    assert list(loaded.columns) == list(schema.GRADIENT_FLOW_COLUMNS)
    assert loaded["step"].dtype == np.int64 and loaded["position"].dtype == np.int64
    assert loaded["grad_norm"].dtype == np.float64
    # the flow points are those flow.flow_segments picks out of the curve points
    curves = res.curves
    for task, expected in FLOW_STEPS.items():
        good = res.runs[(res.runs["task"] == task) & ~res.runs["diverged"]]
        assert len(good) == 2  # both seeds of learning rate 1e-2
        for run_id in good["run_id"]:
            points = curves.loc[curves["run_id"] == run_id, "step"].to_numpy()
            assert [0, *points[flow.flow_segments(len(points))].tolist()] == expected
            rows = loaded[loaded["run_id"] == run_id]
            n_pos = POSITIONS[task]
            assert sorted(set(rows["step"])) == expected
            assert len(rows) == len(expected) * n_pos
            for step in expected:
                values = _at_step(loaded, run_id, step)
                assert len(values) == n_pos and np.all(np.isfinite(values)) and np.all(values > 0)
    assert not loaded["run_id"].str.startswith("digits_logreg:").any()


def test_the_adding_flow_at_initialisation_equals_a_hand_unrolled_gru(flow_sweep):
    res, _ = flow_sweep
    frame = res.gradient_flow
    x_val, y_val = data.adding_eval_sets(ADDING["length"])[0:2]
    ids = res.runs.loc[res.runs["task"] == "adding", "run_id"]
    assert len(ids) == 4
    with jax.enable_x64(True):
        x = jnp.asarray(x_val[: flow.FLOW_BATCH], jnp.float64)
        y = jnp.asarray(y_val[: flow.FLOW_BATCH], jnp.float64)
        for run_id in ids:
            params = _init_params("adding", ADDING, _run_seed(res.runs, run_id))
            expected = _gru_flow(params, x, y)
            np.testing.assert_allclose(_at_step(frame, run_id, 0), expected, rtol=1e-10)
    # the two seeds start from different weights: different flows
    a, b = (_at_step(frame, i, 0) for i in ids[:2])
    assert not np.allclose(a, b)


def test_the_deep_mlp_flow_at_initialisation_equals_the_per_layer_gradient(flow_sweep):
    res, _ = flow_sweep
    frame = res.gradient_flow
    split = data.digits_split()
    ids = res.runs.loc[res.runs["task"] == "digits_mlp", "run_id"]
    assert len(ids) == 4
    with jax.enable_x64(True):
        x = jnp.asarray(split.x_val[: flow.FLOW_BATCH], jnp.float64)
        y = jnp.asarray(split.y_val[: flow.FLOW_BATCH])
        for run_id in ids:
            params = _init_params("digits_mlp", MLP, _run_seed(res.runs, run_id))
            expected = _mlp_flow(params, x, y, MLP["depth"])
            np.testing.assert_allclose(_at_step(frame, run_id, 0), expected, rtol=1e-10)
            # sigmoid: the gradient shrinks on its way down to the first block
            assert expected[0] < expected[1] < expected[2]


def test_a_diverged_runs_flow_stops_at_its_stop_step(flow_sweep):
    res, _ = flow_sweep
    frame = res.gradient_flow
    diverged = res.runs[res.runs["diverged"] & res.runs["task"].isin(list(FLOW_STEPS))]
    assert len(diverged) == 4 and (diverged["stop_step"] < 2).all()  # 1e300 overflows at once
    for run in res.runs[res.runs["task"].isin(list(FLOW_STEPS))].itertuples():
        steps = sorted(set(frame.loc[frame["run_id"] == run.run_id, "step"]))
        assert steps == [s for s in FLOW_STEPS[run.task] if s <= run.stop_step], run
    # the diverged run's initial flow is still that of its weights at step 0
    for run in diverged.itertuples():
        twin = run.run_id.replace(":adam:1:", ":adam:0:")
        assert np.array_equal(_at_step(frame, run.run_id, 0), _at_step(frame, twin, 0))


def test_a_task_without_positions_writes_a_header_only_gradient_flow(tmp_path):
    head, *tables = FLOW_CONFIG.split("[[problem]]")
    config = head + "[[problem]]" + tables[2]  # digits_logreg and the optimizer
    assert "digits_logreg" in config and "adding" not in config
    res = optbench.run(config, tmp_path / "r")
    assert (tmp_path / "r" / schema.GRADIENT_FLOW).read_text() == "run_id,step,position,grad_norm\n"
    loaded = optbench.load(tmp_path / "r").gradient_flow
    assert loaded.empty and list(loaded.columns) == list(schema.GRADIENT_FLOW_COLUMNS)
    assert res.gradient_flow.empty and len(res.runs) == 4


def test_a_resumed_sweep_writes_the_gradient_flow_of_an_uninterrupted_one(flow_sweep, tmp_path):
    _, full = flow_sweep

    def stop_after_first(event, **info):
        if event == "group" and info["index"] == 1:
            raise KeyboardInterrupt

    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        optbench.run(FLOW_CONFIG, out, progress=stop_after_first)
    partial = optbench.load(out).gradient_flow
    assert set(partial["run_id"].str.split(":").str[0]) == {"adding"}
    skipped = []
    optbench.run(
        FLOW_CONFIG,
        out,
        resume=True,
        progress=lambda e, **i: skipped.append(i["skipped"]) if e == "group" else None,
    )
    assert skipped == [True, False, False]
    for name in (schema.GRADIENT_FLOW, schema.RUNS, schema.CURVES):
        assert (out / name).read_bytes() == (full / name).read_bytes(), name


# --------------------------------------------------------------------------- 2. optimizers lists

PAIRS = """
name = "pairs"
steps = 20
[[problem]]
surface = "rosenbrock"
[[problem]]
surface = "booth"
optimizers = OPTS
[optimizer.adam]
learning_rate = 1e-2
[optimizer.sgd]
learning_rate = 1e-3
[optimizer.mom]
name = "momentum"
learning_rate = 1e-3
"""


def _pairs(cfg) -> list[tuple[str, str]]:
    return [(g.problem.label, g.optimizer.label) for g in engine.groups(cfg)]


def test_groups_follow_a_problems_optimizers_in_the_configs_order():
    cfg = load_config(PAIRS.replace("OPTS", '["mom", "adam", "mom"]'))
    assert [o.label for o in cfg.optimizers_for(cfg.problems[1])] == ["adam", "mom"]
    assert [o.label for o in cfg.optimizers_for(cfg.problems[0])] == ["adam", "sgd", "mom"]
    assert _pairs(cfg) == [
        ("rosenbrock", "adam"),
        ("rosenbrock", "sgd"),
        ("rosenbrock", "mom"),
        ("booth", "adam"),
        ("booth", "mom"),
    ]


@pytest.mark.parametrize(
    "value, words",
    [
        ('["adma"]', ["no optimizer 'adma'", "did you mean 'adam'"]),
        ('["adam", "sdg"]', ["no optimizer 'sdg'", "'sgd'"]),
        ("[]", ["non-empty list"]),
        ('"adam"', ["non-empty list"]),
        ("{ adam = true }", ["non-empty list"]),
        ("[1]", ["string"]),
    ],
)
def test_a_bad_optimizers_list_is_a_config_error_naming_its_key(value, words):
    with pytest.raises(ConfigError) as err:
        load_config(PAIRS.replace("OPTS", value))
    assert err.value.key == "problem.booth.optimizers"
    for word in words:
        assert word in str(err.value), str(err.value)


def test_the_resolved_config_keeps_the_list_and_the_sweep_runs_only_its_pairs(tmp_path):
    cfg = load_config(PAIRS.replace("OPTS", '["mom", "adam"]'))
    res = optbench.run(cfg, tmp_path / "r")
    expected = [("rosenbrock", o) for o in ("adam", "sgd", "mom")] + [
        ("booth", "adam"),
        ("booth", "mom"),
    ]
    ran = res.runs[["problem", "optimizer"]].drop_duplicates()
    assert list(ran.itertuples(index=False, name=None)) == expected
    assert [(g["problem"], g["optimizer"]) for g in res.meta["groups"]] == expected
    problems = res.config["problem"]
    assert "optimizers" not in problems[0] and problems[1]["optimizers"] == ["adam", "mom"]
    again = load_config(tmp_path / "r" / schema.CONFIG)  # the resolved file is a config
    assert again.pairs == cfg.pairs and _pairs(again) == expected


def test_the_command_line_selection_restricts_the_lists_and_refuses_an_empty_one():
    cfg = load_config(PAIRS.replace("OPTS", '["mom", "adam"]'))
    assert _pairs(override(cfg, optimizers=["sgd", "adam"])) == [
        ("rosenbrock", "adam"),
        ("rosenbrock", "sgd"),
        ("booth", "adam"),
    ]
    assert _pairs(override(cfg, problems=["booth"])) == [("booth", "adam"), ("booth", "mom")]
    assert _pairs(override(cfg, optimizers=["sgd"])) == [("rosenbrock", "sgd")]
    with pytest.raises(ConfigError) as err:
        override(cfg, optimizers=["sgd"], problems=["booth"])  # booth runs no sgd
    assert err.value.key == "--optimizers" and "selects no" in str(err.value)


def test_a_restricted_config_toml_is_a_config_again(tmp_path):
    """A problem the selection left without optimizers is written so that it loads."""
    cfg = override(load_config(PAIRS.replace("OPTS", '["mom", "adam"]')), optimizers=["sgd"])
    optbench.run(cfg, tmp_path / "r")
    again = load_config(tmp_path / "r" / schema.CONFIG)
    assert _pairs(again) == [("rosenbrock", "sgd")]


def test_optbench_run_with_a_typo_in_a_list_exits_2_with_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "exp.toml").write_text(PAIRS.replace("OPTS", '["adam", "mon"]'))
    result = CliRunner().invoke(app, ["run", "exp.toml", "--out", "out", "--no-render"])
    assert result.exit_code == 2, (result.output, result.stderr)
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in result.output + result.stderr
    assert err.startswith("optbench: error: ") and "exp.toml" in err
    assert "problem.booth.optimizers" in err and "'mom'" in err, err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 3. program sharing

SHARED_HEAD = """
name = "shared"
dtype = "float64"
seeds = [0]
"""
SHARED_PROBLEMS = {  # dropout first: the program is compiled for it, the others reuse it
    "drop": "params = { dropout = 0.3 }",
    "l2": "params = { l2 = 1e-3 }",
    "aug": "params = { augment = true }",
    "plain": "",
    "bn": "params = { batchnorm = true }",
}
SHARED_OPTIMIZER = """
[optimizer.adam]
learning_rate = 1e-2
"""
RUN_NUMBERS = [
    "final_loss",
    "best_loss",
    "final_train_loss",
    "val_loss",
    "test_loss",
    "test_accuracy",
    "val_accuracy",
    "stop_step",
    "diverged",
]


def _cnn_config(*labels: str) -> str:
    tables = [
        f'[[problem]]\ntask = "digits_cnn"\nlabel = "{label}"\nepochs = 1\n{SHARED_PROBLEMS[label]}'
        for label in labels
    ]
    return SHARED_HEAD + "\n".join(tables) + SHARED_OPTIMIZER


def _numbers(res, label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = res.runs.loc[res.runs["problem"] == label, ["run_id", *RUN_NUMBERS]]
    curves = res.curves[res.curves["run_id"].str.startswith(f"{label}:")]
    assert len(runs) == 1 and len(curves) >= 1
    return runs.reset_index(drop=True), curves.reset_index(drop=True)


def _assert_same_numbers(a, b, label: str) -> None:
    for x, y in zip(_numbers(a, label), _numbers(b, label), strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=True)


@pytest.fixture(scope="module")
def shared():
    compilation.clear_programs()
    traces = train.TRACE_COUNT
    with count_compiles() as names:
        res = optbench.run(_cnn_config(*SHARED_PROBLEMS))
    yield res, [n for n in names if n == "jit(chunk)"], train.TRACE_COUNT - traces
    compilation.clear_programs()


def test_problems_differing_in_traced_regularisation_compile_one_program(shared):
    res, chunks, traces = shared
    assert len(chunks) == 2 and traces == 2  # the shared program and batchnorm's
    groups = {g["problem"]: g for g in res.meta["groups"]}
    assert list(groups) == list(SHARED_PROBLEMS)
    names = {label: groups[label]["program"] for label in groups}
    assert len({names[label] for label in ("drop", "l2", "aug", "plain")}) == 1
    assert names["bn"] != names["drop"] and names["drop"]
    assert groups["drop"]["compile_s"] > 0 and groups["bn"]["compile_s"] > 0
    assert all(groups[label]["compile_s"] == 0 for label in ("l2", "aug", "plain"))
    # the shared program takes each problem's values: four different sets of numbers
    finals = res.runs.set_index("problem")["final_loss"]
    assert len({finals[label] for label in ("drop", "l2", "aug", "plain")}) == 4


@pytest.mark.parametrize("label", ["l2", "aug", "plain"])
def test_a_problem_in_the_shared_program_equals_it_run_alone(shared, label):
    compilation.clear_programs()
    with count_compiles() as names:
        alone = optbench.run(_cnn_config(label))
    assert names.count("jit(chunk)") == 1  # its own program, compiled for its values
    _assert_same_numbers(shared[0], alone, label)


def test_a_traced_dropout_of_0_equals_the_plain_cnn_without_a_dropout_layer(shared, monkeypatch):
    # Dropout not traced: the plain cnn's rate is a concrete 0 and its program has no dropout
    # layer (l1, l2 and augment stay traced: a concrete 0 penalty changes the program's
    # fusion, and its last digits, elsewhere).
    monkeypatch.setattr(registry, "TRACED_PARAMS", train.TRACED_PARAMS - {"dropout"})
    compilation.clear_programs()
    with count_compiles() as names:
        alone = optbench.run(_cnn_config("plain"))
    compilation.clear_programs()  # its program is not the one its key names
    assert names.count("jit(chunk)") == 1
    _assert_same_numbers(shared[0], alone, "plain")


def test_a_schedule_is_checked_only_against_the_problems_it_runs_on():
    text = """
[[problem]]
surface = "booth"
steps = 100
optimizers = ["sgd"]
[[problem]]
surface = "rosenbrock"
steps = 1000
[optimizer.sgd]
learning_rate = 0.01
[optimizer.warm]
name = "sgd"
learning_rate = 0.01
schedule = { kind = "cosine", warmup = 500 }
"""
    cfg = load_config(text)  # the 500-step warmup does not run on the 100-step booth
    assert [o.label for o in cfg.optimizers_for(cfg.problems[0])] == ["sgd"]
    with pytest.raises(ConfigError, match="warmup"):
        load_config(text.replace('optimizers = ["sgd"]', 'optimizers = ["sgd", "warm"]'))


def test_scores_count_only_the_problems_an_optimizer_runs_on():
    text = """
steps = 300
[[problem]]
surface = "booth"
tolerance = 1e-3
optimizers = ["adam"]
[[problem]]
surface = "quadratic"
tolerance = 1e-3
[optimizer.adam]
learning_rate = 0.1
[optimizer.sgd]
learning_rate = 0.05
"""
    res = optbench.run(text)
    profiles, scores = res.scoring()
    pairs = set(zip(profiles["problem"], profiles["optimizer"], strict=True))
    assert pairs == {("booth", "adam"), ("quadratic", "adam"), ("quadratic", "sgd")}
    solved = dict(zip(scores["optimizer"], scores["solved"], strict=True))
    assert solved["sgd"] == 1.0, scores  # its one problem, not 1 of 2


# --------------------------------------------------------------------------- 4. one program
# for a task problem's optimizers

TOGETHER = """
name = "together"
dtype = "DTYPE"
seeds = [0, 1]
[[problem]]
task = "digits_logreg"
epochs = 2
[[problem]]
task = "digits_rnn"
epochs = 1
params = { cell = "gru", hidden = 8 }
[optimizer.sgd]
learning_rate = [0.1, 0.3]
[optimizer.adam]
learning_rate = 1e-2
[optimizer.fast]
name = "momentum"
learning_rate = 1e-2
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_task_problems_optimizers_share_one_program_and_keep_their_numbers(dtype):
    # 4, 2 and 2 runs per group: with 2 cores, shards of 2 and 1 run side by side.
    text = TOGETHER.replace("DTYPE", dtype)
    compilation.clear_programs()
    with count_compiles() as names:
        res = optbench.run(text)
    assert names.count("jit(chunk)") == 2  # one per problem, its three optimizers together
    for task in ("digits_logreg", "digits_rnn"):
        groups = [g for g in res.meta["groups"] if g["problem"] == task]
        assert len({g["program"] for g in groups}) == 1 and groups[0]["program"]
        assert groups[0]["compile_s"] > 0 and all(g["run_s"] > 0 for g in groups)
    for opt in ("sgd", "adam", "fast"):  # each optimizer alone: the same bits
        compilation.clear_programs()
        alone = optbench.run(override(load_config(text), optimizers=[opt]))
        mine = res.runs["optimizer"] == opt
        numbers = ["run_id", "learning_rate", "seed", *RUN_NUMBERS]
        runs = res.runs.loc[mine, numbers].reset_index(drop=True)
        pd.testing.assert_frame_equal(runs, alone.runs[numbers], check_exact=True)
        ids = set(alone.runs["run_id"])
        curves = res.curves[res.curves["run_id"].isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(curves, alone.curves, check_exact=True)
        flow = res.gradient_flow[res.gradient_flow["run_id"].isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(flow, alone.gradient_flow, check_exact=True)
    compilation.clear_programs()
