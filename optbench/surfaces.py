"""``optbench.surfaces``: the public name of the surface catalogue.

The catalogue lives in :mod:`optbench.problems.surfaces` (the surface problem's package);
this module is that package under its public name, the same module object.
"""

import sys

from optbench.problems import surfaces as _surfaces

sys.modules[__name__] = _surfaces
