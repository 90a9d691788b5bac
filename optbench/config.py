"""TOML config -> validated, frozen dataclasses.

A config names problems (analytic surfaces or training tasks) and optimizers with
hyperparameter grids; :func:`load_config` validates *everything* before anything runs, so a
typo costs a second, not a sweep. Every error is an :class:`optbench.ConfigError` that names
the file, the key and the fix.

Example::

    name = "demo"
    steps = 500
    seeds = 3

    [[problem]]
    surface = "rosenbrock"

    [optimizer.adam]
    learning_rate = { logspace = [1e-3, 1e-1], num = 8 }

    [optimizer.heavy_ball]
    name = "momentum"
    learning_rate = [1e-3, 3e-3]
    momentum = 0.9
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from optbench._errors import ConfigError, closest

TOP_KEYS = (
    "name",
    "description",
    "steps",
    "seeds",
    "log_every",
    "tolerance",
    "dtype",
    "surfaces",
    "problem",
    "optimizer",
)
PROBLEM_KEYS = (
    "surface",
    "task",
    "label",
    "start",
    "noise",
    "params",
    "steps",
    "epochs",
    "batch_size",
)
DTYPES = ("float32", "float64")
DEFAULT_STEPS = 1000
DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class ProblemConfig:
    """One problem: a surface or a task, with its parameters and budget."""

    label: str
    surface: str | None = None
    task: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    start: tuple[tuple[float, ...], ...] | None = None  # None: the surface's default start(s)
    noise: float = 0.0
    steps: int | None = None  # step-based problems (surfaces, `adding`)
    epochs: int | None = None  # dataset tasks
    batch_size: int | None = None  # tasks

    @property
    def kind(self) -> str:
        """``"surface"`` or ``"task"``."""
        return "surface" if self.surface is not None else "task"

    def optimizer_steps(self) -> int:
        """Optimizer steps per run (epochs x minibatches for dataset tasks)."""
        if self.kind == "task":
            from optbench import tasks

            task = tasks.get(str(self.task), **self.params)
            if task.budget == "epochs":
                return task.num_steps(int(self.epochs or 0), int(self.batch_size or 0))
        return int(self.steps or 0)

    @property
    def target(self) -> str:
        """The catalogue name of the surface or task."""
        return self.surface if self.surface is not None else str(self.task)


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer label: an algorithm, its hyperparameter grid and an optional schedule.

    ``grid`` maps each numeric hyperparameter to its values (one value when not a grid);
    ``switches`` holds the non-numeric ones (``centered = true``); ``schedule`` scales the
    learning rate.
    """

    label: str
    name: str
    grid: Mapping[str, tuple[float, ...]]
    switches: Mapping[str, Any] = field(default_factory=dict)
    schedule: Mapping[str, Any] | None = None

    def points(self) -> list[dict[str, float]]:
        """The Cartesian product of the grids, learning rate varying fastest last."""
        keys = list(self.grid)
        return [dict(zip(keys, v, strict=True)) for v in itertools.product(*self.grid.values())]


@dataclass(frozen=True)
class Config:
    """A validated benchmark config (see the module docstring and the README's reference)."""

    name: str
    problems: tuple[ProblemConfig, ...]
    optimizers: tuple[OptimizerConfig, ...]
    steps: int = DEFAULT_STEPS
    seeds: tuple[int, ...] = (0,)
    log_every: int | None = None  # None: chosen per problem to keep about 500 curve points
    tolerance: float = 1e-6
    dtype: str = "float32"
    surfaces: str | None = None
    description: str = ""
    source: str = "<config>"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what ``config.toml`` holds)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out.update(steps=self.steps, seeds=list(self.seeds))
        if self.log_every is not None:
            out["log_every"] = self.log_every
        out.update(tolerance=self.tolerance, dtype=self.dtype)
        if self.surfaces is not None:
            out["surfaces"] = self.surfaces
        out["problem"] = [_problem_dict(p) for p in self.problems]
        out["optimizer"] = {o.label: _optimizer_dict(o) for o in self.optimizers}
        return out

    def hash(self) -> str:
        """A stable hash of the resolved config (independent of key order and file name)."""
        return _hash(self.to_dict())


def _problem_dict(p: ProblemConfig) -> dict[str, Any]:
    d: dict[str, Any] = {"label": p.label, p.kind: p.target}
    for key in ("steps", "epochs", "batch_size"):
        if getattr(p, key) is not None:
            d[key] = getattr(p, key)
    if p.start is not None:
        d["start"] = [list(s) for s in p.start]
    if p.noise:
        d["noise"] = p.noise
    if p.params:
        d["params"] = dict(p.params)
    return d


def _optimizer_dict(o: OptimizerConfig) -> dict[str, Any]:
    d: dict[str, Any] = {"name": o.name}
    for k, v in o.grid.items():
        d[k] = v[0] if len(v) == 1 else list(v)
    d.update(o.switches)
    if o.schedule is not None:
        d["schedule"] = dict(o.schedule)
    return d


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- sources


def builtin_dir() -> Path:
    """The folder of the built-in configs (inside the wheel, or the source checkout)."""
    here = Path(__file__).resolve().parent
    shipped = here / "_catalogue" / "configs"
    return shipped if shipped.is_dir() else here.parent / "configs"


def builtin_names() -> list[str]:
    """Names of the built-in configs (``optbench run NAME``)."""
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def load_config(
    source: str | Path | Mapping[str, Any], *, surfaces: str | Path | None = None
) -> Config:
    """Read and validate a config.

    ``source`` is a dict of the TOML's shape, a path to a TOML file, the name of a built-in
    config (``"quickstart"``) or TOML text; ``surfaces`` (an extra folder of surface files)
    replaces the config's own. Raises :class:`optbench.ConfigError` naming the file and the
    key on any unknown key, wrong type or invalid value.
    """
    if isinstance(source, Mapping):
        data, file, base = dict(source), "<dict>", Path.cwd()
    else:
        text, file, base = _read_source(source)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"not valid TOML ({err}); fix the syntax", file=file) from None
    if surfaces is not None:
        folder = Path(surfaces).resolve()
        if not folder.is_dir():
            raise ConfigError(
                "no such folder; give a folder of surface TOML files",
                key="--surfaces",
                file=str(surfaces),
            )
        data["surfaces"] = str(folder)
    return parse_config(data, file=file, base=base)


def _read_source(source: str | Path) -> tuple[str, str, Path]:
    if isinstance(source, str) and ("\n" in source or "=" in source):
        return source, "<string>", Path.cwd()
    path = Path(source)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(source), path.resolve().parent
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read the file ({err})", file=str(source)) from None
    builtin = builtin_dir() / f"{source}.toml"
    if isinstance(source, str) and "/" not in source and builtin.is_file():
        return builtin.read_text(encoding="utf-8"), f"{source}.toml", builtin.parent
    if path.suffix == ".toml" or "/" in str(source):
        raise ConfigError("no such file; check the path", file=str(source))
    raise ConfigError(
        f"no config file or built-in config named {str(source)!r}; "
        + closest(str(source), builtin_names()),
        file=str(source),
    )


# --------------------------------------------------------------------------- parsing


def parse_config(data: Mapping[str, Any], *, file: str, base: Path) -> Config:
    """Validate a parsed TOML mapping (``base`` resolves relative paths)."""
    try:
        return _parse(data, file, base)
    except ConfigError as err:
        raise err.within(file=file) from None


def _parse(data: Mapping[str, Any], file: str, base: Path) -> Config:
    _check_keys(data, TOP_KEYS, "")
    name = _get(data, "name", str, Path(file).stem if file.endswith(".toml") else "run")
    if not name or any(c in name for c in '/\\:*?"<>|') or name.startswith("."):
        raise ConfigError(
            f"{name!r} is not usable as a folder name; use letters, digits, '-' and '_'",
            key="name",
        )
    steps = _positive_int(data, "steps", DEFAULT_STEPS)
    seeds = _seeds(data.get("seeds", 1))
    log_every = _positive_int(data, "log_every", None)
    tolerance = _number(data, "tolerance", 1e-6, minimum=0.0)
    dtype = _get(data, "dtype", str, "float32")
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use 'float32' or 'float64'", key="dtype")
    surfaces_dir = None
    if "surfaces" in data:
        folder = Path(_get(data, "surfaces", str, ""))
        folder = folder if folder.is_absolute() else (base / folder)
        if not folder.is_dir():
            raise ConfigError(
                f"no folder {str(folder)!r}; give a folder of surface TOML files", key="surfaces"
            )
        surfaces_dir = str(folder.resolve())

    raw_problems = data.get("problem")
    if not raw_problems:
        raise ConfigError(
            'no problems; add one, e.g. [[problem]] with surface = "rosenbrock"', key="problem"
        )
    if isinstance(raw_problems, Mapping):
        raw_problems = [raw_problems]
    if not isinstance(raw_problems, list) or not all(isinstance(p, Mapping) for p in raw_problems):
        raise ConfigError("must be a list of tables ([[problem]])", key="problem")
    catalogue = _surface_catalogue(surfaces_dir)
    problems = tuple(_problem(p, i, catalogue, steps) for i, p in enumerate(raw_problems))
    labels = [p.label for p in problems]
    for label in labels:
        if labels.count(label) > 1:
            raise ConfigError(
                f"two problems are labelled {label!r}; give each a distinct `label`",
                key="problem",
            )

    raw_opts = data.get("optimizer")
    if not raw_opts or not isinstance(raw_opts, Mapping):
        raise ConfigError(
            "no optimizers; add a table such as [optimizer.adam] with learning_rate = 1e-3",
            key="optimizer",
        )
    optimizers = tuple(_optimizer(label, spec) for label, spec in raw_opts.items())
    _check_schedules(problems, optimizers)
    return Config(
        name=name,
        problems=problems,
        optimizers=optimizers,
        steps=steps,
        seeds=seeds,
        log_every=log_every,
        tolerance=tolerance,
        dtype=dtype,
        surfaces=surfaces_dir,
        description=_get(data, "description", str, ""),
        source=file,
    )


def _surface_catalogue(folder: str | None) -> Mapping[str, Any]:
    from optbench import surfaces

    return surfaces.catalogue([folder] if folder else [])


def _problem(
    raw: Mapping[str, Any], index: int, catalogue: Mapping[str, Any], steps: int
) -> ProblemConfig:
    where = f"problem[{index}]"
    try:
        return _problem_inner(raw, catalogue, steps)
    except ConfigError as err:
        label = raw.get("label") or raw.get("surface") or raw.get("task")
        raise err.within(key=where if not isinstance(label, str) else f"problem.{label}") from None


def _problem_inner(
    raw: Mapping[str, Any], catalogue: Mapping[str, Any], top_steps: int
) -> ProblemConfig:
    _check_keys(raw, PROBLEM_KEYS, "")
    if ("surface" in raw) == ("task" in raw):
        raise ConfigError(
            "give exactly one of `surface` or `task`", key="surface" if "surface" in raw else None
        )
    params = raw.get("params", {})
    if not isinstance(params, Mapping):
        raise ConfigError("must be a table, e.g. params = { a = 1.0 }", key="params")
    noise = _number(raw, "noise", 0.0, minimum=0.0)
    steps = _positive_int(raw, "steps", None)
    epochs = _positive_int(raw, "epochs", None)
    batch_size = _positive_int(raw, "batch_size", None)
    if "surface" in raw:
        name = _get(raw, "surface", str, "")
        if name not in catalogue:
            raise ConfigError(
                f"unknown surface {name!r}; " + closest(name, catalogue), key="surface"
            )
        try:
            surface = catalogue[name].build(**params)
        except ConfigError as err:
            raise err.within(key="params") from None
        for key in ("epochs", "batch_size"):
            if key in raw:
                raise ConfigError(f"surfaces take `steps`, not `{key}`; remove it", key=key)
        start = _start(raw.get("start"), surface.dim) if "start" in raw else None
        label = _get(raw, "label", str, name)
        return ProblemConfig(
            label=label,
            surface=name,
            params=dict(surface.params),
            start=start,
            noise=noise,
            steps=steps or top_steps,
        )
    from optbench import tasks

    name = _get(raw, "task", str, "")
    if name not in tasks.names():
        raise ConfigError(f"unknown task {name!r}; " + closest(name, tasks.names()), key="task")
    for key in ("start", "noise"):
        if key in raw:
            raise ConfigError(f"tasks take no `{key}`; remove it", key=key)
    try:
        task = tasks.get(name, **params)
    except ConfigError as err:
        raise err.within(key="params") from None
    if task.budget == "epochs":
        if steps is not None:
            raise ConfigError(f"task {name!r} trains for `epochs`, not `steps`", key="steps")
        epochs = epochs or DEFAULT_EPOCHS
    elif epochs is not None:
        raise ConfigError(f"task {name!r} trains for `steps`, not `epochs`", key="epochs")
    else:
        steps = steps or top_steps
    return ProblemConfig(
        label=_get(raw, "label", str, name),
        task=name,
        params=dict(task.params),
        steps=steps,
        epochs=epochs,
        batch_size=batch_size or DEFAULT_BATCH_SIZE,
    )


def _start(value: Any, dim: int) -> tuple[tuple[float, ...], ...]:
    points = value if value and isinstance(value[0], list) else [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"must be a point ([{dim} numbers]) or a list of points", key="start")
    out = []
    for point in points:
        if (
            not isinstance(point, list)
            or len(point) != dim
            or not all(_is_number(v) for v in point)
        ):
            raise ConfigError(
                f"{point!r} is not a point of this {dim}-D surface; give {dim} numbers",
                key="start",
            )
        out.append(tuple(float(v) for v in point))
    return tuple(out)


def _optimizer(label: str, spec: Any) -> OptimizerConfig:
    from optbench import optimizers

    key = f"optimizer.{label}"
    if not isinstance(spec, Mapping):
        raise ConfigError("must be a table of hyperparameters", key=key)
    spec = dict(spec)
    name = spec.pop("name", label)
    if not isinstance(name, str):
        raise ConfigError("must be a string such as 'adam'", key=f"{key}.name")
    schedule = spec.pop("schedule", None)
    try:
        defaults = optimizers.defaults(name)
    except ConfigError as err:
        raise err.within(key=f"{key}.name" if "name" in spec or name != label else key) from None
    grid: dict[str, tuple[float, ...]] = {}
    switches: dict[str, Any] = {}
    for hp, value in spec.items():
        if hp not in defaults:
            raise ConfigError(
                f"{name} has no hyperparameter {hp!r}; " + closest(hp, defaults), key=f"{key}.{hp}"
            )
        default = defaults[hp]
        numeric = _is_number(default) and not isinstance(default, bool)
        if numeric or default is None:
            grid[hp] = _grid(value, f"{key}.{hp}")
        elif isinstance(value, (list, Mapping)):
            raise ConfigError(
                f"only numeric hyperparameters can be grids; {hp} is {type(default).__name__}",
                key=f"{key}.{hp}",
            )
        elif type(value) is not type(default):
            raise ConfigError(
                f"must be a {type(default).__name__}, got {value!r}", key=f"{key}.{hp}"
            )
        else:
            switches[hp] = value
    # Resolve: every numeric default becomes an explicit (one-point) grid.
    full = {
        hp: grid.get(hp, (float(v),))
        for hp, v in defaults.items()
        if (_is_number(v) and not isinstance(v, bool)) or hp in grid
    }
    full_switches = {
        hp: switches.get(hp, v) for hp, v in defaults.items() if hp not in full and v is not None
    }
    opt = OptimizerConfig(label, name, full, full_switches, _schedule(schedule, key))
    for point in opt.points():  # concrete values: the optimizer validates them itself
        try:
            optimizers.get(name, **point, **opt.switches)
        except ConfigError as err:
            raise err.within(key=key) from None
    return opt


def _check_schedules(
    problems: Sequence[ProblemConfig], optimizers: Sequence[OptimizerConfig]
) -> None:
    """Each schedule must fit each problem's real number of steps (e.g. its warmup)."""
    from optbench import schedules

    for o in optimizers:
        if o.schedule is None:
            continue
        for p in problems:
            try:
                schedules.from_config(o.schedule, total_steps=p.optimizer_steps())
            except ConfigError as err:
                raise ConfigError(
                    f"{err.message} (problem {p.label!r} has {p.optimizer_steps()} steps)",
                    key=f"optimizer.{o.label}.schedule" + (f".{err.key}" if err.key else ""),
                ) from None


def _schedule(value: Any, key: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or "kind" not in value:
        raise ConfigError(
            'must be a table with a kind, e.g. { kind = "cosine", warmup = 100 }',
            key=f"{key}.schedule",
        )
    from optbench import schedules

    try:
        schedules.from_config(value, total_steps=1000)
    except ConfigError as err:
        raise err.within(key=f"{key}.schedule") from None
    return dict(value)


def _grid(value: Any, key: str) -> tuple[float, ...]:
    """A number, a list of numbers, or {logspace|linspace = [a, b], num = n}."""
    if _is_number(value):
        return (float(value),)
    if isinstance(value, list):
        if not value or not all(_is_number(v) for v in value):
            raise ConfigError(f"a grid must be a non-empty list of numbers, got {value!r}", key=key)
        return tuple(float(v) for v in value)
    if isinstance(value, Mapping):
        kinds = [k for k in ("logspace", "linspace") if k in value]
        extra = set(value) - {"logspace", "linspace", "num"}
        if len(kinds) != 1 or extra or "num" not in value:
            raise ConfigError(
                "a range grid is { logspace = [a, b], num = n } or { linspace = [a, b], num = n }",
                key=key,
            )
        ends, num = value[kinds[0]], value["num"]
        if (
            not isinstance(ends, list)
            or len(ends) != 2
            or not all(_is_number(v) for v in ends)
            or not isinstance(num, int)
            or isinstance(num, bool)
            or num < 1
        ):
            raise ConfigError(
                f"{kinds[0]} takes two numbers [a, b] and num a positive integer", key=key
            )
        a, b = float(ends[0]), float(ends[1])
        if kinds[0] == "logspace":
            if a <= 0 or b <= 0:
                raise ConfigError(
                    "logspace end points are the values themselves and must be > 0, "
                    "e.g. logspace = [1e-4, 1e-1]",
                    key=key,
                )
            return tuple(float(v) for v in np.geomspace(a, b, num))
        return tuple(float(v) for v in np.linspace(a, b, num))
    raise ConfigError(f"must be a number or a grid, got {value!r}", key=key)


# --------------------------------------------------------------------------- small checks


def _check_keys(data: Mapping[str, Any], valid: Sequence[str], prefix: str) -> None:
    for key in data:
        if key in valid:
            continue
        if valid is not TOP_KEYS and key in TOP_KEYS:
            raise ConfigError(
                "is a top-level key; move it above the first [[problem]] table", key=prefix + key
            )
        raise ConfigError(f"unknown key; {closest(key, valid)}", key=prefix + key)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _get(data: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = data.get(key, default)
    if not isinstance(value, kind):
        raise ConfigError(f"must be a {kind.__name__}, got {value!r}", key=key)
    return value


def _positive_int(data: Mapping[str, Any], key: str, default: int | None) -> int | None:
    if key not in data:
        return default
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"must be a positive integer, got {value!r}", key=key)
    return value


def _number(data: Mapping[str, Any], key: str, default: float, *, minimum: float) -> float:
    value = data.get(key, default)
    if not _is_number(value) or not math.isfinite(value) or value < minimum:
        raise ConfigError(f"must be a number >= {minimum:g}, got {value!r}", key=key)
    return float(value)


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return tuple(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
        and len(set(value)) == len(value)
    ):
        return tuple(value)
    raise ConfigError(
        f"must be a count N (seeds 0..N-1) or a list of distinct non-negative seeds, got {value!r}",
        key="seeds",
    )


# --------------------------------------------------------------------------- overrides


def override(
    config: Config,
    *,
    steps: int | None = None,
    seeds: int | None = None,
    optimizers: Sequence[str] | None = None,
    problems: Sequence[str] | None = None,
) -> Config:
    """Apply command-line overrides: steps for every step-based problem, a seed count, and
    subsets of the optimizer and problem labels (unknown labels are errors)."""
    if steps is not None:
        if steps <= 0:
            raise ConfigError(f"must be a positive integer, got {steps}", key="--steps")
        config = replace(
            config,
            steps=steps,
            problems=tuple(
                replace(p, steps=steps) if p.steps is not None else p for p in config.problems
            ),
        )
    if seeds is not None:
        if seeds <= 0:
            raise ConfigError(f"must be a positive integer, got {seeds}", key="--seeds")
        config = replace(config, seeds=tuple(range(seeds)))
    if optimizers is not None:
        config = replace(config, optimizers=_subset(config.optimizers, optimizers, "--optimizers"))
    if problems is not None:
        config = replace(config, problems=_subset(config.problems, problems, "--problems"))
    return config


def _subset(items: tuple[Any, ...], labels: Sequence[str], key: str) -> tuple[Any, ...]:
    known = [i.label for i in items]
    for label in labels:
        if label not in known:
            raise ConfigError(f"no label {label!r} in the config; {closest(label, known)}", key=key)
    return tuple(i for i in items if i.label in labels)
