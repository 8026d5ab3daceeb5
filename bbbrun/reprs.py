"""Quoting a user's value in a message: bounded, so a huge or self-referential value cannot hang an error.

A YAML alias can make a list of a billion items out of a few lines, and a
checkpoint can hold anything plain; `repr` of either could run for minutes or
raise. Every message that quotes such a value goes through `short_repr`.
"""

from __future__ import annotations

import reprlib
from typing import Any

LIMIT = 80  # characters of a quoted value in a message


class _BoundedRepr(reprlib.Repr):
    """reprlib's bounded repr, also for integers too long to print (Python refuses > 4300 digits)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 6
        self.maxstring = self.maxother = self.maxlong = 60

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 200:
            return f"<an integer of about {int(x.bit_length() * 0.30103)} digits>"
        return super().repr_int(x, level)


_REPR = _BoundedRepr()


def short_repr(value: Any, limit: int = LIMIT) -> str:
    """repr(value), cut to about `limit` characters, in time bounded whatever the value's size or cycles."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a value whose own __repr__ fails is named by its type
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
