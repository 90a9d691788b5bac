"""TOML config -> a validated, frozen :class:`Config` of resolved problems and optimizers.

A config names problems (analytic surfaces or training tasks) and optimizers with
hyperparameter grids; :func:`load_config` validates *everything* before anything runs, so a
typo costs a second, not a sweep. Each ``[[problem]]`` table is resolved by its kind
(:mod:`optbench.problems`) into an object the engine runs as it is; each
``[optimizer.LABEL]`` table into an :class:`OptimizerConfig` (:mod:`.optimizer`). Every error
is an :class:`optbench.ConfigError` that names the file, the key and the fix.

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
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from optbench import validate
from optbench._errors import ConfigError, closest
from optbench.config import pairs as pairs_mod
from optbench.config.checks import budget_kinds, budget_note, selection_seeds
from optbench.config.optimizer import OptimizerConfig, parse_grid, parse_optimizer
from optbench.config.sources import builtin_dir, builtin_names, read_source
from optbench.problems.base import Problem, ResolveContext, Settings

__all__ = [
    "Config",
    "OptimizerConfig",
    "budget_kinds",
    "budget_note",
    "builtin_dir",
    "builtin_names",
    "load_config",
    "override",
    "parse_config",
    "parse_grid",
]

TOP_KEYS = (
    "name",
    "description",
    "steps",
    "seeds",
    "log_every",
    "tolerance",
    "dtype",
    "surfaces",
    "selection_seeds",
    "max_ratio",
    "problem",
    "optimizer",
)
COMMON_PROBLEM_KEYS = ("label", "params", "optimizers")
DTYPES = ("float32", "float64")
DEFAULT_STEPS = 1000
MAX_SEEDS = 1_000_000  # the most seeds a config may list or count
DEFAULT_MAX_RATIO = 4.0


@dataclass(frozen=True)
class Config:
    """A validated benchmark config (see the module docstring and the README's reference)."""

    name: str
    problems: tuple[Problem, ...]
    optimizers: tuple[OptimizerConfig, ...]
    steps: int = DEFAULT_STEPS
    seeds: tuple[int, ...] = (0,)
    log_every: int | None = None  # None: chosen per problem
    tolerance: float = 1e-6
    dtype: str = "float32"
    surfaces: str | None = None
    description: str = ""
    source: str = "<config>"
    #: The seeds that select each grid point: a count (the first N of ``seeds``), a list,
    #: or None (all of them).
    selection_seeds: int | tuple[int, ...] | None = None
    max_ratio: float = DEFAULT_MAX_RATIO  # r_max of the performance profile
    #: The problems that run only some optimizers (:mod:`.pairs`); the others run them all.
    pairs: pairs_mod.Pairs = ()

    def optimizers_for(self, problem: Problem) -> tuple[OptimizerConfig, ...]:
        """The optimizers that run on ``problem``, in the config's order."""
        chosen = dict(self.pairs).get(problem.label)
        return tuple(o for o in self.optimizers if chosen is None or o.label in chosen)

    @property
    def settings(self) -> Settings:
        """The sweep-wide values that decide every run's numbers."""
        return Settings(
            self.seeds, self.log_every, self.tolerance, self.dtype, self.selecting_seeds()
        )

    def selecting_seeds(self) -> tuple[int, ...] | None:
        """The seeds that select each grid point (None: all seeds select)."""
        chosen = selection_seeds(self.selection_seeds, self.seeds)
        return None if chosen is None or set(chosen) == set(self.seeds) else chosen

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
        if self.selection_seeds is not None:
            chosen = self.selection_seeds
            out["selection_seeds"] = chosen if isinstance(chosen, int) else list(chosen)
        out["max_ratio"] = self.max_ratio
        chosen = dict(self.pairs)
        out["problem"] = [
            {**p.to_dict(), **({"optimizers": list(chosen[p.label])} if p.label in chosen else {})}
            for p in self.problems
        ]
        out["optimizer"] = {o.label: o.to_dict() for o in self.optimizers}
        return out

    def hash(self) -> str:
        """A stable hash of the resolved config (independent of key order and file name)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


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
        text, file, base = read_source(source)
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as err:  # nested past Python's stack
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


def parse_config(data: Mapping[str, Any], *, file: str, base: Path) -> Config:
    """Validate a parsed TOML mapping (``base`` resolves relative paths)."""
    try:
        return _parse(data, file, base)
    except ConfigError as err:
        raise err.within(file=file) from None


def _parse(data: Mapping[str, Any], file: str, base: Path) -> Config:
    _check_keys(data, TOP_KEYS)
    default_name = Path(file).stem if file.endswith(".toml") else "run"
    name = validate.string(data.get("name", default_name), "name")
    bad = not name or any(c in name for c in '/\\:*?"<>|') or name.startswith(".")
    if bad or not name.isprintable() or len(name.encode()) > 200:  # control chars, too long
        raise ConfigError(
            f"{name!r} is not usable as a folder name; use letters, digits, '-' and '_'",
            key="name",
        )
    steps = validate.integer(data.get("steps", DEFAULT_STEPS), "steps", minimum=1)
    seeds = _seeds(data.get("seeds", 1))
    selection = data.get("selection_seeds")
    selection_seeds(selection, seeds)
    max_ratio = validate.number(
        data.get("max_ratio", DEFAULT_MAX_RATIO), "max_ratio", minimum=1.0, open_min=True
    )
    log_every = None
    if "log_every" in data:
        log_every = validate.integer(data["log_every"], "log_every", minimum=1)
    tolerance = validate.number(data.get("tolerance", 1e-6), "tolerance", minimum=0.0)
    dtype = validate.string(data.get("dtype", "float32"), "dtype")
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use 'float32' or 'float64'", key="dtype")
    surfaces_dir = None
    if "surfaces" in data:
        folder = Path(validate.string(data["surfaces"], "surfaces"))
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
    context = ResolveContext(steps=steps, surfaces=surfaces_dir)
    problems = tuple(_problem(p, i, context) for i, p in enumerate(raw_problems))
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
    optimizers = tuple(parse_optimizer(label, spec) for label, spec in raw_opts.items())
    pairs = pairs_mod.parse(raw_problems, labels, [o.label for o in optimizers])
    _check_schedules(problems, optimizers, pairs)
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
        description=validate.string(data.get("description", ""), "description"),
        source=file,
        selection_seeds=tuple(selection) if isinstance(selection, list) else selection,
        max_ratio=max_ratio,
        pairs=pairs,
    )


def _problem(raw: Mapping[str, Any], index: int, context: ResolveContext) -> Problem:
    """Resolve one ``[[problem]]`` table by its kind; errors are keyed ``problem.LABEL``."""
    from optbench.problems import kinds

    try:
        by_key = kinds()
        every = {*COMMON_PROBLEM_KEYS, *by_key, *(k for c in by_key.values() for k in c.keys)}
        _check_keys(raw, sorted(every))
        given = [k for k in by_key if k in raw]
        if len(given) != 1:
            raise ConfigError(
                "give exactly one of " + " or ".join(f"`{k}`" for k in by_key),
                key=given[0] if given else None,
            )
        return _fits(by_key[given[0]].resolve(raw, context))
    except ConfigError as err:
        label = raw.get("label") or next((raw[k] for k in ("surface", "task") if k in raw), None)
        where = f"problem.{label}" if isinstance(label, str) else f"problem[{index}]"
        raise err.within(key=where) from None


def _fits(problem: Problem) -> Problem:
    """A run's optimizer steps (epochs x minibatches for dataset tasks) must fit the
    engine's 32-bit step counter."""
    unit = "epochs" if getattr(problem, "epochs", None) is not None else "steps"
    validate.step_count(problem.optimizer_steps(), unit)
    return problem


def _check_schedules(
    problems: Sequence[Problem], optimizers: Sequence[OptimizerConfig], pairs: pairs_mod.Pairs
) -> None:
    """Each schedule must fit the real number of steps of each problem it runs on."""
    from optbench import schedules

    chosen = dict(pairs)
    for o in optimizers:
        if o.schedule is None:
            continue
        for p in (p for p in problems if o.label in chosen.get(p.label, (o.label,))):
            try:
                schedules.from_config(o.schedule, total_steps=p.optimizer_steps())
            except ConfigError as err:
                raise ConfigError(
                    f"{err.message} (problem {p.label!r} has {p.optimizer_steps()} steps)",
                    key=f"optimizer.{o.label}.schedule" + (f".{err.key}" if err.key else ""),
                ) from None


def _check_keys(data: Mapping[str, Any], valid: Sequence[str]) -> None:
    for key in data:
        if key in valid:
            continue
        if valid is not TOP_KEYS and key in TOP_KEYS:
            raise ConfigError(
                "is a top-level key; move it above the first [[problem]] table", key=key
            )
        raise ConfigError(f"unknown key; {closest(key, valid)}", key=key)


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        validate.integer(value, "seeds", minimum=1, maximum=MAX_SEEDS)
        return tuple(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
        and len(set(value)) == len(value)
    ):
        validate.integer(len(value), "seeds", maximum=MAX_SEEDS, subject="the number of seeds")
        validate.integer(max(value), "seeds", maximum=validate.UINT32_MAX, subject="every seed")
        return tuple(value)
    raise ConfigError(
        f"must be a count N (seeds 0..N-1) or a list of distinct non-negative seeds, got {value!r}",
        key="seeds",
    )


def override(
    config: Config,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    seeds: int | None = None,
    optimizers: Sequence[str] | None = None,
    problems: Sequence[str] | None = None,
) -> Config:
    """Apply command-line overrides: subsets of the optimizer and problem labels (unknown
    labels are errors), steps for every step-based problem, epochs for every epoch-based
    one, a seed count. A budget that applies to no problem is an error naming the other
    flag; where it applies to some, :func:`budget_kinds` says which."""
    if optimizers is not None:
        config = replace(
            config, optimizers=pairs_mod.subset(config.optimizers, optimizers, "--optimizers")
        )
    if problems is not None:
        config = replace(config, problems=pairs_mod.subset(config.problems, problems, "--problems"))
    if config.pairs and (optimizers is not None or problems is not None):
        config = pairs_mod.restrict(config)
    by_steps, by_epochs = budget_kinds(config)
    for flag, value, unit, applies, other in (
        ("--steps", steps, "steps", by_steps, "--epochs"),
        ("--epochs", epochs, "epochs", by_epochs, "--steps"),
    ):
        if value is None:
            continue
        validate.integer(value, flag, minimum=1)
        if not applies:
            raise ConfigError(
                f"no problem of this sweep trains for {unit}; use {other} instead", key=flag
            )
        config = replace(
            config,
            problems=tuple(
                replace(p, **{unit: value}) if p.label in applies else p for p in config.problems
            ),
        )
    if steps is not None:
        config = replace(config, steps=steps)
    if steps is not None or epochs is not None:  # a schedule must fit the new budget
        _check_schedules(config.problems, config.optimizers, config.pairs)
    for p in config.problems:  # the new budget must fit the step counter
        try:
            _fits(p)
        except ConfigError as err:
            raise err.within(key=f"problem.{p.label}") from None
    if seeds is not None:
        validate.integer(seeds, "--seeds", minimum=1, maximum=MAX_SEEDS)
        try:
            selection_seeds(config.selection_seeds, tuple(range(seeds)))
        except ConfigError as err:
            raise ConfigError(f"{err.message} (after --seeds {seeds})", key="--seeds") from None
        config = replace(config, seeds=tuple(range(seeds)))
    return config
