"""The training-task problem: a model and data set (or sequence generator) with its budget.

Config table::

    [[problem]]
    task = "digits_cnn"              # a catalogue name (``optbench list tasks``)
    label = "cnn_dropout"            # default: the task name
    epochs = 20                      # dataset tasks (default 10); step tasks take ``steps``
    batch_size = 64                  # default 64
    params = { dropout = 0.3 }
    target = { metric = "val_accuracy", value = 0.95 }   # time-to-target (or val_loss)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from optbench import validate
from optbench._errors import ConfigError
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
from optbench.problems.tasks.plan import Part, TaskResult
from optbench.problems.tasks.train import TRACED_PARAMS
from optbench.results.records import records
from optbench.results.schema import TASK_METRICS
from optbench.results.scoring import TARGET_METRICS

if TYPE_CHECKING:
    from optbench.config import OptimizerConfig
    from optbench.problems.tasks.registry import Task

DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 64
#: Evaluation points per run when ``log_every`` is not given (each evaluates the
#: validation and test sets): dataset tasks get one per epoch up to this many...
CURVE_POINTS = 50
#: ... and step tasks this many: each evaluates 2,000 sequences, which at 50 points cost
#: about as much as the training itself (the adding LSTM, 2,000 steps; measured).
STEP_CURVE_POINTS = 20


@dataclass(frozen=True, eq=False)
class TaskProblem(Problem):
    """A resolved training task (see the module docstring)."""

    kind: ClassVar[str] = "task"
    runs_together: ClassVar[bool] = True
    split_on_cluster: ClassVar[bool] = True
    keys: ClassVar[tuple[str, ...]] = ("steps", "epochs", "batch_size", "target")

    label: str
    task: Task = field(repr=False)
    params: Mapping[str, Any]
    steps: int | None  # step tasks (``adding``)
    epochs: int | None  # dataset tasks
    batch_size: int
    target: Mapping[str, Any] | None = None  # {"metric": ..., "value": ...}

    @classmethod
    def resolve(cls, raw: Mapping[str, Any], context: ResolveContext) -> TaskProblem:
        """Validate a ``task = ...`` table (see the module docstring)."""
        from optbench.problems import tasks

        name = validate.choice(raw["task"], "task", tasks.names(), what="task")
        for key in ("start", "noise", "tolerance"):
            if key in raw:
                raise ConfigError(f"tasks take no `{key}`; remove it", key=key)
        params = validate.table(raw.get("params", {}), "params", example="params = { l2 = 1e-4 }")
        try:
            task = tasks.get(name, **params)
        except ConfigError as err:
            raise err.within(key="params") from None
        steps = epochs = None
        if task.budget == "epochs":
            if "steps" in raw:
                raise ConfigError(f"task {name!r} trains for `epochs`, not `steps`", key="steps")
            epochs = validate.integer(raw.get("epochs", DEFAULT_EPOCHS), "epochs", minimum=1)
        else:
            if "epochs" in raw:
                raise ConfigError(f"task {name!r} trains for `steps`, not `epochs`", key="epochs")
            steps = validate.integer(raw.get("steps", context.steps), "steps", minimum=1)
        batch_size = validate.integer(
            raw.get("batch_size", DEFAULT_BATCH_SIZE), "batch_size", minimum=1
        )
        problem = cls(
            label=validate.string(raw.get("label", name), "label"),
            task=task,
            params=dict(task.params),
            steps=steps,
            epochs=epochs,
            batch_size=batch_size,
            target=_target(raw["target"], task) if "target" in raw else None,
        )
        problem.optimizer_steps()  # checks the batch size against the data set
        return problem

    def __getstate__(self) -> dict[str, Any]:
        # The task's model holds functions: another process rebuilds it from the catalogue.
        return {**self.__dict__, "task": self.task.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        from optbench.problems import tasks

        task = tasks.get(state["task"], **state["params"])
        object.__setattr__(self, "__dict__", {**state, "task": task})

    @property
    def name(self) -> str:
        """The catalogue name of the task."""
        return self.task.name

    @property
    def n_starts(self) -> int:
        """Tasks start from a seeded initialisation: one start."""
        return 1

    @property
    def budget(self) -> int:
        """The budget in the task's own unit (epochs or steps)."""
        return int(self.epochs if self.task.budget == "epochs" else self.steps)  # type: ignore[arg-type]

    def optimizer_steps(self) -> int:
        """Optimizer steps per run (epochs x minibatches for dataset tasks)."""
        return self.task.num_steps(self.budget, self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config table."""
        d: dict[str, Any] = {"label": self.label, "task": self.name}
        for key in ("steps", "epochs", "batch_size"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.params:
            d["params"] = dict(self.params)
        if self.target is not None:
            d["target"] = dict(self.target)
        return d

    def identity(self) -> dict[str, Any]:
        """The resolved table but the target (it scores the runs, it does not change them):
        the task's code is covered by the optbench version."""
        return {k: v for k, v in self.to_dict().items() if k != "target"}

    def program_key(self, optimizer: OptimizerConfig, settings: Settings) -> Hashable:
        """The task, its structural parameters (cell, width, batchnorm, activation, ...), the
        budget, batch size, curve points, dtype and the optimizer's structure; the numeric
        regularisation parameters (dropout, l1, l2, augmentation) are traceable."""
        structure = tuple(sorted((k, v) for k, v in self.params.items() if k not in TRACED_PARAMS))
        return (
            self.kind,
            self.name,
            structure,
            self.budget,
            self.batch_size,
            self._log_every(settings),
            settings.dtype,
            optimizer_key(optimizer),
        )

    def _log_every(self, settings: Settings) -> int:
        points = CURVE_POINTS if self.task.budget == "epochs" else STEP_CURVE_POINTS
        return settings.log_every or max(1, self.optimizer_steps() // points)

    def run(self, batch: Batch, on_progress: OnProgress | None = None) -> Outputs:
        """The training program over the batch's runs (:mod:`.train`), chunk by chunk."""
        return self.run_together([batch], on_progress)[0]

    def run_together(
        self, batches: Sequence[Batch], on_progress: OnProgress | None = None
    ) -> tuple[Outputs, ...]:
        """Every batch's runs (one per optimizer) in one training program, one compile: the
        digits config's 36 groups compile 3 programs instead of 18 (what it bought: the
        README's performance section). Each run's numbers are those of its batch alone
        (tested bit for bit). The first batch reports the compile time; the run time is
        shared out by number of runs."""
        settings = batches[0].settings
        parts = [
            Part(b.optimizer.factory(self.optimizer_steps()), dict(b.hyperparameters), b.seed)
            for b in batches
        ]
        with jax.enable_x64(settings.dtype == "float64"):
            results = self.task.run_together(
                parts,
                budget=self.budget,
                batch_size=self.batch_size,
                log_every=self._log_every(settings),
                dtype=jnp.float64 if settings.dtype == "float64" else jnp.float32,
                on_chunk=on_progress,
                # the regularisation values are the program's inputs, not in its key
                cache_key=tuple(self.program_key(b.optimizer, settings) for b in batches),
            )
        return tuple(_outputs(res) for res in results)

    def rows(self, batch: Batch, outputs: Outputs, run_ids: np.ndarray) -> Columns:
        """The outcome and final metrics per run; the curves at the evaluation points."""
        out = outputs.arrays
        runs = pd.DataFrame(index=pd.RangeIndex(batch.size))
        runs["final_loss"] = np.asarray(out["final_train_loss"], np.float64)
        runs["best_loss"] = np.asarray(out["best_train_loss"], np.float64)
        runs["steps_to_tol"] = pd.array([pd.NA] * batch.size, dtype="Int64")
        runs["diverged"] = out["diverged"]
        runs["escaped"] = False
        runs["stop_step"] = out["stop_step"]
        for name in TASK_METRICS:
            runs[name] = np.asarray(out[name], np.float64)
        curves = records(
            run_ids,
            out["step"],
            out["stop_step"],
            {k[len("curve_") :]: v for k, v in out.items() if k.startswith("curve_")},
            index={"epoch": out["epoch"]} if "epoch" in out else None,
        )
        flow = _flow_rows(run_ids, out) if "flow" in out else None
        return Columns(runs, curves, pd.DataFrame(columns=["run_id", "step", "x", "y"]), flow)


def _outputs(res: TaskResult) -> Outputs:
    """A group's arrays (what :meth:`TaskProblem.rows` reads) from its typed result."""
    arrays = {
        "step": np.asarray(res.step),
        "best_train_loss": np.asarray(res.best_train_loss),
        "diverged": np.asarray(res.diverged, bool),
        "stop_step": np.asarray(res.stop_step, np.int64),
        **{name: np.asarray(getattr(res, name)) for name in TASK_METRICS},
        **{f"curve_{name}": np.asarray(v) for name, v in res.curves.items()},
    }
    if res.epoch is not None:
        arrays["epoch"] = np.asarray(res.epoch)
    if res.flow is not None and res.flow.shape[-1]:
        arrays["flow_steps"], arrays["flow"] = np.asarray(res.flow_steps), np.asarray(res.flow)
    return Outputs(arrays, float(res.compile_s), float(res.run_s), res.program)


def _flow_rows(run_ids: np.ndarray, out: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """``gradient_flow.csv``'s rows: one per run, measurement step and position (1-based),
    up to the run's last update (a diverged run's parameters are frozen after it)."""
    flow = np.asarray(out["flow"], np.float64)  # [R, F, P]
    n_runs, n_steps, n_pos = flow.shape
    steps = np.asarray(out["flow_steps"], np.int64)
    frame = pd.DataFrame(
        {
            "run_id": np.repeat(run_ids, n_steps * n_pos),
            "step": np.tile(np.repeat(steps, n_pos), n_runs),
            "position": np.tile(np.arange(1, n_pos + 1, dtype=np.int64), n_runs * n_steps),
            "grad_norm": flow.reshape(-1),
        }
    )
    last = np.repeat(np.asarray(out["stop_step"], np.int64), n_steps * n_pos)
    return frame[frame["step"].to_numpy() <= last].reset_index(drop=True)


def _target(raw: Any, task: Task) -> dict[str, Any]:
    """``target = { metric = "val_loss" | "val_accuracy", value = V }``, checked: an
    accuracy needs a classification task and a value in [0, 1], a loss a value >= 0."""
    example = 'target = { metric = "val_loss", value = 0.1 }'
    validate.table(raw, "target", example=example)
    validate.keys(raw, ("metric", "value"), prefix="target.")
    metric = validate.choice(
        validate.required(raw, "metric", fix=f"e.g. {example}", prefix="target."),
        "target.metric",
        TARGET_METRICS,
        what="target metric",
    )
    if metric == "val_accuracy" and getattr(task._model, "loss", "") == "mse":
        raise ConfigError(
            f'task {task.name!r} is a regression and records no accuracy; use metric = "val_loss"',
            key="target.metric",
        )
    value = validate.required(raw, "value", fix=f"e.g. {example}", prefix="target.")
    top = 1.0 if metric == "val_accuracy" else None
    return {
        "metric": metric,
        "value": validate.number(value, "target.value", minimum=0.0, maximum=top),
    }
