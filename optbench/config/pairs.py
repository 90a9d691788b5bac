"""Which optimizers run on which problem: every optimizer on every problem, unless a
``[[problem]]`` table lists the labels of those it runs (``optimizers = ["adam", "sgd"]``).

A lecture config compares the slide's forms of the optimizers on the surfaces and Adam
alone on the training tasks; without this key every optimizer would train every network.

Example:
    >>> from optbench.config import load_config
    >>> cfg = load_config('''
    ... [[problem]]
    ... surface = "rosenbrock"
    ... [[problem]]
    ... surface = "saddle"
    ... optimizers = ["adam"]
    ... [optimizer.adam]
    ... [optimizer.sgd]
    ... ''')
    >>> [(p.label, [o.label for o in cfg.optimizers_for(p)]) for p in cfg.problems]
    [('rosenbrock', ['adam', 'sgd']), ('saddle', ['adam'])]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from optbench import validate
from optbench._errors import ConfigError, closest

#: ``((problem label, (optimizer labels, ...)), ...)`` for the problems that list theirs.
Pairs = tuple[tuple[str, tuple[str, ...]], ...]


def parse(
    raw_problems: Sequence[Mapping[str, Any]], labels: Sequence[str], known: Sequence[str]
) -> Pairs:
    """The ``optimizers`` lists of the problem tables (``labels``: the problems' resolved
    labels, in order; ``known``: the optimizer labels), checked: a list of known labels."""
    out = []
    for raw, label in zip(raw_problems, labels, strict=True):
        if "optimizers" not in raw:
            continue
        key = f"problem.{label}.optimizers"
        value = raw["optimizers"]
        if not isinstance(value, list) or not value:
            raise ConfigError(
                f'must be a non-empty list of optimizer labels, e.g. optimizers = ["{known[0]}"]',
                key=key,
            )
        chosen = []
        for name in value:
            name = validate.string(name, key)
            if name not in known:
                raise ConfigError(
                    f"no optimizer {name!r} in the config; {closest(name, known)}", key=key
                )
            if name not in chosen:
                chosen.append(name)
        out.append((label, tuple(o for o in known if o in chosen)))
    return tuple(out)


def restrict(config: Any) -> Any:
    """The config (a :class:`~optbench.config.Config`) after subsets of its optimizers and
    problems were chosen (the command line's ``--optimizers`` / ``--problems``): each list
    keeps the optimizers left; a problem with none left runs nothing and is dropped (so the
    resolved config that is saved is a config again); nothing left to run is an error."""
    optimizers = [o.label for o in config.optimizers]
    chosen = {label: tuple(o for o in listed if o in optimizers) for label, listed in config.pairs}
    problems = tuple(p for p in config.problems if chosen.get(p.label, True))
    if not problems:
        raise ConfigError(
            "selects no (problem, optimizer) pair: the problems given list none of the "
            "optimizers given in their `optimizers`; choose others",
            key="--optimizers",
        )
    kept = {p.label for p in problems}
    pairs = tuple((label, o) for label, o in chosen.items() if label in kept)
    return dataclasses.replace(config, problems=problems, pairs=pairs)


def subset(items: tuple[Any, ...], labels: Sequence[str], key: str) -> tuple[Any, ...]:
    """The items (problems or optimizers) whose labels are ``labels``; an unknown label is an
    error with the closest ones."""
    known = [i.label for i in items]
    if not labels:
        raise ConfigError(
            f"selects nothing; give comma-separated labels out of {', '.join(known)}", key=key
        )
    for label in labels:
        if label not in known:
            raise ConfigError(f"no label {label!r} in the config; {closest(label, known)}", key=key)
    return tuple(i for i in items if i.label in labels)
