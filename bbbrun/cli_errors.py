"""Command-line mistakes as one line: Typer draws option errors as boxes; bbbrun prints `error: ...`.

`OneLineGroup` runs Click without its standalone error handling and reports
a usage error (unknown option, bad value, missing argument) as one line on
stderr naming the command's --help, exit 2, like every other bad input.
(`bbbrun.entry` reports a Ctrl-C during start-up the same way.)
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

# Click's exception classes, found through Typer's own (recent Typers vendor Click under another name).
_CLICK = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
ClickException: type[Exception] = _CLICK["ClickException"]
UsageError: type[Exception] = _CLICK["UsageError"]


def one_line(message: str) -> str:
    """The message on a single line (Click's may span several)."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


class OneLineGroup(TyperGroup):
    """The top-level command group: its usage errors end as one `error:` line and exit 2."""

    def main(  # type: ignore[override]  # the signature differs across Typer versions
            self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as err:
            if type(err).__name__ == "NoArgsIsHelpError":  # `bbbrun` alone: the help is the answer
                print(err.format_message(), end="")  # type: ignore[attr-defined]
                sys.exit(2)
            context = getattr(err, "ctx", None)
            where = f"; see {context.command_path} --help" if isinstance(err, UsageError) and context else ""
            print(f"error: {one_line(err.format_message()).rstrip('.')}{where}", file=sys.stderr)  # type: ignore[attr-defined]
            sys.exit(getattr(err, "exit_code", 2))
        except typer.Abort:
            print("error: interrupted", file=sys.stderr)
            sys.exit(128 + signal.SIGINT)
        code = code if isinstance(code, int) else 0
        if code == 128 + signal.SIGINT and not getattr(sys.modules.get("bbbrun.console"), "reported", False):
            # Typer turns a Ctrl-C while it parses into a silent exit 130; say what happened.
            print("error: interrupted; nothing was written", file=sys.stderr)
        sys.exit(code)
