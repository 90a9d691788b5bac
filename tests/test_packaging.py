"""What ships: the wheel holds the catalogue and the configs, and they load from anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not a source checkout")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("optbench-*.whl")
    return whl


def test_wheel_contains_the_catalogue_and_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    surfaces = {p.name for p in (ROOT / "surfaces").glob("*.toml")}
    configs = {p.name for p in (ROOT / "configs").glob("*.toml")}
    assert {"rosenbrock.toml", "saddle.toml", "quadratic_nd.toml"} <= surfaces
    assert {"quickstart.toml", "surfaces.toml"} <= configs
    for name in surfaces:
        assert f"optbench/_catalogue/surfaces/{name}" in names
    for name in configs:
        assert f"optbench/_catalogue/configs/{name}" in names
    assert "optbench/cli.py" in names
    assert not any(n.startswith(("tests/", "results/")) for n in names)


def test_installed_wheel_loads_its_catalogue_from_any_directory(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import optbench, optbench.surfaces as s, optbench.config as c;"
        "print(optbench.__file__);"
        "print(s.builtin_folder());"
        "print(len(s.names()), s.get('rosenbrock').fn([-1.2, 1.0]));"
        "print(c.load_config('quickstart').name)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": ""},
        check=True,
    ).stdout.split("\n")
    assert out[0].startswith(str(site))
    assert out[1] == str(site / "optbench" / "_catalogue" / "surfaces")
    count, value = out[2].split(" ", 1)
    assert int(count) >= 13 and abs(float(value) - 24.2) < 1e-4
    assert out[3] == "quickstart"


def test_command_line_entry_points():
    for cmd in ([sys.executable, "-m", "optbench", "--help"],):
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "run" in result.stdout and "list" in result.stdout
    script = Path(sys.executable).with_name("optbench")
    if script.exists():
        result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "report" in result.stdout
