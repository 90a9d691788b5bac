"""The command line: a thin typer app over the library functions.

``optbench run [CONFIG]`` runs a sweep (no CONFIG: the built-in quickstart) and renders it;
``optbench render DIR`` and ``optbench report DIR`` redraw a results folder;
``optbench list`` shows the optimizers, surfaces, tasks and built-in configs.

A user error prints one line, ``optbench: error: FILE: KEY: what is wrong; the fix``, and
exits 2 (no traceback, nothing written); an internal failure exits 1; Ctrl-C exits 130
after keeping the finished groups.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import traceback
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from optbench import sizes
from optbench._errors import ConfigError
from optbench.compilation import enable_default_cache
from optbench.interrupts import sigint

EXIT_USER, EXIT_INTERNAL, EXIT_INTERRUPT = 2, 1, 130


def _click_class(name: str) -> type[Exception]:
    """click's exception classes, wherever this typer version keeps click."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


_UsageError = _click_class("UsageError")
_ClickException = _click_class("ClickException")


class _Interrupted(Exception):
    """Ctrl-C outside the places that answer it themselves (typer would exit 130 silently)."""


class _App(TyperGroup):
    """Turns every error into the one-line form of the design (never a usage box)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted from None

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        try:
            rv = super().main(
                args=args, prog_name=prog_name or "optbench", standalone_mode=False, **extra
            )
        except ConfigError as err:
            _fail(str(err))
        except _UsageError as err:
            ctx = getattr(err, "ctx", None)
            where = ctx.command_path if ctx else "optbench"
            _fail(f"{err.format_message()}; see '{where} --help'")  # type: ignore[attr-defined]
        except _ClickException as err:
            _fail(err.format_message(), err.exit_code)  # type: ignore[attr-defined]
        except (typer.Abort, KeyboardInterrupt, _Interrupted):
            _fail("interrupted", EXIT_INTERRUPT)
        except MemoryError as err:  # past the size guards' estimate (a parameter's own size)
            _fail(f"out of memory ({err}); shrink the sweep or its surface or task parameters")
        except Exception:  # an internal failure: the traceback helps a bug report
            traceback.print_exc()
            _fail("internal error (the traceback is above); please report it", EXIT_INTERNAL)
        sys.exit(rv if isinstance(rv, int) else 0)


def _fail(message: str, code: int = EXIT_USER) -> None:
    print(f"optbench: error: {message}", file=sys.stderr)
    sys.exit(code)


app = typer.Typer(
    cls=_App,
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark and visualise deep-learning optimizers on loss surfaces and small tasks.",
    pretty_exceptions_enable=False,
)

# Shared option types.
OutDir = Annotated[
    Path | None, typer.Option("--out", "-o", help="Results folder [default: results/NAME].")
]
ResultsDir = Annotated[Path, typer.Argument(help="A results folder written by `optbench run`.")]
Labels = Annotated[str | None, typer.Option(help="Comma-separated labels to keep (default: all).")]


@app.command()
def run(
    config: Annotated[
        str | None,
        typer.Argument(help="A TOML file or a built-in config name [default: quickstart]."),
    ] = None,
    out: OutDir = None,
    steps: Annotated[
        int | None, typer.Option(help="Steps for every step-based problem (not epoch-based ones).")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs for every epoch-based problem.")
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="Run seeds 0..N-1.")] = None,
    optimizers: Labels = None,
    problems: Labels = None,
    surfaces: Annotated[
        Path | None, typer.Option(help="An extra folder of surface TOML files.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing results folder.")] = False,
    resume: Annotated[bool, typer.Option(help="Finish an interrupted results folder.")] = False,
    render: Annotated[
        bool, typer.Option("--render/--no-render", help="Draw GIFs and the report at the end.")
    ] = True,
    force: Annotated[
        bool, typer.Option(help="Run even a sweep the size guards refuse (memory, disk).")
    ] = False,
    cluster: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS", help="Run the batches on the Dask scheduler at tcp://HOST:PORT."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Run the batches on N local Dask worker processes.")
    ] = None,
) -> None:
    """Run a benchmark sweep, write tidy CSV files and render GIFs and a report."""
    from optbench import api
    from optbench import config as cfg_mod
    from optbench.results.folder import claim

    cfg = cfg_mod.load_config(config or "quickstart", surfaces=surfaces)
    cfg = cfg_mod.override(
        cfg,
        steps=steps,
        epochs=epochs,
        seeds=seeds,
        optimizers=_split(optimizers),
        problems=_split(problems),
    )
    if note := cfg_mod.budget_note(cfg, steps=steps, epochs=epochs):
        print(f"optbench: note: {note}", file=sys.stderr)
    folder = out if out is not None else Path("results") / cfg.name
    where = _cluster(cluster, workers)  # a missing extra: before anything is written
    sizes.check(cfg, folder, force=force)  # before anything is written
    enable_default_cache()
    from optbench import rendering

    # the folder stays locked through the sweep and the drawing
    with claim(folder, overwrite=overwrite, resume=resume):
        # the drawing processes start (and import) while the sweep runs
        pool = rendering.start_workers() if render else None
        try:
            with _ProgressBar() as bar:
                try:
                    with sigint():
                        results = api.run(
                            cfg,
                            folder,
                            overwrite=overwrite,
                            resume=resume,
                            force=True,
                            progress=bar,
                            cluster=where,
                        )
                except KeyboardInterrupt:
                    bar.stop()
                    print(
                        f"optbench: interrupted; finished groups are kept in {folder} "
                        "(`--resume` finishes the sweep)",
                        file=sys.stderr,
                    )
                    raise typer.Exit(EXIT_INTERRUPT) from None
            with _drawing(folder, "after the sweep"):  # the results are complete from here
                _print_summary(results)
                if warning := rendering.edge_warning(rendering.summary(results)):
                    print(f"optbench: warning: {warning}", file=sys.stderr)
                typer.echo(f"results: {folder}")
                if render:
                    *drawn, page = rendering.render_and_report(folder, pool=pool)
                    for path in drawn:
                        if path.suffix == ".gif":
                            typer.echo(f"animation: {path}")
                    typer.echo(f"report: {page}")
        finally:
            if pool is not None:
                pool.terminate()


@app.command("render")
def render_cmd(folder: ResultsDir) -> None:
    """Draw the trajectory GIFs (and PNG/PDF of the last frame) of a results folder."""
    from optbench import rendering

    with _drawing(folder):
        paths = rendering.render(folder, workers=None)  # on all cores (at most two)
    for path in paths:
        typer.echo(str(path))


@app.command("report")
def report_cmd(folder: ResultsDir) -> None:
    """Write the self-contained HTML report, its figures and summary.csv / summary.tex."""
    from optbench import rendering

    with _drawing(folder):
        page = rendering.report(folder, workers=None)  # on all cores (at most two)
    typer.echo(str(page))


class What(StrEnum):
    """What `optbench list` shows."""

    optimizers = "optimizers"
    surfaces = "surfaces"
    tasks = "tasks"
    configs = "configs"


@app.command("list")
def list_cmd(
    what: Annotated[What | None, typer.Argument(help="Show only this catalogue.")] = None,
) -> None:
    """List the optimizers (with defaults), surfaces, tasks and built-in configs."""
    from rich.console import Console
    from rich.table import Table

    from optbench import catalogue

    console = Console()
    for section, rows in catalogue.listing(what.value if what else None).items():
        table = Table(title=section, title_justify="left")
        for column in rows[0]:
            table.add_column(column, overflow="fold")
        for row in rows[1:]:
            table.add_row(*row)
        console.print(table)


@contextlib.contextmanager
def _drawing(folder: Path, when: str = "while drawing") -> Iterator[None]:
    """Drawing a results folder: with its lock held (no sweep may write it meanwhile; the
    temporary files of a killed process are removed) and Ctrl-C answered with one line and
    exit code 130 (``when``: what the line says was interrupted)."""
    from optbench.results import folder as folder_mod

    try:
        with contextlib.ExitStack() as stack:
            if (folder / "runs.csv").is_file():
                stack.enter_context(folder_mod.lock(folder))
                folder_mod.remove_temporary(folder)
            stack.enter_context(sigint())
            yield
    except KeyboardInterrupt:
        print(
            f"optbench: interrupted {when}; the results in {folder} are complete "
            f"(`optbench render {folder}` and `optbench report {folder}` draw them again)",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_INTERRUPT) from None


def _cluster(address: str | None, workers: int | None) -> str | int | None:
    """``--cluster`` / ``--workers`` as ``optbench.run``'s ``cluster``, checked (the dask
    extra installed, a worker count >= 1) without starting anything."""
    from optbench import executors

    if address is not None and workers is not None:
        raise ConfigError("give one of --cluster and --workers, not both", key="--workers")
    value = address if address is not None else workers
    executors.check(value, key="--cluster" if address is not None else "--workers")
    return value


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


class _ProgressBar:
    """A rich progress bar over groups (on a terminal); tasks advance it per chunk."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            disable=not sys.stderr.isatty(),
            console=Console(stderr=True),
        )
        self.total: Any = None
        self.chunk: Any = None

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop drawing (idempotent)."""
        self.progress.stop()

    def __call__(self, event: str, **info: Any) -> None:
        if event == "start":
            self.total = self.progress.add_task("groups", total=info["groups"], note="")
        elif event == "group":
            g = info["group"]
            kept = " (kept)" if info["skipped"] else ""
            self.progress.update(self.total, note=f"{g.problem.label} x {g.optimizer.label}{kept}")
            if self.chunk is not None:
                self.progress.remove_task(self.chunk)
                self.chunk = None
        elif event == "chunk":
            if self.chunk is None:
                self.chunk = self.progress.add_task("  training", total=info["total"], note="")
            self.progress.update(self.chunk, completed=info["done"])
        elif event == "done":
            i = info["info"]
            self.progress.update(
                self.total,
                advance=1,
                note=f"{i['problem']} x {i['optimizer']}: "
                f"compile {i['compile_s']:.2f} s, run {i['run_s']:.2f} s",
            )


def _print_summary(results: Any) -> None:
    import pandas as pd

    from optbench.rendering import summary

    table = summary(results)
    if table.empty:
        return
    cols = [
        "problem",
        "optimizer",
        "learning_rate",
        "final_loss_median",
        "steps_to_tol_median",
        "diverged_fraction",
        "escaped_fraction",
        "test_accuracy_median",
    ]
    table = table[[c for c in cols if c in table]].rename(
        columns=lambda c: c.replace("_median", "").replace("_fraction", "")
    )
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    finally:
        # Everything is written by now: spare the interpreter's last garbage collection,
        # which walks every object JAX and matplotlib left (0.55 s of a quickstart's 9.6 s
        # here, 2026-12-02). Frozen objects are still freed by their reference counts.
        gc.freeze()
