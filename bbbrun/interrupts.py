"""Signal handlers that never fire inside an import.

A KeyboardInterrupt raised while Python imports a module (torch, numpy,
matplotlib import lazily, some inside `try: ... except`) can leave that
module half-initialised in a library that swallowed it, and the program
fails later with an unrelated traceback. `guarded` wraps a handler so that a
signal arriving during an import of the main thread is delivered when that
import returns; `install_import_guard` counts those imports.
"""

from __future__ import annotations

import builtins
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]

_original_import = builtins.__import__
_depth = 0  # imports under way in the main thread
_pending: list[tuple[Handler, int]] = []


def _guarded_import(*args: Any, **kwargs: Any) -> Any:
    global _depth
    if threading.current_thread() is not threading.main_thread():
        return _original_import(*args, **kwargs)
    _depth += 1
    try:
        return _original_import(*args, **kwargs)
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            handler, signum = _pending.pop()
            _pending.clear()
            handler(signum, None)


def install_import_guard() -> None:
    """Count the main thread's imports (once per process; the bbbrun program calls it at start)."""
    if builtins.__import__ is not _guarded_import:
        builtins.__import__ = _guarded_import


def guarded(handler: Handler) -> Handler:
    """`handler`, deferred to the end of the current import when a signal arrives during one."""

    def wrapper(signum: int, frame: FrameType | None) -> Any:
        if _depth > 0:
            _pending.append((handler, signum))
            return None
        return handler(signum, frame)

    return wrapper


class SignalStop(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised where the program is (as Ctrl-C's KeyboardInterrupt), naming the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# Signals raise_stop has raised in this process, oldest first: code that caught one (a run that
# records its own interrupt and returns) can still see that the user asked to stop.
received: list[int] = []


def raise_stop(signum: int, _frame: FrameType | None) -> None:
    received.append(signum)
    raise SignalStop(signum)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise SignalStop in the block (SIGTERM would otherwise end the process at once,
    orphaning its workers); each further signal raises again, so a second one stops the clean-up too."""
    previous = {s: signal.signal(s, guarded(raise_stop)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
