"""Sweeps on Dask workers and over local devices: the same files as a local run, faults.

The slow tests share one real ``LocalCluster`` of two spawned, single-threaded workers (the
one ``--workers 2`` starts); the test that kills a worker comes last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import optbench
from optbench import ConfigError, engine, executors
from optbench.cli import app
from optbench.config import load_config, override
from optbench.problems.base import Outputs
from optbench.problems.surfaces.problem import SurfaceProblem
from optbench.problems.tasks import shards

FILES = ("runs.csv", "curves.csv", "trajectories.csv", "gradient_flow.csv")

SURFACES = """
name = "s"
steps = 200
seeds = 2
dtype = "DTYPE"
[[problem]]
surface = "rosenbrock"
noise = 0.1
start = [[-1.5, 2.0], [1.5, -0.5]]
[[problem]]
surface = "quadratic_nd"
[optimizer.adam]
learning_rate = [1e-2, 1e-1]
[optimizer.momentum]
learning_rate = [1e-3, 1e-2]
"""

TASKS = """
name = "t"
seeds = 3
dtype = "DTYPE"
[[problem]]
task = "digits_cnn"
epochs = 1
params = { dropout = 0.2 }
[[problem]]
task = "digits_rnn"
epochs = 1
params = { cell = "gru", hidden = 8 }
[optimizer.adam]
learning_rate = [1e-3, 1e-2]
[optimizer.sgd]
learning_rate = 0.1
"""


def config(text: str, dtype: str = "float64") -> str:
    return text.replace("DTYPE", dtype)


def assert_same_files(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def assert_close_files(a: Path, b: Path, rtol: float) -> None:
    """The same rows and columns, the same non-float values, floats within ``rtol``."""
    import pandas as pd

    for name in FILES:
        x, y = pd.read_csv(a / name), pd.read_csv(b / name)
        assert list(x.columns) == list(y.columns) and len(x) == len(y), name
        for col in x.columns:
            if x[col].dtype.kind == "f":
                np.testing.assert_allclose(x[col], y[col], rtol=rtol, err_msg=f"{name}:{col}")
            else:
                assert x[col].equals(y[col]), f"{name}:{col}"


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    with executors.connect(2) as executor:
        yield executor.client


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """Local runs of the surface config, once per dtype: ``local(dtype) -> folder``."""
    done: dict[str, Path] = {}

    def get(dtype: str) -> Path:
        if dtype not in done:
            done[dtype] = tmp_path_factory.mktemp(f"local-{dtype}")
            optbench.run(config(SURFACES, dtype), done[dtype], overwrite=True)
        return done[dtype]

    return get


# --------------------------------------------------------------------------- no cluster


def test_cluster_options_need_the_dask_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    cfg = tmp_path / "exp.toml"
    cfg.write_text(config(SURFACES))
    for flag in (["--workers", "2"], ["--cluster", "tcp://localhost:8786"]):
        result = CliRunner().invoke(app, ["run", str(cfg), "--no-render", "--out", "r", *flag])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("optbench: error: ") and 'pip install "optbench[dask]"' in line
    with pytest.raises(ConfigError, match=r'pip install "optbench\[dask\]"'):
        optbench.run(config(SURFACES), tmp_path / "api", cluster=2)
    assert not (tmp_path / "r").exists() and not (tmp_path / "api").exists()


def test_cluster_values_are_checked_before_anything_starts(tmp_path):
    pytest.importorskip("distributed")
    for bad in (0, -1, True, 2.5, ""):
        with pytest.raises(ConfigError, match="cluster"):
            executors.check(bad)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(config(SURFACES))
    out = ["--no-render", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, ["run", str(cfg), *out, "--cluster", "x:1", "--workers", "2"])
    assert result.exit_code == 2 and "not both" in result.stderr
    result = CliRunner().invoke(app, ["run", str(cfg), *out, "--cluster", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "no Dask scheduler answers at 'tcp://127.0.0.1:1'" in line
    assert not (tmp_path / "r").exists()  # a mistyped address writes nothing


# --------------------------------------------------------------------------- same numbers


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_surface_sweep_on_workers_writes_the_same_files(dtype, client, local, tmp_path):
    events = []
    res = optbench.run(
        config(SURFACES, dtype),
        tmp_path / "d",
        cluster=client,
        progress=lambda e, **i: events.append(e),
    )
    assert_same_files(local(dtype), tmp_path / "d")
    assert events.count("done") == 4 and res.meta["complete"]  # one per finished batch
    groups = [(g["problem"], g["optimizer"]) for g in res.meta["groups"]]
    assert groups == [(p, o) for p in ("rosenbrock", "quadratic_nd") for o in ("adam", "momentum")]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dtype", "problems"), [("float32", ["digits_cnn", "digits_rnn"]), ("float64", ["digits_rnn"])]
)
def test_a_task_sweep_on_workers_writes_the_same_files(dtype, problems, client, tmp_path):
    # The driver's shard layout travels with each batch: one shard of 6 runs here, where a
    # worker on this machine would make two of 3 (which changes the CNN's float32 rounding).
    # float64 runs the recurrent task alone: the CNN's compile is the slow part of the test.
    # Here a problem's two optimizers run in one program; there, one task each.
    body = override(load_config(config(TASKS, dtype)), problems=problems)
    with shards.fixed(1):
        optbench.run(body, tmp_path / "l")
        res = optbench.run(body, tmp_path / "d", cluster=client)
    assert_same_files(tmp_path / "l", tmp_path / "d")
    assert sorted(set(res.runs.task)) == sorted(problems)


@dataclasses.dataclass(frozen=True, eq=False)
class Probe(SurfaceProblem):
    """A surface problem whose "program" reports the shard count where it runs."""

    def run(self, batch, on_progress=None):
        return Outputs({"shards": np.asarray(shards.workers())}, 0.0, 0.0)


@pytest.mark.slow
def test_workers_split_task_runs_as_the_driver_does_and_leave_ctrl_c_to_it(client):
    cfg = load_config(config(SURFACES))
    group = engine.groups(cfg)[0]
    probe = dataclasses.replace(group, problem=_as(Probe, group.problem))
    for count in (1, 3):
        with shards.fixed(count):
            ((index, out),) = executors.Dask(client).results(
                [(7, engine.batch(probe, cfg.settings))]
            )
        assert index == 7 and int(out.arrays["shards"]) == count
    # Ctrl-C in a terminal reaches the workers too: they leave it to the driver.
    assert set(client.run(signal.getsignal, signal.SIGINT).values()) == {signal.SIG_IGN}


LOGREG = """
seeds = 3
[[problem]]
task = "digits_logreg"
epochs = 1
[[problem]]
task = "digits_rnn"
epochs = 1
params = { cell = "gru", hidden = 8 }
[optimizer.adam]
learning_rate = 1e-2
"""


@pytest.mark.slow
def test_runs_shard_over_every_local_device(local, tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import jax, optbench
        from optbench import compilation, engine, executors
        from optbench.config import load_config
        assert len(jax.devices()) == 2, jax.devices()
        out = Path(sys.argv[1])
        for dtype in ("float64", "float32"):
            text = Path(sys.argv[2]).read_text().replace("DTYPE", dtype)
            optbench.run(text, out / dtype)
            cfg = load_config(text)
            b = executors.on_devices(engine.batch(engine.groups(cfg)[0], cfg.settings))
            assert len(b.seed.sharding.device_set) == 2
        meshes = {len(s.device_set) for c, *_ in compilation._PROGRAMS.values()
                  for s in jax.tree.leaves(c.input_shardings)}
        assert meshes == {2}, meshes  # every surface program ran on both devices
        compilation.clear_programs()
        optbench.run(Path(sys.argv[3]).read_text(), out / "task")
        # the tasks' training programs too (a model's initialisation and gradient-flow
        # programs, run once per group, stay on one device)
        meshes = {len(s.device_set) for k, (c, *_) in compilation._PROGRAMS.items()
                  if k[0] not in ("init", "flow") for s in jax.tree.leaves(c.input_shardings)}
        assert meshes == {2}, meshes
        """
    )
    (tmp_path / "cfg.toml").write_text(SURFACES)
    (tmp_path / "task.toml").write_text(LOGREG)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    args = [str(tmp_path), str(tmp_path / "cfg.toml"), str(tmp_path / "task.toml")]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for dtype in ("float64", "float32"):
        assert_same_files(local(dtype), tmp_path / dtype)
    optbench.run(LOGREG, tmp_path / "task-here")
    # Split over devices, a task's program is a shard_map: XLA compiles the recurrent
    # cell's loop a little differently and its float32 numbers move by an ulp or so
    # (measured on the GRU: 4.8e-7 on one validation loss of 2.1; float64: 4.4e-16); the
    # others are bit for bit the same.
    assert_close_files(tmp_path / "task-here", tmp_path / "task", rtol=1e-5)
    here, there = (optbench.load(tmp_path / d).runs for d in ("task-here", "task"))
    logreg = here["problem"] == "digits_logreg"
    assert here[logreg].equals(there[logreg])


# --------------------------------------------------------------------------- faults


@pytest.mark.slow
def test_ctrl_c_cancels_the_queue_keeps_what_finished_and_resume_finishes(client, local, tmp_path):
    out = tmp_path / "r"

    def interrupt(event, **info):
        if event == "done":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optbench.run(config(SURFACES), out, cluster=client, progress=interrupt)
    deadline = time.monotonic() + 20
    while _optbench_tasks(client) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _optbench_tasks(client)  # nothing left queued or running
    partial = optbench.load(out)
    assert partial.meta["complete"] is False and 1 <= len(partial.meta["groups"]) < 4
    kept = []
    optbench.run(
        config(SURFACES),
        out,
        resume=True,
        cluster=client,
        progress=lambda e, **i: kept.append(i["skipped"]) if e == "group" else None,
    )
    assert sum(kept) == len(partial.meta["groups"]) and len(kept) == 4
    assert_same_files(local("float64"), out)


BUG = "a bug in this batch"


@dataclasses.dataclass(frozen=True, eq=False)
class Boom(SurfaceProblem):
    """A surface problem whose program raises (after the others have had time to finish),
    one group at a time (its optimizers not in one program: each group a task of its own)."""

    runs_together = False

    def run(self, batch, on_progress=None):
        time.sleep(2.0)
        raise RuntimeError(BUG)


@pytest.mark.slow
def test_a_batch_that_raises_fails_the_sweep_once_and_keeps_what_finished(client, tmp_path):
    cfg = load_config(config(SURFACES))
    cfg = dataclasses.replace(cfg, problems=(cfg.problems[0], _as(Boom, cfg.problems[1])))
    with pytest.raises(RuntimeError, match=BUG) as caught:
        optbench.run(cfg, tmp_path / "r", cluster=client)
    shown = "".join(traceback.format_exception(caught.value))
    assert shown.count(BUG) == 1 and "in _work" in shown  # with the worker's frames
    logs = str(client.get_worker_logs())
    assert BUG not in logs and "Compute Failed" not in logs  # the workers log nothing
    partial = optbench.load(tmp_path / "r")
    assert {g["problem"] for g in partial.meta["groups"]} == {"rosenbrock"}
    assert len(list((tmp_path / "r" / ".parts").glob("*/group.json"))) == 2


@pytest.mark.slow
def test_the_cli_on_a_cluster_exits_130_on_ctrl_c_and_resumes(client, local, tmp_path, monkeypatch):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(config(SURFACES))
    calls = []
    assemble = engine.assemble

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return assemble(*args)

    monkeypatch.setattr(engine, "assemble", interrupted)
    address = client.scheduler.address
    args = ["run", str(cfg), "--no-render", "--out", str(tmp_path / "r"), "--cluster", address]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130, (result.output, result.stderr)
    assert "--resume" in result.stderr
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, (result.output, result.stderr)
    assert_same_files(local("float64"), tmp_path / "r")


@pytest.mark.slow
def test_a_killed_worker_costs_only_its_batch(client, tmp_path):
    body = config(SURFACES).replace("steps = 200", "steps = 2000")
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:  # kill the first worker seen running a batch, by its pid
        while not stop.is_set() and not killed:
            busy = client.run(_executing)
            for address, n in busy.items():
                if n:
                    pid = client.run(os.getpid, workers=[address])[address]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        optbench.run(body, tmp_path / "d", cluster=client)
    finally:
        stop.set()
        thread.join()
    assert killed, "no batch was seen running"
    optbench.run(body, tmp_path / "l")
    assert_same_files(tmp_path / "l", tmp_path / "d")  # nothing lost, nothing twice
    with contextlib.suppress(Exception):
        client.wait_for_workers(2, timeout=30)
    assert killed[0] not in client.run(os.getpid).values()


def _as(cls: type, problem: SurfaceProblem) -> SurfaceProblem:
    """The same problem as an instance of a test subclass."""
    return cls(**{f.name: getattr(problem, f.name) for f in dataclasses.fields(problem)})


def _executing(dask_worker) -> int:
    return len(dask_worker.state.executing)


def _optbench_tasks(client) -> list[str]:
    return client.run_on_scheduler(
        lambda dask_scheduler: [k for k in dask_scheduler.tasks if str(k).startswith("optbench-")]
    )
