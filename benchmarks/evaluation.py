"""What share of a training task's run time its curve points' evaluation takes, default settings.

For each task and run count, optbench's run seconds (``TaskResult.run_s``: the chunks,
their evaluation and the gradient flow; compile excluded) with the default curve points (a
config without ``log_every``: a point per epoch, 20 per run for a step task, each on the
full validation and test sets) against the same runs evaluated only after the last step
(``log_every`` past the budget), repetitions alternating; the share is
``1 - end_only / default`` per pair, its median and range. Default settings: Adam 1e-3, batch
64, float32, the default budget (10 epochs, 1,000 steps; the CNN also the shipped configs'
20 epochs). The runs of a group are one program, as ``optbench run`` gives them.

Usage::

    python benchmarks/evaluation.py            # about 20 minutes on 2 cores
    python benchmarks/evaluation.py --quick    # a smoke run (numbers meaningless)
"""

from __future__ import annotations

import argparse
import statistics

from tasks import default_log_every, machine_info, optbench_runs  # benchmarks/tasks.py

import optbench.problems.tasks as tasks
from optbench.config import DEFAULT_STEPS
from optbench.problems.tasks.problem import DEFAULT_EPOCHS

REPS = 3
WORKLOADS = [  # (label, task, params, budget)
    ("digits_cnn", "digits_cnn", {}, DEFAULT_EPOCHS),
    ("digits_cnn", "digits_cnn", {}, 20),
    ("digits_mlp", "digits_mlp", {}, DEFAULT_EPOCHS),
    ("digits_rnn lstm", "digits_rnn", {}, DEFAULT_EPOCHS),
    ("adding lstm", "adding", {"cell": "lstm"}, DEFAULT_STEPS),
    ("adding gru", "adding", {"cell": "gru"}, DEFAULT_STEPS),
]


def measure(name: str, params: dict, budget: int, n_runs: int, reps: int) -> dict:
    """Default and end-only evaluation alternating (after one untimed call of each)."""
    task = tasks.get(name, **params)
    sides = {"default": default_log_every(task, budget), "end": 10**9}
    times: dict[str, list[float]] = {side: [] for side in sides}
    points = 0
    for rep in range(reps + 1):
        for side, every in sides.items():
            key = (name, str(params), budget, n_runs, side)  # compiled once per process
            res = optbench_runs(task, budget, n_runs, every, key)
            points = max(points, len(res.step))
            if rep:
                times[side].append(res.run_s)
    shares = [1 - e / d for d, e in zip(times["default"], times["end"], strict=True)]
    med = statistics.median
    return dict(
        default=med(times["default"]),
        end=med(times["end"]),
        share=med(shares),
        lo=min(shares),
        hi=max(shares),
        points=points,
    )


def main() -> None:
    """Measure every workload for 1 and 8 runs and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run")
    args = parser.parse_args()
    reps = 1 if args.quick else REPS
    print(machine_info(), flush=True)
    print(f"{'task':<16} {'budget':>6} {'runs':>4} {'points':>6} {'default_s':>9} "
          f"{'end_only_s':>10} {'share':>6} {'range':>11}")  # fmt: skip
    for label, name, params, budget in WORKLOADS:
        for n_runs in (1, 8):
            b = min(budget, 2) if args.quick else budget
            r = measure(name, params, b, n_runs, reps)
            print(f"{label:<16} {b:>6} {n_runs:>4} {r['points']:>6} {r['default']:>9.2f} "
                  f"{r['end']:>10.2f} {r['share']:>6.1%} {r['lo']:>5.1%}-{r['hi']:<5.1%}",
                  flush=True)  # fmt: skip
    print(
        f"(run seconds of one call, median of {reps} alternating repetitions; share: the "
        "median of the paired 1 - end_only/default, and their range; points: the default "
        "curve points per run; budget in epochs or steps)"
    )


if __name__ == "__main__":
    main()
