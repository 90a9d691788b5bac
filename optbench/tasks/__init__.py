"""Training tasks: small models on the 8x8 digits and the adding problem.

Example:
    >>> import optbench.tasks
    >>> optbench.tasks.names()
    ['adding', 'digits_cnn', 'digits_logreg', 'digits_mlp', 'digits_rnn']
    >>> task = optbench.tasks.get("digits_cnn", batchnorm=True)
    >>> task.budget, task.num_steps(20, 64)
    ('epochs', 320)
"""

from optbench.tasks.registry import Task, defaults, describe, get, names
from optbench.tasks.train import TaskResult

__all__ = ["Task", "TaskResult", "defaults", "describe", "get", "names"]
