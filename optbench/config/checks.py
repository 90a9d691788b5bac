"""Top-level values checked against the rest of a config: the seeds that select a grid point
(``selection_seeds``) against ``seeds``, and which problems a budget override reaches.

Example:
    >>> selection_seeds(2, (0, 1, 2, 3)), selection_seeds([3, 1], (0, 1, 2, 3))
    ((0, 1), (3, 1))
    >>> selection_seeds([7], (0, 1))
    Traceback (most recent call last):
    ...
    optbench._errors.ConfigError: selection_seeds: must be distinct seeds out of seeds = [0, 1], ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optbench import validate
from optbench._errors import ConfigError

if TYPE_CHECKING:
    from optbench.config import Config


def selection_seeds(value: Any, seeds: tuple[int, ...]) -> tuple[int, ...] | None:
    """``selection_seeds`` checked against ``seeds``: a count N (the first N seeds) or a list
    of distinct seeds out of ``seeds``; None stays None (every seed selects)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        n = validate.integer(
            value,
            "selection_seeds",
            minimum=1,
            maximum=len(seeds),
            fix=f"give a count up to the {len(seeds)} seeds, or a list of seeds",
        )
        return tuple(seeds[:n])
    chosen = [validate.integer(v, "selection_seeds", minimum=0) for v in value]
    missing = [v for v in chosen if v not in seeds]
    if not chosen or missing or len(set(chosen)) != len(chosen):
        raise ConfigError(
            f"must be distinct seeds out of seeds = {list(seeds)}, got {list(value)!r}; "
            "give a count N (the first N seeds) or such a list",
            key="selection_seeds",
        )
    return tuple(chosen)


def budget_kinds(config: Config) -> tuple[list[str], list[str]]:
    """The labels of the problems whose budget is in steps, and of those in epochs."""
    by_steps = [p.label for p in config.problems if getattr(p, "steps", None) is not None]
    by_epochs = [p.label for p in config.problems if getattr(p, "epochs", None) is not None]
    return by_steps, by_epochs


def budget_note(config: Config, *, steps: int | None, epochs: int | None) -> str | None:
    """The line the CLI prints when ``--steps`` (or ``--epochs``) leaves some problems of
    ``config`` as they were, because they count their budget in the other unit."""
    by_steps, by_epochs = budget_kinds(config)
    for flag, value, others, unit, other in (
        ("--steps", steps, by_epochs, "epochs", "--epochs"),
        ("--epochs", epochs, by_steps, "steps", "--steps"),
    ):
        if value is not None and others:
            mine = "steps" if unit == "epochs" else "epochs"
            return (
                f"{flag} {value} applies to the problems that train for {mine}; "
                f"{', '.join(others)} train for {unit} as configured ({other} changes that)"
            )
    return None
