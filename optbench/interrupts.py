"""Ctrl-C that is never lost.

Python turns Ctrl-C (SIGINT) into ``KeyboardInterrupt`` wherever the main thread happens to
be, which includes callbacks that swallow exceptions: JAX's garbage-collection hook printed
``Exception ignored in ...`` and the drawing went on as if nothing had happened.
:func:`sigint` makes sure the interrupt still arrives, at the end of the block at the latest.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def sigint() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` in the block, and again when the block ends if
    the first one was swallowed (by a callback that ignores exceptions, such as JAX's
    garbage-collection hook), so that an interrupt is never lost. Outside the main thread
    (where signals are not delivered) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hits: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        hits.append(signum)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if hits:
        raise KeyboardInterrupt
