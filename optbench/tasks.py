"""``optbench.tasks``: the public name of the training-task catalogue.

The tasks live in :mod:`optbench.problems.tasks` (the task problem's package); this module
is that package under its public name, the same module object.
"""

import sys

from optbench.problems import tasks as _tasks

sys.modules[__name__] = _tasks
