"""Training tasks: small models on the 8x8 digits and the adding problem.

Example:
    >>> import optbench.problems.tasks
    >>> optbench.problems.tasks.names()
    ['adding', 'digits_cnn', 'digits_logreg', 'digits_mlp', 'digits_rnn']
    >>> task = optbench.problems.tasks.get("digits_cnn", batchnorm=True)
    >>> task.budget, task.num_steps(20, 64)
    ('epochs', 320)
"""

from optbench.problems.tasks.plan import TaskResult
from optbench.problems.tasks.registry import Task, defaults, describe, get, names

__all__ = ["Task", "TaskResult", "defaults", "describe", "get", "names"]
