"""A synthetic sweep for the lecture's figures, written without running the engine.

The surface part is :func:`demo.write_demo`'s rosenbrock; to it come training tasks with
made-up but plausible numbers: three digits CNNs (plain, dropout, batchnorm: one task with
several problems), the adding problem with tanh-RNN, LSTM and GRU cells and two deep MLPs
(plain and residual), both with ``gradient_flow`` rows (the gradient at h_t falls by a
factor ``RHO`` per step back), and two scheduled optimizers (cosine with warmup, a
staircase). :func:`lecture_results` returns the :class:`optbench.results.Results`;
:func:`write_lecture_demo` saves them.
"""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from demo import _group, demo_meta, write_demo

import optbench
from optbench.results import Results, schema, select

#: Task optimizers: the demo's adam, and two scheduled ones.
TASK_OPTIMIZERS = {
    "adam": {"name": "adam", "learning_rate": [1e-2, 1e-1]},
    "adam_cosine": {
        "name": "adam",
        "learning_rate": [1e-3, 1e-2],
        "schedule": {"kind": "cosine", "warmup": 20},
    },
    "sgd_step": {
        "name": "sgd",
        "learning_rate": [0.03, 0.3],
        "schedule": {"kind": "step", "every": 60, "factor": 0.5},
    },
}
#: label -> (task, params, steps, curve x column)
#: The parameters as the registry writes them: a digits network's normalization and
#: regularization always, a cell's gate bias only for the cell that has that gate.
_NET = {"batchnorm": False, "dropout": 0.0}
PROBLEMS = {
    "cnn": ("digits_cnn", dict(_NET)),
    "cnn_dropout": ("digits_cnn", _NET | {"dropout": 0.3}),
    "cnn_batchnorm": ("digits_cnn", _NET | {"batchnorm": True}),
    "adding_rnn": ("adding", {"cell": "rnn", "length": 20}),
    "adding_lstm": ("adding", {"cell": "lstm", "length": 20, "forget_bias": 1.0}),
    "adding_gru": ("adding", {"cell": "gru", "length": 20, "update_bias": 1.0}),
    "mlp_plain": ("digits_mlp", _NET | {"depth": 6, "residual": False}),
    "mlp_residual": ("digits_mlp", _NET | {"depth": 6, "residual": True}),
}
EPOCHS, PER_EPOCH, ADDING_STEPS = 10, 20, 300
#: The gradient's factor per step back, (at initialisation, late in training).
RHO = {
    "adding_rnn": (0.75, 0.7),
    "adding_lstm": (0.93, 0.97),
    "adding_gru": (0.97, 0.99),
    "mlp_plain": (0.45, 0.55),
    "mlp_residual": (0.93, 0.96),
}
#: Final (train, validation) losses of each digits problem at its best.
FLOORS = {
    "cnn": (0.01, 0.16),
    "cnn_dropout": (0.09, 0.08),
    "cnn_batchnorm": (0.005, 0.12),
    "mlp_plain": (0.2, 0.3),
    "mlp_residual": (0.03, 0.12),
}


def _offset(*names: str) -> float:
    return (zlib.crc32("/".join(names).encode()) % 7) / 20


def _task_runs(label: str, opt: str, seeds: int, flow: bool) -> tuple[list, list, list]:
    task, params = PROBLEMS[label]
    spec = TASK_OPTIMIZERS[opt]
    dataset = task != "adding"
    steps = EPOCHS * PER_EPOCH if dataset else ADDING_STEPS
    runs, curves, flows = [], [], []
    for gi, lr in enumerate(spec["learning_rate"]):
        for seed in range(seeds):
            q = 1 + _offset(label, opt) + 0.4 * (gi == 0) + 0.05 * seed
            rid = f"{label}-{opt}-{gi}-{seed}"
            if dataset:
                x = np.arange(EPOCHS + 1)
                tr_floor, val_floor = FLOORS[label]
                tr = q * tr_floor + (2.3 - tr_floor) * np.exp(-0.6 * x / q)
                val = q * val_floor + (2.3 - val_floor) * np.exp(-0.55 * x / q)
                val = val + 0.004 * x * (tr_floor < 0.05)  # overfitting: validation turns up
                acc = 1 - val / 3
            else:
                x = np.arange(0, ADDING_STEPS + 1, 30)
                tr = 0.17 * np.exp(-x / (100 * q * (1 + (params["cell"] == "rnn")))) + 0.01
                val, acc = tr * 1.05, np.full(len(x), np.nan)
            for i, xi in enumerate(x):
                row = {"run_id": rid, "step": int(xi * PER_EPOCH if dataset else xi)}
                if dataset:
                    row["epoch"] = int(xi)
                row |= {"train_loss": tr[i], "val_loss": val[i], "test_loss": val[i] * 1.02}
                row |= {"test_accuracy": acc[i], "val_accuracy": acc[i]}
                curves.append(row)
            runs.append(
                {
                    "run_id": rid,
                    "problem": label,
                    "surface": np.nan,
                    "task": task,
                    **{f"param_{k}": v for k, v in params.items()},
                    "optimizer": opt,
                    "algorithm": spec["name"],
                    "learning_rate": lr,
                    "schedule": spec["schedule"]["kind"] if "schedule" in spec else np.nan,
                    "schedule_spec": schema.schedule_spec(spec["schedule"])
                    if "schedule" in spec
                    else np.nan,
                    "grid_index": gi,
                    "seed": seed,
                    "start": 0,
                    "final_loss": tr[-1],
                    "best_loss": tr.min(),
                    "steps_to_tol": np.nan,
                    "diverged": False,
                    "escaped": False,
                    "stop_step": steps,
                    "final_train_loss": tr[-1],
                    "val_loss": val[-1],
                    "test_loss": val[-1] * 1.02,
                    "test_accuracy": acc[-1],
                    "val_accuracy": acc[-1],
                }
            )
            if flow and label in RHO:
                last = params.get("length") or params["depth"]
                for k in np.linspace(0, steps, 5).astype(int):
                    rho = RHO[label][0 if k == 0 else 1]
                    scale = 0.1 * (1 + 0.2 * seed) * (1 + k / steps)
                    for pos in range(1, last + 1):
                        wiggle = 1 + 0.03 * np.sin(pos + seed + gi)
                        g = scale * rho ** ((last - pos) * q) * wiggle
                        flows.append((rid, int(k), pos, float(g)))
    return runs, curves, flows


def lecture_results(
    *,
    seeds: int = 2,
    problems: tuple[str, ...] = tuple(PROBLEMS),
    schedules: bool = True,
    flow: bool = True,
) -> Results:
    """The sweep: rosenbrock (from :func:`demo.write_demo`) and the task ``problems``, with
    the scheduled optimizers when ``schedules`` and ``gradient_flow`` rows when ``flow``."""
    with tempfile.TemporaryDirectory() as tmp:
        base = optbench.load(
            write_demo(Path(tmp), steps=120, seeds=seeds, surfaces=("rosenbrock",), task=False)
        )
        base.path = None
    opts = {k: v for k, v in TASK_OPTIMIZERS.items() if schedules or "schedule" not in v}
    runs, curves, flows, groups = [base.runs], [base.curves], [], list(base.meta["groups"])
    config_problems = list(base.config["problem"])
    for label in problems:
        task, params = PROBLEMS[label]
        dataset = task != "adding"
        entry = {"label": label, "task": task, "batch_size": 64}
        entry |= {"epochs": EPOCHS} if dataset else {"steps": ADDING_STEPS}
        config_problems.append(entry | ({"params": dict(params)} if params else {}))
        for opt in opts:
            r, c, f = _task_runs(label, opt, seeds, flow)
            runs.append(pd.DataFrame(r))
            curves.append(pd.DataFrame(c))
            flows += f
            steps = EPOCHS * PER_EPOCH if dataset else ADDING_STEPS
            groups.append(_group(label, opt, len(r), steps, 1.0, 2.0, f"p-{label}-{opt}"))
    config = dict(base.config, name="lecture", problem=config_problems)
    config["optimizer"] = dict(base.config["optimizer"]) | opts
    runs_df = schema.normalize(pd.concat(runs, ignore_index=True), schema.integer_params(config))
    runs_df[schema.SELECTED] = select(runs_df)
    frame = pd.DataFrame(flows, columns=list(schema.GRADIENT_FLOW_COLUMNS))
    return Results(
        runs=runs_df,
        curves=schema.normalize(pd.concat(curves, ignore_index=True)),
        trajectories=base.trajectories,
        meta=demo_meta("lecture", "1" * 16, groups),
        config=config,
        gradient_flow=schema.normalize(frame) if flows else schema.empty_gradient_flow(),
    )


def write_lecture_demo(folder: str | Path, **kwargs) -> Path:
    """Save :func:`lecture_results` (``kwargs`` passed on) into ``folder``; returns it."""
    return lecture_results(**kwargs).save(folder)
