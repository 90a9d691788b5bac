"""The one interface every kind of problem implements, and the types the engine passes around.

A *problem* is one ``[[problem]]`` table of a config, resolved and validated once into a
frozen, hashable, picklable object (a subclass of :class:`Problem`: a surface or a training
task). The engine never asks what kind a problem is; it calls the five methods below:

- :meth:`Problem.resolve` (a classmethod): a config table -> the problem, or a
  :class:`~optbench.ConfigError` naming the key and the fix;
- :meth:`Problem.program_key`: which groups can share one compiled program (same shapes,
  only traced values differ: hyperparameters, seeds, starts, numeric problem parameters);
- :meth:`Problem.identity`: everything that decides the numbers (file contents, not paths),
  hashed into the group's identity for resume;
- :meth:`Problem.run`: the program over a :class:`Batch` of runs: a batch in, arrays out
  (:class:`Outputs`), picklable both ways so another process can run it
  (:meth:`Problem.run_together`: several groups of the problem, a :class:`Bundle`, at once);
- :meth:`Problem.rows`: those arrays -> the problem's columns of the results schema.

Adding a kind of problem means one package under ``optbench/problems/`` with one subclass,
listed in :data:`optbench.problems.KINDS`; nothing else changes.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from optbench.config import OptimizerConfig

#: ``on_progress(done, total)``: units of the problem's budget done (steps or epochs).
OnProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Settings:
    """The sweep-wide values that decide a run's numbers (the config's top level)."""

    seeds: tuple[int, ...]
    log_every: int | None  # None: each problem picks its own curve resolution
    tolerance: float
    dtype: str  # "float32" or "float64"
    selection_seeds: tuple[int, ...] | None = None  # the seeds that select; None: all


@dataclass(frozen=True)
class ResolveContext:
    """What resolving a problem table may need from the rest of the config."""

    steps: int  # the top-level ``steps``
    surfaces: str | None  # the folder of extra surface files, resolved


@dataclass(frozen=True, eq=False)
class Batch:
    """A group's runs, ready to execute: ``R`` runs, each a (grid point, seed, start).

    ``hyperparameters`` holds one value per run of each traced hyperparameter
    (:meth:`~optbench.config.OptimizerConfig.traced`: the gridded ones and the learning
    rate; the optimizer factory compiles the others in).
    Everything here is plain data or a resolved spec, so a batch pickles.
    """

    problem: Problem
    optimizer: OptimizerConfig
    settings: Settings
    grid_index: np.ndarray  # [R] int
    seed: np.ndarray  # [R] int
    start: np.ndarray  # [R] int, index into the problem's start points
    hyperparameters: Mapping[str, np.ndarray]  # name -> [R]

    @property
    def size(self) -> int:
        """The number of runs, ``R``."""
        return int(self.grid_index.shape[0])

    @property
    def label(self) -> str:
        """``problem-optimizer``: the group's name in logs and task names."""
        return f"{self.problem.label}-{self.optimizer.label}"


@dataclass(frozen=True, eq=False)
class Bundle:
    """Groups of one problem that run as one program (:meth:`Problem.run_together`): one
    :class:`Batch` per group, each with its own optimizer. Plain data too: a bundle pickles."""

    parts: tuple[Batch, ...]

    @property
    def problem(self) -> Problem:
        """The problem every part shares."""
        return self.parts[0].problem

    @property
    def settings(self) -> Settings:
        """The sweep's settings."""
        return self.parts[0].settings

    @property
    def size(self) -> int:
        """The number of runs of all parts."""
        return sum(b.size for b in self.parts)

    @property
    def label(self) -> str:
        """``problem-optimizer+optimizer...``."""
        return f"{self.problem.label}-{'+'.join(b.optimizer.label for b in self.parts)}"


class Outputs(NamedTuple):
    """What a problem's program returns for a batch: arrays, how long compiling (0 when the
    program was reused) and running took, and the program's name
    (:func:`optbench.compilation.program_id`)."""

    arrays: dict[str, np.ndarray]
    compile_s: float
    run_s: float
    program: str = ""


class Columns(NamedTuple):
    """A problem's share of the results of a batch, rows in the batch's run order.

    ``runs``: the columns after the engine's identifying ones (start coordinates, the outcome,
    task metrics); ``curves``, ``trajectories`` and ``gradient_flow`` (None: none): tidy
    frames keyed by ``run_id``.
    """

    runs: pd.DataFrame
    curves: pd.DataFrame
    trajectories: pd.DataFrame
    gradient_flow: pd.DataFrame | None = None


class Problem(abc.ABC):
    """A resolved problem (see the module docstring). Subclasses are frozen dataclasses with
    ``eq=False``: two problems are equal when their kind and :meth:`identity` are."""

    #: The config key that names the catalogue entry (``surface = "..."``), also the
    #: results column holding it.
    kind: ClassVar[str]
    #: The config keys this kind accepts besides ``label``, ``params`` and its ``kind``.
    keys: ClassVar[tuple[str, ...]]
    #: Whether the engine hands all of a problem's groups (its optimizers) to
    #: :meth:`run_together` at once, as a :class:`Bundle`.
    runs_together: ClassVar[bool] = False
    #: Whether a cluster runs those groups as separate tasks instead (on several workers at
    #: once): for kinds whose programs take long to run, not only to compile.
    split_on_cluster: ClassVar[bool] = False

    label: str
    params: Mapping[str, Any]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.identity() == self.identity()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.kind, json.dumps(self.identity(), sort_keys=True, default=str)))

    @classmethod
    @abc.abstractmethod
    def resolve(cls, raw: Mapping[str, Any], context: ResolveContext) -> Problem:
        """Validate one config table (``raw``) into a problem."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The catalogue name of the surface or task."""

    @property
    @abc.abstractmethod
    def n_starts(self) -> int:
        """Start points per (grid point, seed): each is a run of its own."""

    @abc.abstractmethod
    def optimizer_steps(self) -> int:
        """Optimizer steps per run (what schedules are fitted to)."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The resolved config table (what ``config.toml`` holds for this problem)."""

    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that decides this problem's numbers, as plain data to hash."""

    @abc.abstractmethod
    def program_key(self, optimizer: OptimizerConfig, settings: Settings) -> Hashable:
        """Equal for two (problem, optimizer) groups that can share one compiled program."""

    @abc.abstractmethod
    def run(self, batch: Batch, on_progress: OnProgress | None = None) -> Outputs:
        """Compile and execute this problem's program over ``batch``."""

    def run_together(
        self, batches: Sequence[Batch], on_progress: OnProgress | None = None
    ) -> tuple[Outputs, ...]:
        """Several groups of this problem (a batch each, each its own optimizer) at once:
        here one after another; a kind with :attr:`runs_together` compiles them into one
        program. Either way a group's numbers are those :meth:`run` gives it alone."""
        return tuple(self.run(b, on_progress) for b in batches)

    @abc.abstractmethod
    def rows(self, batch: Batch, outputs: Outputs, run_ids: np.ndarray) -> Columns:
        """Turn ``outputs`` into this problem's columns of the results schema."""


def optimizer_key(optimizer: OptimizerConfig) -> tuple[Any, ...]:
    """The optimizer's share of a program key: its algorithm (name, and what names its code:
    :func:`optbench.optimizers._registry.code_of`), switches, schedule, which
    hyperparameters are traced (not their values: those are the program's arguments) and
    the values of those compiled in."""
    traced = tuple(optimizer.traced())
    fixed = tuple(sorted((k, v[0]) for k, v in optimizer.grid.items() if k not in traced))
    # json, not a tuple: a schedule holds lists (a step schedule's boundaries)
    schedule = json.dumps(optimizer.schedule, sort_keys=True) if optimizer.schedule else None
    from optbench.optimizers._registry import code_of

    switches = tuple(sorted(optimizer.switches.items()))
    return (optimizer.name, code_of(optimizer.name), switches, schedule, traced, fixed)
