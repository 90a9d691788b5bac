"""The one user-facing error type, and the helper that suggests the closest valid names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """Bad user input: a config, an optimizer keyword, a surface file, a command-line option.

    ``str(err)`` reads ``FILE: KEY: what is wrong; the fix``, the one line the CLI prints.
    ``file`` and ``key`` are optional and can be filled in by outer layers with
    :meth:`within`, so the code that detects a problem need not know where the value came from.
    """

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None):
        self.message = message
        self.key = key
        self.file = file
        super().__init__(self._format())

    def _format(self) -> str:
        return ": ".join(p for p in (self.file, self.key, self.message) if p)

    def within(self, *, key: str | None = None, file: str | None = None) -> ConfigError:
        """Return a copy located under ``key`` (prefixed to the existing key) and in ``file``.

        Example: ``err.within(key="optimizer.adam")`` turns the key ``learning_rate`` into
        ``optimizer.adam.learning_rate``.
        """
        new_key = ".".join(k for k in (key, self.key) if k) or None
        return ConfigError(self.message, key=new_key, file=self.file or file)


def closest(name: str, valid: Iterable[str], n: int = 3) -> str:
    """A hint naming the valid names closest to ``name`` ("did you mean 'adam'?")."""
    valid = sorted(set(valid))
    matches = difflib.get_close_matches(name, valid, n=n, cutoff=0.5)
    if matches:
        return "did you mean " + " or ".join(repr(m) for m in matches) + "?"
    shown = ", ".join(valid[:12]) + (", ..." if len(valid) > 12 else "")
    return f"valid names: {shown}"
