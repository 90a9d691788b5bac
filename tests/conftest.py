"""Shared test set-up: no disk compilation cache, and a fixture for counting compiles."""

from __future__ import annotations

import os

import pytest

# Tests count compilations and must not depend on what an earlier run left on disk (nor
# write into the user's cache folder): the disk cache is off for the test session. The
# tests that check it turn it on in a subprocess of their own.
os.environ.setdefault("OPTBENCH_COMPILATION_CACHE", "off")


@pytest.fixture
def fresh_programs():
    """Start with no compiled program in this process (for tests that count compiles)."""
    from optbench import compilation

    compilation.clear_programs()
    yield
    compilation.clear_programs()
