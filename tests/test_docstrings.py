"""Every example in a docstring of the package runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import optbench

ROOT = Path(optbench.__file__).parent
# ``optbench.surfaces`` and ``optbench.tasks`` are the problem packages under their public
# names (the same module objects), tested there.
ALIASES = {"optbench.surfaces", "optbench.tasks"}
MODULES = sorted(
    name
    for path in ROOT.rglob("*.py")
    if (parts := path.relative_to(ROOT.parent).with_suffix("").parts)[-1] != "__main__"
    and (name := ".".join(parts[:-1] if parts[-1] == "__init__" else parts)) not in ALIASES
)


@pytest.fixture
def registries():
    """Examples register optimizers and surfaces: leave the registries as they were."""
    from optbench.optimizers import _registry
    from optbench.problems import surfaces

    saved = dict(_registry._REGISTRY), dict(surfaces._REGISTERED)
    yield
    for registry, before in zip((_registry._REGISTRY, surfaces._REGISTERED), saved, strict=True):
        registry.clear()
        registry.update(before)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, registries):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
