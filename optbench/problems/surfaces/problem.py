"""The surface problem: an analytic surface, its start points, gradient noise and budget.

Config table::

    [[problem]]
    surface = "rosenbrock"              # a catalogue name
    label = "rosenbrock_far"            # default: the surface name
    start = [[-1.5, 2.0], [1.5, -0.5]]  # default: the surface's own start point(s)
    noise = 0.1                         # std of additive Gaussian gradient noise
    steps = 2000                        # default: the top-level steps
    tolerance = 1e-4                    # default: the top-level tolerance
    params = { a = 1.0, b = 100.0 }
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import numpy as np
import pandas as pd

from optbench import compilation, validate
from optbench._errors import ConfigError, closest
from optbench.problems.base import (
    Batch,
    Columns,
    OnProgress,
    Outputs,
    Problem,
    ResolveContext,
    Settings,
    optimizer_key,
)
from optbench.problems.surfaces.program import event_steps, surface_program
from optbench.results.records import records

if TYPE_CHECKING:
    from optbench.config import OptimizerConfig
    from optbench.problems.surfaces.surface import Surface

#: Curve points per run when ``log_every`` is not given.
CURVE_POINTS = 500
#: Start coordinates get a column of their own in runs.csv up to this many dimensions.
MAX_START_COLUMNS = 10


@dataclass(frozen=True, eq=False)
class SurfaceProblem(Problem):
    """A resolved surface problem (see the module docstring).

    ``surface`` is the built :class:`~optbench.surfaces.Surface`; ``folder`` the extra
    surface folder it may come from; ``source`` a digest of what defines it (the surface
    file's bytes, or the registered function's name), so editing a surface file changes
    the identity of every group that uses it.
    """

    kind: ClassVar[str] = "surface"
    keys: ClassVar[tuple[str, ...]] = ("start", "noise", "steps", "tolerance")
    runs_together: ClassVar[bool] = True

    label: str
    surface: Surface = field(repr=False)
    params: Mapping[str, Any]
    start: tuple[tuple[float, ...], ...] | None  # None: the surface's default start(s)
    noise: float
    steps: int
    folder: str | None
    source: str
    tolerance: float | None = None  # None: the top-level tolerance

    # ---------------------------------------------------------------- resolve

    @classmethod
    def resolve(cls, raw: Mapping[str, Any], context: ResolveContext) -> SurfaceProblem:
        """Validate a ``surface = ...`` table (see the module docstring)."""
        from optbench.problems import surfaces

        folders = [context.surfaces] if context.surfaces else []
        catalogue = surfaces.catalogue(folders)
        name = validate.string(raw["surface"], "surface")
        if name not in catalogue:
            raise ConfigError(
                f"unknown surface {name!r}; " + closest(name, catalogue), key="surface"
            )
        params = validate.table(raw.get("params", {}), "params", example="params = { a = 1.0 }")
        spec = catalogue[name]
        try:
            surface = spec.build(**params)
        except ConfigError as err:
            raise err.within(key="params") from None
        for key in ("epochs", "batch_size"):
            if key in raw:
                raise ConfigError(f"surfaces take `steps`, not `{key}`; remove it", key=key)
        start = None
        if "start" in raw:
            pts = validate.points(raw["start"], surface.dim, key="start")
            start = tuple(tuple(float(v) for v in p) for p in pts)
        noise = validate.number(raw.get("noise", 0.0), "noise", minimum=0.0)
        steps = validate.integer(raw.get("steps", context.steps), "steps", minimum=1)
        tolerance = None
        if "target" in raw:
            raise ConfigError("surfaces take `tolerance` (or escape), not `target`", key="target")
        if "tolerance" in raw:
            tolerance = validate.number(raw["tolerance"], "tolerance", minimum=0.0)
            if surface.min_value is None:
                raise ConfigError(
                    f"surface {name!r} has no known minimum (its target is escaping); "
                    "remove `tolerance`",
                    key="tolerance",
                )
        return cls(
            label=validate.string(raw.get("label", name), "label"),
            surface=surface,
            params=dict(surface.params),
            start=start,
            noise=noise,
            steps=steps,
            folder=context.surfaces,
            source=_source(spec),
            tolerance=tolerance,
        )

    # ---------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        # A surface's function is compiled from its file and cannot be pickled: another
        # process rebuilds it from the catalogue (the same file, checked by ``source``).
        state = {k: v for k, v in self.__dict__.items() if k != "surface"}
        return {**state, "surface": self.surface.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        from optbench.problems import surfaces

        state = dict(state)
        name = state.pop("surface")
        spec = surfaces.catalogue([state["folder"]] if state["folder"] else [])[name]
        surface = spec.build(**state["params"])
        if _source(spec) != state["source"]:
            raise ConfigError(
                f"the surface {name!r} differs in this process from the one the sweep was "
                "resolved with; give every process the same surface files",
                key="surface",
            )
        object.__setattr__(self, "__dict__", {**state, "surface": surface})

    # ---------------------------------------------------------------- the interface

    @property
    def name(self) -> str:
        """The catalogue name of the surface."""
        return self.surface.name

    @property
    def n_starts(self) -> int:
        """The number of start points."""
        return len(self.starts())

    def starts(self) -> np.ndarray:
        """The start points, ``[n, dim]`` float64."""
        pts = self.start if self.start is not None else self.surface.start
        return np.asarray(pts, dtype=np.float64).reshape(-1, self.surface.dim)

    def optimizer_steps(self) -> int:
        """The step budget of every run."""
        return self.steps

    def to_dict(self) -> dict[str, Any]:
        """The resolved config table."""
        d: dict[str, Any] = {"label": self.label, "surface": self.name, "steps": self.steps}
        if self.start is not None:
            d["start"] = [list(s) for s in self.start]
        if self.noise:
            d["noise"] = self.noise
        if self.params:
            d["params"] = dict(self.params)
        if self.tolerance is not None:
            d["tolerance"] = self.tolerance
        return d

    def tolerance_for(self, settings: Settings) -> float:
        """The loss gap to the minimum that counts as reached: this problem's ``tolerance``,
        else the sweep's."""
        return settings.tolerance if self.tolerance is None else self.tolerance

    def identity(self) -> dict[str, Any]:
        """The resolved table and what defines the surface (its file's contents)."""
        return {**self.to_dict(), "source": self.source}

    def program_key(self, optimizer: OptimizerConfig, settings: Settings) -> Hashable:
        """Shapes and structure only: the surface's definition, dimension, number of starts,
        recorded steps, whether there is noise, the dtype and the optimizer's structure. The
        parameter values, start points and noise level are numbers a program can trace."""
        events, _, _ = self._events(settings)
        return (
            self.kind,
            self.source,
            self.surface.dim,
            self.n_starts,
            self.steps,
            hashlib.sha1(events.tobytes()).hexdigest(),
            self.noise > 0,
            self.tolerance_for(settings),
            settings.dtype,
            optimizer_key(optimizer),
        )

    def _events(self, settings: Settings) -> tuple[np.ndarray, ...]:
        log_every = settings.log_every or max(1, self.steps // CURVE_POINTS)
        return event_steps(self.steps, log_every, self.surface.dim == 2)

    def run(self, batch: Batch, on_progress: OnProgress | None = None) -> Outputs:
        """One jitted program over the batch's runs (:mod:`.program`)."""
        return self.run_together([batch], on_progress)[0]

    def run_together(
        self, batches: Sequence[Batch], on_progress: OnProgress | None = None
    ) -> tuple[Outputs, ...]:
        """Every batch's program (one per optimizer) in one jitted program, one compile.

        A surface program is small and XLA's cost is mostly per program, not per operation:
        the quickstart's six Rosenbrock programs compiled in 3.4-4.0 s one by one and in
        1.1-1.2 s as one (same bits; 2026-12-02, 2 cores). The batches' programs stay
        independent computations inside it, so each run's numbers are those of its batch
        alone (tested bit for bit). The first batch reports the compile time; the run time
        is shared out by number of runs.
        """
        settings = batches[0].settings
        events, _, _ = self._events(settings)
        np_dtype = np.dtype(settings.dtype)
        tolerance, starts = self.tolerance_for(settings), self.starts().astype(np_dtype)
        programs = [
            surface_program(
                self.surface,
                b.optimizer.factory(self.steps),
                events=events,
                noise=self.noise,
                tolerance=tolerance,
                record_x=self.surface.dim == 2,
            )
            for b in batches
        ]
        args = [
            (dict(b.hyperparameters), b.seed.astype(np.uint32), starts[b.start]) for b in batches
        ]

        def together(all_args: list) -> list:
            return [program(*a) for program, a in zip(programs, all_args, strict=True)]

        # The program key (structure and shapes of each part, with its number of runs), the
        # values this program still compiles in (the surface object: its function, box and
        # minimum, built once per parameter set; the noise level).
        parts = tuple((self.program_key(b.optimizer, settings), b.size) for b in batches)
        key = (parts, self.surface, self.noise)
        with jax.enable_x64(settings.dtype == "float64"):
            compiled, compile_s, _ = compilation.program(key, lambda: jax.jit(together).lower(args))
            t1 = time.perf_counter()
            out = jax.block_until_ready(compiled(args))
            run_s = time.perf_counter() - t1
        name = compilation.program_id(key)
        share = run_s / sum(b.size for b in batches)
        return tuple(
            Outputs(jax.tree.map(np.asarray, o), 0.0 if i else compile_s, share * b.size, name)
            for i, (o, b) in enumerate(zip(out, batches, strict=True))
        )

    def rows(self, batch: Batch, outputs: Outputs, run_ids: np.ndarray) -> Columns:
        """Start coordinates and outcome per run; the loss curve; 2-D trajectories."""
        out = outputs.arrays
        events, curve_mask, traj_mask = self._events(batch.settings)
        runs = pd.DataFrame(index=pd.RangeIndex(batch.size))
        if self.surface.dim <= MAX_START_COLUMNS:
            starts = self.starts()
            for i, coord in enumerate(self.surface.coords):
                runs[f"start_{coord}"] = starts[batch.start, i]
        hit = out["hit"]
        runs["final_loss"] = out["final_loss"].astype(np.float64)
        runs["best_loss"] = out["best_loss"].astype(np.float64)
        runs["steps_to_tol"] = pd.Series(np.where(hit >= 0, hit, np.nan)).astype("Int64")
        runs["diverged"] = out["diverged"]
        runs["escaped"] = out["escaped"]
        runs["stop_step"] = out["stop"].astype(np.int64)
        stop = out["stop"]
        curves = records(
            run_ids,
            events[curve_mask],
            stop,
            {"loss": out["losses"][:, curve_mask]},
            at_stop={"loss": out["final_loss"]},
        )
        trajectories = pd.DataFrame(columns=["run_id", "step", "x", "y"])
        if self.surface.dim == 2:
            xs, x_stop = out["xs"][:, traj_mask], out["x_stop"]
            trajectories = records(
                run_ids,
                events[traj_mask],
                stop,
                {"x": xs[..., 0], "y": xs[..., 1]},
                at_stop={"x": x_stop[:, 0], "y": x_stop[:, 1]},
            )
        return Columns(runs, curves, trajectories)


def _source(spec: Any) -> str:
    """A digest of what defines a catalogue entry: its file's bytes, or its Python function."""
    if spec.file is not None:
        return hashlib.sha256(spec.file.read_bytes()).hexdigest()[:16]
    return f"register():{spec.name}"
