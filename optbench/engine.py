"""The sweep engine: config -> groups -> batches -> an executor -> results, with resume.

A *group* is one (problem, optimizer) pair: the unit of progress, results and resume.
Its runs are every grid point x seed x start, laid out as a :class:`~optbench.problems.base.
Batch`; the problem compiles one program over the whole batch and runs it
(:meth:`~optbench.problems.base.Problem.run`). A problem that runs its optimizers together
(surfaces and training tasks) gets all its groups at once instead, as a :class:`~optbench.
problems.base.Bundle`: one program and one compile for the problem (:func:`plan_jobs`).
The engine never asks what kind a problem is: it lays out the runs, calls
:func:`execute` (a batch or bundle in, arrays out: the one entry point an executor needs),
and writes the identifying columns of ``runs.csv`` beside the problem's own
(:meth:`~optbench.problems.base.Problem.rows`). Where the batches run is the executor's
business (:mod:`optbench.executors`: this process over its devices, or Dask workers); the
rows are always made here, in the driver, in group order.

Finished groups are checkpointed into the results folder's ``.parts`` every
:data:`CHECKPOINT_S` seconds and when a sweep stops early, so ``resume`` keeps them; a group
is reused only when its identity hash (everything that decides its numbers, see
:func:`group_hash`) is unchanged.

Example:
    >>> from optbench.config import load_config
    >>> cfg = load_config('''
    ... [[problem]]
    ... surface = "rosenbrock"
    ... [optimizer.adam]
    ... learning_rate = [1e-2, 1e-1]
    ... ''')
    >>> [(g.problem.label, g.optimizer.label, batch(g, cfg.settings).size) for g in groups(cfg)]
    [('rosenbrock', 'adam', 2)]
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from optbench.config import Config, OptimizerConfig
from optbench.problems.base import Batch, Bundle, OnProgress, Outputs, Problem, Settings
from optbench.results import files, schema, select

if TYPE_CHECKING:
    from optbench.executors import Executor

CHECKPOINT_S = 10.0
"""Finished groups are copied to the folder's ``.parts`` (for ``resume``): each one as it
finishes during a sweep's first this many seconds (a kill then keeps every finished
group); later as they finish unless the last copy was made less than ten times its own
duration ago (checkpoints then take at most about a tenth of the time), and at least every
this many seconds; always when a sweep stops early (Ctrl-C or an error). A hard kill loses
at most this many seconds of groups; a sweep that completes ends with its final files
alone."""

#: ``progress(event, **info)``: events "start" (groups=N), "group" (index, group, skipped),
#: "chunk" (done, total) while a group runs, and "done" (info) after each group.
Progress = Callable[..., None]


@dataclass(frozen=True)
class Group:
    """One (problem, optimizer) pair of a sweep.

    ``key`` names its folder in ``.parts``; ``hash`` is its identity (:func:`group_hash`).
    """

    problem: Problem
    optimizer: OptimizerConfig
    key: str
    hash: str

    def program_key(self, settings: Settings) -> Hashable:
        """Equal for groups that can share one compiled program (see ``Problem.program_key``)."""
        return self.problem.program_key(self.optimizer, settings)


class GroupResult(NamedTuple):
    """A finished group: its rows of ``runs.csv``, ``curves.csv``, ``trajectories.csv`` and
    ``gradient_flow.csv``, and its entry of ``meta["groups"]`` (plus its ``hash``)."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    trajectories: pd.DataFrame
    gradient_flow: pd.DataFrame
    info: dict[str, Any]


def groups(config: Config) -> list[Group]:
    """Expand a config into its groups, problems outermost."""
    out = []
    for p in config.problems:
        for o in config.optimizers_for(p):
            short = hashlib.sha1(f"{p.label}\0{o.label}".encode()).hexdigest()[:6]
            key = f"{_slug(p.label)}--{_slug(o.label)}-{short}"
            out.append(Group(p, o, key, group_hash(p, o, config.settings)))
    return out


def group_hash(problem: Problem, optimizer: OptimizerConfig, settings: Settings) -> str:
    """The identity of a group (:func:`optbench.results.schema.identity`) from its parts."""
    return schema.identity(
        problem=problem.identity(),
        optimizer={"label": optimizer.label, **optimizer.to_dict()},
        settings=[list(settings.seeds), settings.log_every, settings.tolerance, settings.dtype]
        + ([list(settings.selection_seeds)] if settings.selection_seeds else []),
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# --------------------------------------------------------------------------- one group


def batch(group: Group, settings: Settings) -> Batch:
    """Lay out a group's runs: grid points outermost, then seeds, then starts."""
    o = group.optimizer
    G, K = o.size(), group.problem.n_starts
    seeds = np.asarray(settings.seeds)
    S = len(seeds)
    grid_index = np.repeat(np.arange(G), S * K)
    dtype = np.dtype(settings.dtype)
    traced = {name: o.point_values(name).astype(dtype)[grid_index] for name in o.traced()}
    return Batch(
        problem=group.problem,
        optimizer=o,
        settings=settings,
        grid_index=grid_index,
        seed=np.tile(np.repeat(seeds, K), G),
        start=np.tile(np.arange(K), G * S),
        hyperparameters=traced,
    )


def execute(
    batch: Batch | Bundle, on_progress: OnProgress | None = None
) -> Outputs | tuple[Outputs, ...]:
    """Run one batch: its problem's program over its runs. A batch in, arrays out; a
    bundle (several groups of one problem) in, the outputs of each of its batches out."""
    if isinstance(batch, Bundle):
        return batch.problem.run_together(batch.parts, on_progress)
    return batch.problem.run(batch, on_progress)


def plan_jobs(batches: dict[int, Batch]) -> list[tuple[int | tuple[int, ...], Batch | Bundle]]:
    """The jobs of a sweep, from its groups' batches (by group index): ``(index, batch)`` per
    group, except that the groups of a problem that runs its optimizers together
    (:attr:`~optbench.problems.base.Problem.runs_together`: surfaces and tasks) make one
    ``(indices, bundle)``, one program and one compile for all of them. In the order of
    each job's first group."""
    members: dict[Hashable, list[int]] = {}
    for index, b in batches.items():
        together = id(b.problem) if b.problem.runs_together else ("alone", index)
        members.setdefault(together, []).append(index)
    jobs: list[tuple[int | tuple[int, ...], Batch | Bundle]] = []
    for ix in members.values():
        if len(ix) == 1:
            jobs.append((ix[0], batches[ix[0]]))
        else:
            jobs.append((tuple(ix), Bundle(tuple(batches[i] for i in ix))))
    return jobs


def assemble(group: Group, batch: Batch, outputs: Outputs) -> GroupResult:
    """The group's results: the identifying columns, the problem's columns, ``selected``."""
    p, o = group.problem, group.optimizer
    g, s, k = batch.grid_index, batch.seed, batch.start
    run_ids = np.asarray(
        [f"{p.label}:{o.label}:{a}:{b}:{c}" for a, b, c in zip(g, s, k, strict=True)]
    )
    ident = pd.DataFrame({"run_id": run_ids, "problem": p.label, p.kind: p.name})
    for name, value in p.params.items():
        ident[f"param_{name}"] = value
    ident["optimizer"] = o.label
    ident["algorithm"] = o.name
    for name in o.grid:
        ident[name] = o.point_values(name)[g]
    for name, value in o.switches.items():
        ident[name] = value
    if o.schedule is not None:
        ident["schedule"] = o.schedule.get("kind")
        ident[schema.SCHEDULE_SPEC] = schema.schedule_spec(o.schedule)
    ident["grid_index"] = g
    ident["seed"] = s
    ident["start"] = k
    columns = p.rows(batch, outputs, run_ids)
    runs = pd.concat([ident, columns.runs], axis=1)
    runs["selected"] = select(runs, batch.settings.selection_seeds).to_numpy()
    info = {
        "problem": p.label,
        "optimizer": o.label,
        "runs": batch.size,
        "steps": p.optimizer_steps(),
        "compile_s": round(outputs.compile_s, 4),
        "run_s": round(outputs.run_s, 4),
        "program": outputs.program,
        "hash": group.hash,
    }
    flow = columns.gradient_flow
    flow = schema.empty_gradient_flow() if flow is None else flow
    return GroupResult(runs, columns.curves, columns.trajectories, flow, info)


# --------------------------------------------------------------------------- a sweep


def sweep(
    config: Config,
    folder: Path | None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> Iterator[tuple[GroupResult, bool]]:
    """Run every group of ``config``, yielding ``(result, complete)`` in group order.

    The batches run on ``executor`` (:mod:`optbench.executors`: this process over its
    devices, or Dask workers, finishing in any order; None: :func:`execute` in this process,
    one batch after another); this function alone turns outputs into rows. With a ``folder``,
    groups finished by an earlier (interrupted) run with the same identity are read back
    instead of run, and finished groups are checkpointed into its ``.parts`` (see
    :data:`CHECKPOINT_S`); the caller writes the final files. ``complete`` is True on the
    last group of a sweep that ran to the end.

    When the sweep stops early (Ctrl-C, or a batch that raised), what finished is saved to
    ``.parts`` and yielded (in group order, with gaps where groups did not finish), and then
    the exception is raised again.
    """
    todo = groups(config)
    report = progress or (lambda *a, **k: None)
    report("start", groups=len(todo))
    finished: dict[int, GroupResult] = {}  # not yet yielded
    unsaved: list[tuple[str, GroupResult]] = []  # finished, not yet in .parts
    t_saved, save_s = time.perf_counter(), 0.0  # the last checkpoint: when, how long it took
    t_first = t_saved + CHECKPOINT_S  # until then, every finished group is copied at once
    yielded = 0  # groups 0 .. yielded-1 are out

    # Groups kept from an earlier run, and the jobs of the others (laid out up front, so
    # that the executor can prepare them ahead: the local one compiles them in the background).
    kept = {
        i: files.load_part(folder, g.key, g.hash) if folder else None for i, g in enumerate(todo)
    }
    laid = {i: batch(g, config.settings) for i, g in enumerate(todo) if kept[i] is None}
    planned = plan_jobs(laid)
    starts = {job_indices(job)[0]: (job, b) for job, b in planned}

    def jobs() -> Iterator[tuple[int | tuple[int, ...], Batch | Bundle]]:
        for index, group in enumerate(todo):
            found = kept.pop(index)
            if found is not None:
                report("group", index=index, group=group, skipped=True)
                finished[index] = GroupResult(*found)
                report("done", info=finished[index].info)
            elif index in starts:  # the first group of a job (a bundle's others: as it ends)
                report("group", index=index, group=group, skipped=False)
                job, b = starts[index]
                yield job, b

    def on_chunk(done: int, total: int) -> None:
        report("chunk", done=done, total=total)

    def ready() -> Iterator[tuple[GroupResult, bool]]:
        """The finished groups that come next in group order."""
        nonlocal yielded
        while yielded in finished:
            yielded += 1
            yield finished.pop(yielded - 1), yielded == len(todo)

    failure: BaseException | None = None
    if executor is None:
        stream = ((index, execute(b, on_chunk)) for index, b in jobs())
    else:
        stream = executor.results(jobs(), on_chunk, upcoming=[b for _, b in planned])

    def each(stream: Iterator) -> Iterator[tuple[int, Outputs]]:
        """The groups of each finished job, a bundle's in its order."""
        for job, outputs in stream:
            if not isinstance(job, tuple):
                yield job, outputs
                continue
            for n, (index, out) in enumerate(zip(job, outputs, strict=True)):
                if n:
                    report("group", index=index, group=todo[index], skipped=False)
                yield index, out

    try:
        with contextlib.closing(stream):  # closing it cancels what is still queued
            for index, outputs in each(stream):
                result = assemble(todo[index], laid.pop(index), outputs)
                finished[index] = result
                if folder is not None:
                    unsaved.append((todo[index].key, result))
                    now = time.perf_counter()
                    if now < t_first or now - t_saved >= min(CHECKPOINT_S, 10 * save_s):
                        _save_parts(folder, unsaved)
                        t_saved = time.perf_counter()
                        save_s = t_saved - now
                report("done", info=result.info)  # after: a Ctrl-C here keeps this group
                yield from ready()
            yield from ready()  # groups kept from an earlier run after the last one run
    except (Exception, KeyboardInterrupt) as err:
        failure = err
    finally:
        if folder is not None and yielded < len(todo):
            _save_parts(folder, unsaved)
    if failure is not None:
        for index in sorted(finished):
            yield finished[index], False
        raise failure


def job_indices(job: int | tuple[int, ...]) -> tuple[int, ...]:
    """The group indices of a job's index (:func:`plan_jobs`): one, or a bundle's."""
    return job if isinstance(job, tuple) else (job,)


def split_job(
    index: int | tuple[int, ...], batch: Batch | Bundle
) -> list[tuple[int | tuple[int, ...], Batch | Bundle]]:
    """A job as separate batches, where its problem runs on a cluster that way
    (:attr:`~optbench.problems.base.Problem.split_on_cluster`: a training task's groups, so
    that they run on several workers at once): ``(index, batch)`` per group; else the job.
    :func:`sweep` takes the outputs of a bundle's groups one by one as well as together."""
    if isinstance(batch, Bundle) and batch.problem.split_on_cluster:
        return list(zip(job_indices(index), batch.parts, strict=True))
    return [(index, batch)]


def _save_parts(folder: Path, unsaved: list[tuple[str, GroupResult]]) -> None:
    """Copy finished groups into ``folder/.parts`` (what ``resume`` reads); empties the list."""
    for key, found in unsaved:
        files.save_part(folder, key, *found)
    unsaved.clear()
