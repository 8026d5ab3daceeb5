"""The `bbbrun` program's entry point: imports nothing until it can report a Ctrl-C in one line.

A Ctrl-C while Python imports torch, Typer or rich (a second or more) would
otherwise end in a traceback from whichever import it hit; one that arrives
after the command has reported how it ended must not add a second line.
"""

from __future__ import annotations

import signal
import sys


def main() -> None:
    from bbbrun.interrupts import guarded, install_import_guard

    install_import_guard()
    signal.signal(signal.SIGINT, guarded(signal.default_int_handler))
    try:
        try:
            from bbbrun.cli import app

            app()
        finally:
            # The command has ended (and said how); a late signal must not turn its exit into a traceback.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
    except KeyboardInterrupt:
        console = sys.modules.get("bbbrun.console")
        if not getattr(console, "reported", False):
            print("error: interrupted while starting; nothing was written", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
