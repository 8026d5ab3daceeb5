"""Delimited text tables (CSV, semicolon or tab separated) read into named columns of text.

A header row is required; comma, semicolon and tab delimiters, UTF-8 with or
without a byte-order mark, and quoted fields are accepted. Numbers are parsed
later, by whoever knows which columns are inputs.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bbbrun.errors import DataError
from bbbrun.files import check_readable_file

DELIMITERS = (",", ";", "\t")
MAX_TABLE_BYTES = 2 * 2**30  # a table read whole into memory (training data); streamed inputs have no limit
MAX_LINE_CHARS = 1_000_000  # one row; a longer "line" is a binary or hostile file
FLOAT32_MAX = 3.4028234663852886e38  # the model computes in float32


@dataclass(frozen=True)
class Table:
    path: Path
    header: tuple[str, ...]
    rows: list[list[str]]
    first_row: int = 1  # the file's data-row number of rows[0], for messages (a chunk of a larger file)

    def column(self, name: str) -> list[str]:
        index = self.header.index(name)
        return [row[index] for row in self.rows]

    def require(self, names: tuple[str, ...] | list[str], what: str) -> None:
        """Refuse a column name the header does not have, naming what it was asked for."""
        for name in names:
            if name not in self.header:
                raise DataError(f"{self.path} has no column named {name!r} ({what}); its columns are "
                                f"{', '.join(map(repr, self.header[:20]))}{' ...' if len(self.header) > 20 else ''}")


def read_table(path: Path, what: str = "CSV data") -> Table:
    """Every row of a delimited text file, checked for a header and a constant number of fields."""
    check_readable_file(path, what, DataError)
    check_table_size(path, what)
    with csv_errors(path), path.open(newline="", encoding="utf-8-sig") as handle:
        header, numbered = open_rows(path, handle)
        rows = [row for _, row in checked_widths(path, header, numbered)]
    return Table(path, header, rows)


def check_table_size(path: Path, what: str) -> None:
    """Refuse, before reading it, a table too large to hold in memory as text and numbers."""
    size = path.stat().st_size
    if size > MAX_TABLE_BYTES:
        raise DataError(f"{path} is {size / 2**30:.1f} GiB; {what} is read whole into memory (limit "
                        f"{MAX_TABLE_BYTES // 2**30} GiB): subsample it, or predict on it with bbbrun predict, "
                        "which streams")


def bounded_lines(path: Path, handle: TextIO) -> Iterator[str]:
    """The file's lines, refusing one longer than MAX_LINE_CHARS before it is read whole."""
    while line := handle.readline(MAX_LINE_CHARS + 1):
        if len(line) > MAX_LINE_CHARS:
            raise DataError(f"{path} has a line longer than {MAX_LINE_CHARS:,} characters; expected a CSV file")
        yield line


@contextlib.contextmanager
def csv_errors(path: Path) -> Iterator[None]:
    """A file that cannot be decoded or parsed as CSV, as one DataError line."""
    try:
        yield
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; expected a CSV file") from None
    except csv.Error as err:
        raise DataError(f"{path} is not a readable CSV file ({err})") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None


def open_rows(path: Path, handle: TextIO) -> tuple[tuple[str, ...], Iterator[tuple[int, list[str]]]]:
    """The checked header, and the data rows numbered from 1, read lazily; blank lines carry nothing.

    The delimiter is sniffed from the first non-blank line.
    """
    lines = bounded_lines(path, handle)
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise DataError(f"{path} is empty; expected a header row and data rows")
    reader = csv.reader(itertools.chain([first], lines), delimiter=sniff_delimiter(first))
    records = (record for record in reader if any(field.strip() for field in record))
    header = tuple(name.strip() for name in next(records))
    check_header(path, header)
    return header, enumerate(records, start=1)


def checked_widths(path: Path, header: tuple[str, ...], numbered: Iterable[tuple[int, list[str]]]
                   ) -> Iterator[tuple[int, list[str]]]:
    """The numbered rows, each refused unless it has as many fields as the header."""
    for number, row in numbered:
        if len(row) != len(header):
            raise DataError(f"{path}, data row {number}: {len(row)} fields where the header has {len(header)}")
        yield number, row


def sniff_delimiter(first_line: str) -> str:
    """The delimiter the header uses most (a header of one column has none of them: any will do)."""
    counts = {d: first_line.count(d) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: counts[d])


def check_header(path: Path, header: tuple[str, ...]) -> None:
    if all(is_number(name) for name in header):
        raise DataError(f"{path} has no header row (its first row is all numbers); add a row of column names")
    empty = [i + 1 for i, name in enumerate(header) if not name]
    if empty:
        raise DataError(f"{path}: header field {empty[0]} is empty; every column needs a name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path}: the header names column {name!r} twice")
        seen.add(name)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_number(path: Path, row: int, name: str, text: str) -> float:
    """One cell as a finite number, or one line naming the file, row and column."""
    cell = text.strip()
    if not cell:
        raise DataError(f"{path}, data row {row}, column {name!r}: the cell is empty; every input and the target "
                        "need a number")
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(f"{path}, data row {row}, column {name!r}: expected a finite number, got {cell[:40]!r}")
    if abs(value) > FLOAT32_MAX:
        raise DataError(f"{path}, data row {row}, column {name!r}: {cell[:40]} is beyond the range the model "
                        f"computes in (about ±3.4e38); rescale the column")
    return value
