"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_a_python_example():
    assert _python_blocks(), "README.md lost its Python example"


@pytest.mark.parametrize("block", _python_blocks())
def test_readme_python_example_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "results" / "mine" / "runs.csv").exists()
    assert (tmp_path / "results" / "mine" / "report.html").exists()
    assert (tmp_path / "results" / "mine" / "rosenbrock.gif").exists()
    assert set(namespace["res"].runs.optimizer) == {"adam", "mine"}
    assert namespace["updates"]["w"].shape == (3,)
