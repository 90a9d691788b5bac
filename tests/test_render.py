"""Animated GIFs and stills from a synthetic results folder (numpy optimizers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from demo import demo_surface, write_demo
from PIL import Image

import optbench
from optbench import results
from optbench.rendering import frame_steps, render
from optbench.rendering.gif import delays


@pytest.fixture(autouse=True)
def _stand_in_surfaces(monkeypatch):
    monkeypatch.setattr(
        results.Results, "surface", lambda self, label: demo_surface(self.problem(label)["surface"])
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("demo"), steps=200)


def _gif_info(path):
    im = Image.open(path)
    durations = []
    for i in range(im.n_frames):
        im.seek(i)
        durations.append(im.info["duration"])
    return im.n_frames, durations, im.info.get("loop")


def test_render_writes_gif_png_pdf(demo):
    paths = render(demo, frames=40, mp4=False)
    names = {p.name for p in paths}
    assert {"rosenbrock.gif", "rosenbrock.png", "rosenbrock.pdf", "saddle.gif"} <= names
    assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)
    n, durations, loop = _gif_info(demo / "rosenbrock.gif")
    assert n == 40
    assert loop == 0
    assert all(d >= 20 and d % 10 == 0 for d in durations)
    assert durations[-1] > durations[0]  # the last frame is held
    assert (demo / "rosenbrock.pdf").read_bytes().startswith(b"%PDF")


def test_frames_differ_and_show_the_step(demo):
    render(demo, frames=20, problems=["rosenbrock"], mp4=False)
    im = Image.open(demo / "rosenbrock.gif")
    first = np.asarray(im.convert("RGB"))
    im.seek(im.n_frames - 1)
    last = np.asarray(im.convert("RGB"))
    assert first.shape == last.shape
    assert (first != last).any(axis=2).mean() > 0.01  # trails and curves grew


def test_size_budget_met(demo):
    render(demo, frames=150, max_bytes=300_000, problems=["saddle"], mp4=False)
    size = (demo / "saddle.gif").stat().st_size
    assert size <= 300_000
    n, durations, loop = _gif_info(demo / "saddle.gif")
    assert n >= 24 and loop == 0 and all(d >= 20 and d % 10 == 0 for d in durations)


def test_impossible_budget_is_a_config_error(demo):
    with pytest.raises(optbench.ConfigError, match="cannot fit"):
        render(demo, frames=30, max_bytes=2_000, problems=["rosenbrock"], mp4=False)


def test_diverged_and_escaped_runs_render(tmp_path):
    folder = write_demo(tmp_path / "d", steps=150, task=False)
    runs = pd.read_csv(folder / "runs.csv")
    # make the diverged (sgd, lr 3e-3) and escaped runs the animated ones
    runs["selected"] = runs["grid_index"] == 2
    runs.to_csv(folder / "runs.csv", index=False)
    assert runs.loc[runs.selected & (runs.problem == "rosenbrock"), "diverged"].any()
    assert runs.loc[runs.selected & (runs.problem == "saddle"), "escaped"].any()
    paths = render(folder, frames=30, mp4=False)
    assert (folder / "rosenbrock.gif").is_file() and (folder / "saddle.gif").is_file()
    assert len(paths) == 6


def test_no_2d_surface_is_a_config_error(tmp_path):
    folder = write_demo(tmp_path / "t", steps=50, surfaces=(), task=True)
    with pytest.raises(optbench.ConfigError, match="optbench report"):
        render(folder)


def test_unknown_problem_suggests(demo):
    with pytest.raises(optbench.ConfigError, match="rosenbrock"):
        render(demo, problems=["rosenbrok"])


def test_frame_schedule_is_log_spaced_with_exact_count():
    s = frame_steps(np.arange(10_001), 100)
    assert len(s) == 100 and s[0] == 0 and s[-1] == 10_000
    assert (np.diff(s) > 0).all()
    assert (s < 100).sum() > 30  # early steps get many frames
    lin = frame_steps(np.arange(10_001), 11, "linear")
    assert lin.tolist() == list(range(0, 10_001, 1000))
    assert frame_steps(np.array([0, 1, 2]), 50).tolist() == [0, 1, 2]


def test_delays_are_browser_safe():
    for n, dur in [(10, 0.05), (150, 8.0), (7, 3.33)]:
        d = delays(n, dur, hold=1.234)
        assert len(d) == n and all(x >= 20 and x % 10 == 0 for x in d)


def test_drawing_jobs_are_shared_with_worker_processes_in_order():
    import math

    from optbench.rendering.pool import share, start_workers

    jobs = [(float(i),) for i in range(12)]
    assert share(math.sqrt, jobs, None) == [math.sqrt(i) for i in range(12)]
    workers = start_workers(2)
    if workers is None:  # a one-core machine: this process is the only worker
        pytest.skip("one core")
    try:
        assert share(math.sqrt, jobs, workers) == [math.sqrt(i) for i in range(12)]
        with pytest.raises(ValueError, match="math domain"):
            share(math.sqrt, [(-1.0,)] * 4, workers)
    finally:
        workers.terminate()
