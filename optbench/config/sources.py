"""Where a config comes from: a TOML file, a built-in config by name, or TOML text."""

from __future__ import annotations

from pathlib import Path

from optbench._errors import ConfigError, closest


def builtin_dir() -> Path:
    """The folder of the built-in configs (inside the wheel, or the source checkout)."""
    package = Path(__file__).resolve().parents[1]  # the optbench package
    shipped = package / "_catalogue" / "configs"
    return shipped if shipped.is_dir() else package.parent / "configs"


def builtin_names() -> list[str]:
    """Names of the built-in configs (``optbench run NAME``)."""
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def read_source(source: str | Path) -> tuple[str, str, Path]:
    """``(text, file name for messages, folder that relative paths start from)``."""
    if isinstance(source, str) and ("\n" in source or "=" in source):
        return source, "<string>", Path.cwd()
    path = Path(source)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(source), path.resolve().parent
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read the file ({err})", file=str(source)) from None
    builtin = builtin_dir() / f"{source}.toml"
    if isinstance(source, str) and "/" not in source and builtin.is_file():
        return builtin.read_text(encoding="utf-8"), f"{source}.toml", builtin.parent
    if path.suffix == ".toml" or "/" in str(source):
        raise ConfigError("no such file; check the path", file=str(source))
    raise ConfigError(
        f"no config file or built-in config named {str(source)!r}; "
        + closest(str(source), builtin_names()),
        file=str(source),
    )
