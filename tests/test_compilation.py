"""Compile once per process (the program cache) and once per machine (the disk cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from compiles import count_compiles

import optbench

SURFACES = """
steps = 200
seeds = 2
[[problem]]
surface = "rosenbrock"
[[problem]]
surface = "quadratic"
params = { kappa = 20.0 }
[optimizer.adam]
learning_rate = LR
[optimizer.momentum]
learning_rate = [1e-3, 1e-2]
"""


def test_a_second_run_in_the_same_process_compiles_nothing(fresh_programs):
    config = SURFACES.replace("LR", "[1e-3, 1e-2, 1e-1]")
    with count_compiles() as first:
        a = optbench.run(config)
    with count_compiles() as second:
        b = optbench.run(config)
    assert len(first) == 2 and second == []  # one program per problem, for both optimizers
    pd.testing.assert_frame_equal(a.runs, b.runs)
    pd.testing.assert_frame_equal(a.curves, b.curves)
    assert all(g["compile_s"] == 0 for g in b.meta["groups"])


def test_new_hyperparameter_values_reuse_the_program(fresh_programs):
    optbench.run(SURFACES.replace("LR", "1e-2"))
    with count_compiles() as names:
        single = optbench.run(SURFACES.replace("LR", "3e-2"))  # a new single learning rate
        optbench.run(SURFACES.replace("LR", "[3e-2, 0.1]\nb1 = [0.8, 0.9]"))  # gridded b1
    assert len(names) == 2  # the grid changed the number of adam's runs: its two groups
    with count_compiles() as names:
        optbench.run(SURFACES.replace("LR", "[2e-2, 0.2]\nb1 = [0.5, 0.7]"))  # other values
    assert names == []
    fresh = optbench.run(SURFACES.replace("LR", "3e-2"))
    pd.testing.assert_frame_equal(single.runs, fresh.runs)
    with count_compiles() as names:
        optbench.run(SURFACES.replace("LR", "3e-2\nb1 = 0.8"))  # a single b1 is compiled in
    assert len(names) == 2  # adam's two groups; momentum's are reused


def test_a_task_program_is_reused(fresh_programs):
    config = """
[[problem]]
task = "digits_logreg"
epochs = 1
[optimizer.sgd]
learning_rate = LR
"""
    first = optbench.run(config.replace("LR", "[0.1, 0.3]"))
    with count_compiles() as names:
        again = optbench.run(config.replace("LR", "[0.1, 0.3]"))
        optbench.run(config.replace("LR", "[0.2, 0.5]"))
    assert names == []
    pd.testing.assert_frame_equal(first.curves, again.curves)


DISK = """
import json, sys
import jax
events = []
jax.monitoring.register_event_duration_secs_listener(lambda e, d, **kw: events.append(e))
import optbench
optbench.run('[[problem]]\\nsurface = "booth"\\nsteps = 50\\n[optimizer.sgd]\\nlearning_rate = 0.1')
compiles = events.count("/jax/core/compile/backend_compile_duration")
# a program loaded from the disk cache is reported as "compile time saved"
loaded = events.count("/jax/compilation_cache/compile_time_saved_sec")
print(json.dumps({"compiles": compiles - loaded, "loaded": loaded,
                  "dir": jax.config.jax_compilation_cache_dir}))
"""


def _fresh_process(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", DISK],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_disk_cache_serves_a_new_process_and_can_be_turned_off(tmp_path):
    folder = tmp_path / "cache"
    cold = _fresh_process({"OPTBENCH_COMPILATION_CACHE": str(folder)})
    warm = _fresh_process({"OPTBENCH_COMPILATION_CACHE": str(folder)})
    assert cold["compiles"] >= 1 and cold["loaded"] == 0
    assert warm["compiles"] == 0 and warm["loaded"] == cold["compiles"]
    assert cold["dir"] == str(folder) and any(folder.iterdir())
    off = _fresh_process({"OPTBENCH_COMPILATION_CACHE": "off"})
    assert off["dir"] is None and off["compiles"] >= 1


def test_a_schedule_with_lists_runs_and_is_cached(fresh_programs):
    config = """
steps = 100
[[problem]]
surface = "booth"
[optimizer.sgd]
learning_rate = [0.01, 0.1]
schedule = { kind = "step", boundaries = [30, 60] }
"""
    first = optbench.run(config)  # the boundaries (a list) are part of the program's key
    with count_compiles() as names:
        again = optbench.run(config)
    assert names == []
    pd.testing.assert_frame_equal(first.runs, again.runs)


def test_programs_compile_ahead_in_background_once_each(fresh_programs, monkeypatch):
    """The local executor compiles the next groups' programs in background threads while a
    group runs; each program still compiles once, its first run reports the compile time,
    and the numbers are those of a sweep compiled one group at a time."""
    import threading

    import jax

    from optbench import compilation, executors

    # The MLP first: this thread compiles its program (seconds) while the thread ahead lowers
    # and compiles logistic regression's (a tiny program, which this thread would otherwise
    # reach first and compile itself: a program per problem leaves the thread one to do).
    config = """
[[problem]]
task = "digits_mlp"
epochs = 1
params = { hidden = 8 }
[[problem]]
task = "digits_logreg"
epochs = 1
[optimizer.sgd]
learning_rate = [0.1, 0.3]
[optimizer.adam]
learning_rate = 1e-2
"""
    threads: list[str] = []

    def listener(event: str, duration: float, **kwargs: object) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            threads.append((threading.current_thread().name, str(kwargs.get("fun_name"))))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        ahead = optbench.run(config)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    programs = [thread for thread, name in threads if name == "jit(chunk)"]
    assert len(programs) == 2  # one training program per problem (its optimizers together)
    assert any(t.startswith("optbench-compile") for t in programs), threads
    assert "MainThread" in programs, threads  # the first, while a thread compiles the next
    groups = ahead.meta["groups"]  # a problem's first group reports its program's compile
    assert groups[0]["compile_s"] > 0 and groups[2]["compile_s"] > 0
    assert groups[3]["compile_s"] == 0  # (the MLP's second: its gradient flow's, 1 run not 2)
    assert groups[0]["program"] == groups[1]["program"] != groups[2]["program"]
    compilation.clear_programs()
    monkeypatch.setattr(
        executors._CompileAhead, "__init__", lambda self, _: setattr(self, "go", threading.Event())
    )
    monkeypatch.setattr(executors._CompileAhead, "stop", lambda self: None)
    one_by_one = optbench.run(config)
    pd.testing.assert_frame_equal(ahead.runs, one_by_one.runs)
    pd.testing.assert_frame_equal(ahead.curves, one_by_one.curves)
