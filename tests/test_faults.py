"""Faults: nothing lost, nothing mixed, one clean line for every fault (issue 15).

Each test reproduces a failure found by attacking optbench as a hostile user would: kills,
races, full disks, damaged folders, huge and odd configs. Faults that need a process of
their own (kill -9, SIGINT, a second writer, a file-size limit) run one; CI runs as root,
so storage faults use a path under a regular file or RLIMIT_FSIZE, never mode bits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import optbench
from optbench import ConfigError, engine, sizes
from optbench.cli import app
from optbench.config import load_config
from optbench.results import files, folder, schema

CONFIG = """
name = "f"
steps = 60
[[problem]]
surface = "rosenbrock"
[[problem]]
surface = "booth"
[optimizer.adam]
learning_rate = [0.01, 0.1]
[optimizer.sgd]
learning_rate = 1e-3
"""
RESULT_FILES = (schema.RUNS, schema.CURVES, schema.TRAJECTORIES)


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result, *words: str) -> str:
    """The CLI failed with exit code 2 and one line naming ``words``, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    err = result.stderr.strip()
    assert err.startswith("optbench: error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output + result.stderr
    for word in words:
        assert word in err, err
    return err


def leftovers(root: Path) -> list[Path]:
    """Temporary files and locks anywhere under ``root``."""
    return [p for p in root.rglob("*") if p.name.startswith((files.TMP_PREFIX, folder.LOCK))]


def child(script: str, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text(CONFIG)
    return tmp_path


# --------------------------------------------------------------------------- 1. overwrite


def test_overwrite_never_deletes_what_optbench_did_not_write(workdir):
    # The reported case: a project folder with the user's own config.toml, src/, notes.md.
    project = workdir / "myproject"
    (project / "src").mkdir(parents=True)
    (project / "config.toml").write_text("mine")
    (project / "notes.md").write_text("notes")
    (project / "src" / "main.py").write_text("code")
    for flag in ("--overwrite", "--resume"):
        one_line(
            invoke("run", "exp.toml", "--out", project, flag, "--no-render"), "not an optbench"
        )
    assert sorted(p.name for p in project.rglob("*")) == [
        "config.toml",
        "main.py",
        "notes.md",
        "src",
    ]

    # A folder optbench made: the user adds files next to ours, even inside figures/.
    out = workdir / "r"
    assert invoke("run", "exp.toml", "--out", out, "--no-render").exit_code == 0
    assert invoke("report", out).exit_code == 0
    assert (out / files.MARKER).is_file() and (out / "figures").is_dir()
    (out / "notes.md").write_text("mine")
    (out / "figures" / "my-plot.png").write_bytes(b"mine")
    # ... and replaces figures/ by a link to a folder of their own with a same-named file
    elsewhere = workdir / "elsewhere"
    (out / "figures").rename(elsewhere)
    (out / "figures").symlink_to(elsewhere)
    assert invoke("run", "exp.toml", "--out", out, "--overwrite", "--no-render").exit_code == 0
    assert (out / "notes.md").read_text() == "mine"
    assert (elsewhere / "my-plot.png").read_bytes() == b"mine"
    assert (elsewhere / "rosenbrock-loss.png").is_file()  # not ours to follow the link to
    assert not (out / "report.html").exists()  # ours, listed in the marker: gone
    assert optbench.load(out).meta["complete"] is True


def test_links_planted_in_a_results_folder_are_never_written_through(tmp_path):
    out, victim = tmp_path / "r", tmp_path / "victim.txt"
    victim.write_text("precious")
    optbench.run(CONFIG, out)
    (out / folder.LOCK).symlink_to(victim)  # a lock file that points elsewhere
    with pytest.raises(ConfigError, match="a link is in the way"):
        optbench.run(CONFIG, out, overwrite=True)
    (out / folder.LOCK).unlink()
    (out / files.MARKER).unlink()
    (out / files.MARKER).symlink_to(victim)  # a marker that points elsewhere
    with pytest.raises(ConfigError, match="not an optbench results folder"):
        optbench.run(CONFIG, out, resume=True)
    assert victim.read_text() == "precious"
    with pytest.raises(ConfigError, match="not a valid folder name"):
        optbench.run(CONFIG, tmp_path / "a\0b")


# --------------------------------------------------------------------------- 2. identity


def test_resume_after_editing_a_surface_file_never_mixes_the_two(tmp_path):
    surfaces = tmp_path / "s"
    surfaces.mkdir()
    bowl = textwrap.dedent("""
        name = "bowl"
        formula = "(x - 1)**2 + a*y**2"
        coords = ["x", "y"]
        plot_bounds = [[-2.0, 2.0], [-2.0, 2.0]]
        start = [-1.5, 1.5]
        [params]
        a = 4.0
        """)
    (surfaces / "bowl.toml").write_text(bowl)
    config = f'name = "b"\nsteps = 40\nsurfaces = "{surfaces}"\n' + textwrap.dedent("""
        [[problem]]
        surface = "booth"
        [[problem]]
        surface = "bowl"
        [[problem]]
        surface = "rosenbrock"
        [optimizer.adam]
        learning_rate = [0.01, 0.1]
        """)

    def stop_at_third(event, **info):
        if event == "group" and info["index"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optbench.run(config, tmp_path / "r", progress=stop_at_third)
    assert optbench.load(tmp_path / "r").runs["problem"].unique().tolist() == ["booth", "bowl"]
    (surfaces / "bowl.toml").write_text(bowl.replace("a*y**2", "a*y**4"))
    skipped = []
    optbench.run(
        config,
        tmp_path / "r",
        resume=True,
        progress=lambda e, **i: skipped.append(i["skipped"]) if e == "group" else None,
    )
    assert skipped == [True, False, False]  # booth is kept, the edited surface runs again
    optbench.run(config, tmp_path / "fresh")
    for name in RESULT_FILES:
        assert (tmp_path / "r" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


# --------------------------------------------------------------------------- 3, 8, 9: kill -9

KILLED = """
import sys, time
import optbench
from optbench.results import files

config, out = sys.argv[1], sys.argv[2]

def progress(event, **info):
    if event == "start":
        print("start", time.time())
    elif event == "done":
        print("done", info["info"]["problem"], info["info"]["optimizer"])
    elif event == "group" and info["index"] == 2:
        with files.atomic_path(out + "/runs.csv") as tmp:  # a write in flight at the kill
            tmp.write_text("half a fi")
            print("writing", time.time())
            time.sleep(600)

optbench.run(open(config).read(), out, progress=progress)
"""


@pytest.mark.slow
def test_a_killed_sweep_keeps_its_groups_locks_out_others_and_leaves_no_debris(workdir):
    out = workdir / "r"
    proc = child(KILLED, "exp.toml", str(out))
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.split())
            if lines[-1][0] == "writing":
                break
        started, writing = float(lines[0][1]), float(lines[-1][1])
        assert [w[0] for w in lines].count("done") == 2, lines
        assert writing - started < engine.CHECKPOINT_S  # a kill within the first 10 s ...

        # 3. a second writer, while the first holds the folder: one line naming its pid
        one_line(
            invoke("run", "exp.toml", "--out", out, "--overwrite", "--no-render"),
            f"pid {proc.pid}",
            "being written",
        )
        assert not (out / schema.RUNS).exists()
    finally:
        proc.kill()  # SIGKILL: nothing runs in the child after this
        proc.wait()
    assert [p.name.split("-")[2] for p in out.glob(files.TMP_PREFIX + "*")] == ["runs"]
    assert (out / folder.LOCK).is_file()  # a stale lock, its process dead

    # ... keeps the two groups that finished; the stale lock is taken over and the
    # temporary file the kill left is removed
    skipped = []
    optbench.run(
        CONFIG,
        out,
        resume=True,
        progress=lambda e, **i: skipped.append(i["skipped"]) if e == "group" else None,
    )
    assert skipped == [True, True, False, False]
    assert leftovers(out) == []
    optbench.run(CONFIG, workdir / "fresh")
    for name in RESULT_FILES:
        assert (out / name).read_bytes() == (workdir / "fresh" / name).read_bytes()


def test_debris_of_a_process_killed_before_its_marker_does_not_block_the_folder(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / folder.LOCK).write_text("999999999 elsewhere\n")  # its process is gone
    (out / f"{files.TMP_PREFIX}marker-x").write_text("")
    optbench.run(CONFIG, out)  # neither --overwrite nor --resume needed
    assert leftovers(out) == [] and (out / files.MARKER).is_file()


def test_the_lock_is_held_only_while_writing_and_is_reentrant(tmp_path):
    out = tmp_path / "r"
    with folder.claim(out):
        assert (out / folder.LOCK).is_file() and (out / files.MARKER).is_file()
        with folder.claim(out, overwrite=True):  # the CLI holds it around optbench.run
            pass
        assert folder.holds_lock(out)
    assert not (out / folder.LOCK).exists() and not folder.holds_lock(out)


# --------------------------------------------------------------------------- 4. (done) / 9. resume


def test_resume_of_a_complete_folder_recomputes_nothing(tmp_path):
    out = tmp_path / "r"
    optbench.run(CONFIG, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    events = []
    again = optbench.run(CONFIG, out, resume=True, progress=lambda e, **i: events.append(e))
    assert events == [] and len(again.runs) == 6
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before

    # one more optimizer: only its groups run, and the files are those of a fresh run
    bigger = CONFIG + '[optimizer.mom]\nname = "momentum"\nlearning_rate = 1e-3\n'
    skipped = []
    optbench.run(
        bigger,
        out,
        resume=True,
        progress=lambda e, **i: skipped.append(i["skipped"]) if e == "group" else None,
    )
    assert skipped == [True, True, False, True, True, False]
    optbench.run(bigger, tmp_path / "fresh")
    for name in (*RESULT_FILES, schema.PROFILES, schema.SCORES):
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name


def test_a_task_whose_loss_stays_finite_at_chance_accuracy_is_not_diverged():
    res = optbench.run("""
[[problem]]
task = "digits_mlp"
epochs = 2
[optimizer.sgd]
learning_rate = [0.1, 30.0]
""")
    good, bad = res.runs.sort_values("learning_rate").to_dict("records")
    assert bad["test_accuracy"] < 0.2 and pd.notna(bad["final_loss"])  # useless, finite
    assert not bad["diverged"]  # diverged means non-finite (or out of the box), no more
    assert good["selected"] and not bad["selected"]  # validation loss ranks it last


# --------------------------------------------------------------------------- 6. integers


@pytest.mark.parametrize(
    "text, words",
    [
        ("steps = 3_000_000_000", ["steps", "32-bit"]),
        ("log_every = 4_294_967_296", ["log_every", "32-bit"]),
        ("seeds = [4_294_967_296]", ["seeds", "4,294,967,295"]),
        ("seeds = 2_000_000_000", ["seeds", "1,000,000"]),
    ],
)
def test_integers_past_what_the_engine_represents_are_refused(workdir, text, words):
    (workdir / "big.toml").write_text(text + "\n" + CONFIG.replace('name = "f"\nsteps = 60\n', ""))
    one_line(invoke("run", "big.toml", "--no-render"), *words)
    assert not (workdir / "results").exists()


def test_configs_that_break_the_parser_or_the_file_system_are_one_line(workdir):
    (workdir / "deep.toml").write_text("name = " + "[" * 50_000 + "]" * 50_000 + "\n")
    one_line(invoke("run", "deep.toml"), "deep.toml", "not valid TOML")
    (workdir / "nl.toml").write_text('name = "a\\nb"\n' + CONFIG.replace('name = "f"', ""))
    one_line(invoke("run", "nl.toml"), "name", "not usable as a folder name")
    assert sorted(p.name for p in workdir.iterdir()) == ["deep.toml", "exp.toml", "nl.toml"]


def test_steps_epochs_and_seeds_from_the_command_line_are_checked_too(workdir):
    one_line(invoke("run", "exp.toml", "--steps", str(2**31)), "--steps", "32-bit")
    one_line(invoke("run", "exp.toml", "--seeds", str(10**7)), "--seeds")
    (workdir / "task.toml").write_text(
        '[[problem]]\ntask = "digits_logreg"\nepochs = 100_000_000\nbatch_size = 1\n'
        "[optimizer.adam]\n"
    )
    one_line(invoke("run", "task.toml"), "epochs", "optimizer steps", "32-bit")
    assert not (workdir / "results").exists()


# --------------------------------------------------------------------------- 7. size guards


def test_a_sweep_too_large_is_refused_in_a_moment_with_its_size(workdir):
    # the reported kind of sweep: 600,000 runs of 1,000 steps (~28 GB of CSV, ~100 GiB)
    (workdir / "huge.toml").write_text(
        CONFIG.replace("steps = 60", "steps = 1000\nseeds = 100_000")
    )
    t0 = time.perf_counter()
    err = one_line(invoke("run", "huge.toml"), "--force", "GiB", "runs")
    assert time.perf_counter() - t0 < 5, err
    assert not (workdir / "results").exists()
    # one axis of a billion values is refused before it is ever built
    with pytest.raises(ConfigError, match="1,000,000"):
        optbench.run(
            CONFIG + '[optimizer.a2]\nname = "adam"\n'
            "b1 = { linspace = [0.1, 0.9], num = 1_000_000_000 }\n"
        )


def test_the_size_guards_can_be_forced(tmp_path, monkeypatch):
    monkeypatch.setattr(sizes, "MAX_OUTPUT_BYTES", 10_000)
    with pytest.raises(ConfigError, match="CSV files, more than the"):
        optbench.run(CONFIG, tmp_path / "r")
    assert not (tmp_path / "r").exists()
    optbench.run(CONFIG, tmp_path / "r", force=True)
    monkeypatch.setattr(sizes, "available_memory", lambda: 2**20)
    with pytest.raises(ConfigError, match="of memory"):
        optbench.run(CONFIG)  # even with nothing written: memory is memory
    est = sizes.estimate(load_config(CONFIG))
    written = sum((tmp_path / "r" / n).stat().st_size for n in RESULT_FILES)
    assert written / 3 < est.output_bytes < written * 3  # the estimate is in the right range


# --------------------------------------------------------------------------- 8. one line


def test_an_output_folder_that_cannot_be_made_is_one_line(workdir):
    one_line(invoke("run", "exp.toml", "--out", "exp.toml/r"), "exp.toml/r", "not a folder")
    one_line(invoke("run", "exp.toml", "--out", "x" * 300), "too long")
    one_line(invoke("run", "exp.toml", "--out", "exp.toml"), "not a folder")
    assert sorted(p.name for p in workdir.iterdir()) == ["exp.toml"]


def test_labels_too_long_for_a_file_name_still_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "CHECKPOINT_S", 0.0)
    label = "p" * 200
    config = CONFIG.replace('surface = "booth"', f'surface = "booth"\nlabel = "{label}"')

    def stop_at_last(event, **info):
        if event == "group" and info["index"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optbench.run(config, tmp_path / "r", progress=stop_at_last)
    assert all(len(p.name) <= 255 for p in (tmp_path / "r" / files.PARTS).iterdir())
    skipped = []
    optbench.run(
        config,
        tmp_path / "r",
        resume=True,
        progress=lambda e, **i: skipped.append(i["skipped"]) if e == "group" else None,
    )
    assert skipped == [True, True, True, False]


@pytest.mark.parametrize(
    "selection, words",
    [("--optimizers", ["--optimizers", "selects nothing"]), ("--problems", ["--problems"])],
)
def test_an_empty_selection_is_one_line(workdir, selection, words):
    one_line(invoke("run", "exp.toml", selection, ",", "--no-render"), *words)
    assert not (workdir / "results").exists()


@pytest.mark.parametrize("name", ["chain", "identity", "clip", "softmax_cross_entropy", "tree_map"])
def test_optax_names_that_are_not_optimizers_are_one_line(workdir, name):
    text = CONFIG.replace("[optimizer.sgd]", f'[optimizer.sgd]\nname = "optax:{name}"')
    (workdir / "x.toml").write_text(text.replace("learning_rate = 1e-3", ""))
    one_line(invoke("run", "x.toml", "--no-render"), "optimizer.sgd.name", f"optax:{name}")


DAMAGE = {
    "empty runs.csv": (schema.RUNS, lambda b: b"", "is empty"),
    "runs.csv cut mid-line": (schema.RUNS, lambda b: b[: len(b) // 2], "truncated"),
    "runs.csv cut at a line": (
        schema.RUNS,
        lambda b: b"\n".join(b.split(b"\n")[:3]) + b"\n",
        "rows",
    ),
    "no curves.csv": (schema.CURVES, None, "missing"),
    "curves.csv not CSV": (schema.CURVES, lambda b: b'"\n', "damaged"),
    "broken meta.json": (schema.META, lambda b: b[:20], "not valid JSON"),
    "broken config.toml": (schema.CONFIG, lambda b: b"[[[\n", "damaged"),
}


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    out = tmp_path_factory.mktemp("complete") / "r"
    optbench.run(CONFIG, out)
    return out


@pytest.mark.parametrize("case", list(DAMAGE))
def test_render_and_report_on_a_damaged_folder_are_one_line(complete, tmp_path, case):
    import shutil

    name, damage, words = DAMAGE[case]
    out = tmp_path / "r"
    shutil.copytree(complete, out)
    if damage is None:
        (out / name).unlink()
    else:
        (out / name).write_bytes(damage((out / name).read_bytes()))
    for command in ("render", "report"):
        one_line(invoke(command, out), name, words, "--resume")
    assert leftovers(out) == [] and not (out / "report.html").exists()
    # the fix the line names works: --resume runs it again
    optbench.run(CONFIG, out, resume=True)
    assert optbench.load(out).meta["complete"] is True


def test_a_partial_folder_renders_what_it_has(tmp_path):
    def stop_at_third(event, **info):
        if event == "group" and info["index"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optbench.run(CONFIG, tmp_path / "r", progress=stop_at_third)
    result = invoke("report", tmp_path / "r")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "r" / "report.html").is_file()


FULL_DISK = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from optbench.cli import main
sys.argv = ["optbench", *sys.argv[2:]]
main()
"""


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_the_old_files_whole(workdir):
    out = workdir / "r"
    optbench.run(CONFIG, out)
    before = {n: (out / n).read_bytes() for n in (*RESULT_FILES, schema.META)}
    # the same sweep with more seeds: every group's copy fits under the limit, the final
    # curves.csv does not (a full disk at the second of five files)
    bigger = CONFIG.replace("steps = 60", "steps = 60\nseeds = 40")
    (workdir / "big.toml").write_text(bigger)
    limit = 400_000
    proc = child(
        FULL_DISK, str(limit), "run", "big.toml", "--out", str(out), "--resume", "--no-render"
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    line = err.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, err
    assert "file-size limit" in line and schema.CURVES in line, line
    assert {n: (out / n).read_bytes() for n in before} == before  # all or nothing
    assert leftovers(out) == []
    # more room: --resume finishes it from the groups it kept
    optbench.run(bigger, out, resume=True)
    assert len(optbench.load(out).runs) == 40 * 6


def test_ctrl_c_during_a_sweep_exits_130_with_one_line(workdir, monkeypatch):
    from optbench import cli

    def interrupt(self, event, **info):
        if event == "group" and info["index"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli._ProgressBar, "__call__", interrupt)
    result = invoke("run", "exp.toml", "--out", "r", "--no-render")
    assert result.exit_code == 130, (result.output, result.stderr)
    err = result.stderr.strip()
    assert err.startswith("optbench: interrupted; finished groups are kept in r"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in result.output + err
    assert len(optbench.load("r").runs) == 3  # the two rosenbrock groups
    assert leftovers(workdir / "r") == []


@pytest.mark.slow
def test_ctrl_c_while_drawing_exits_130_with_one_line(workdir):
    (workdir / "draw.toml").write_text(
        CONFIG.replace("[optimizer.adam]", '[[problem]]\nsurface = "beale"\n[optimizer.adam]')
    )
    proc = child(
        "import sys; from optbench.cli import main; sys.argv[0] = 'optbench'; main()",
        "run",
        "draw.toml",
        "--out",
        "r",
        cwd=workdir,
    )
    for line in proc.stdout:
        if line.startswith("results:"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err.strip().startswith("optbench: interrupted after the sweep; the results"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert leftovers(workdir / "r") == []
    assert optbench.load(workdir / "r").meta["complete"] is True


def test_no_temporary_file_survives_an_error_inside_a_write(tmp_path):
    with pytest.raises(ZeroDivisionError), files.together():
        files.write_text(tmp_path / "a.txt", "new a")
        files.write_text(tmp_path / "b.txt", str(1 / 0))
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a.txt").write_text("old a")
    with pytest.raises(KeyboardInterrupt), files.together():
        files.write_text(tmp_path / "a.txt", "new a")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "old a"
