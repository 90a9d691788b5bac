"""Problem kinds behind one interface (:class:`optbench.problems.base.Problem`).

Each kind is a package here: ``surfaces/`` (analytic loss surfaces: the catalogue, the surface
files, the formula compiler, the generators and the surface program) and ``tasks/`` (data,
layers, cells, models and the training program). A config table names its kind by its key
(``surface = ...`` or ``task = ...``); :func:`kinds` maps each key to its class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optbench.problems.base import Problem


def kinds() -> dict[str, type[Problem]]:
    """The problem kinds by config key: ``{"surface": SurfaceProblem, "task": TaskProblem}``."""
    from optbench.problems.surfaces.problem import SurfaceProblem
    from optbench.problems.tasks.problem import TaskProblem

    return {cls.kind: cls for cls in (SurfaceProblem, TaskProblem)}
