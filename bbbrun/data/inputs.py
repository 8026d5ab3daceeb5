"""New rows to predict at or score, streamed from a delimited file in chunks, by column name.

The dialect is read_table's (header required, comma, semicolon or tab,
UTF-8 with or without a byte-order mark, quoted fields), but the rows are
read CHUNK_ROWS at a time, so a file larger than memory can be predicted.
Columns are found by name in any order; extra columns are ignored;
categorical inputs one-hot encode with the checkpoint's categories.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from bbbrun.data.base import InputSpec
from bbbrun.data.encode import encode
from bbbrun.data.table import Table, check_header, parse_number, sniff_delimiter
from bbbrun.errors import DataError
from bbbrun.files import check_readable_file

CHUNK_ROWS = 20_000  # rows encoded and predicted at once


@dataclass(frozen=True)
class InputChunk:
    """Consecutive data rows of a file: their input fields as written, encoded inputs, and targets if asked."""

    fields: list[list[str]]  # (n, num_features) the feature cells as text, in the model's order
    x: np.ndarray  # (n, encoded width) float32
    y: np.ndarray | None  # (n,) float64, or None when no target was asked for


def read_input_chunks(path: Path, spec: InputSpec, with_target: bool = False) -> Iterator[InputChunk]:
    """The file's rows CHUNK_ROWS at a time; bad cells raise DataError naming row and column.

    Errors in a chunk are raised before that chunk is yielded, so a file that
    is bad in its first CHUNK_ROWS rows yields nothing.
    """
    check_readable_file(path, "CSV input", DataError)
    wanted = (*spec.feature_names, *((spec.target_name,) if with_target else ()))
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            records = nonblank_records(path, handle)
            header = read_header(path, records, wanted)
            numbered = enumerate(records, start=1)
            yielded = False
            while block := list(itertools.islice(numbered, CHUNK_ROWS)):
                yield make_chunk(path, header, block, spec, with_target)
                yielded = True
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; expected a CSV file") from None
    except csv.Error as err:
        raise DataError(f"{path} is not a readable CSV file ({err})") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    if not yielded:
        raise DataError(f"{path} has a header but no data rows")


def nonblank_records(path: Path, handle: TextIO) -> Iterator[list[str]]:
    """csv records with blank lines skipped, the delimiter sniffed from the first non-blank line."""
    lines = (line for line in handle)
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise DataError(f"{path} is empty; expected a header row and data rows")
    reader = csv.reader(itertools.chain([first], lines), delimiter=sniff_delimiter(first))
    return (record for record in reader if any(field.strip() for field in record))


def read_header(path: Path, records: Iterator[list[str]], wanted: tuple[str, ...]) -> tuple[str, ...]:
    header = tuple(name.strip() for name in next(records))
    check_header(path, header)
    Table(path, header, []).require(list(dict.fromkeys(wanted)), "the model's inputs and target")
    return header


def make_chunk(
    path: Path, header: tuple[str, ...], block: list[tuple[int, list[str]]], spec: InputSpec, with_target: bool
) -> InputChunk:
    """Check and encode numbered rows (data row numbers count from 1, blank lines not counted)."""
    for number, row in block:
        if len(row) != len(header):
            raise DataError(f"{path}, data row {number}: {len(row)} fields where the header has {len(header)}")
    rows = [row for _, row in block]
    first = block[0][0]
    table = Table(path, header, rows)
    columns = {name: table.column(name) for name in (*spec.feature_names, spec.target_name) if name in header}
    x = encode_columns(table, first, spec)
    y = parse_column(path, first, spec.target_name, columns[spec.target_name]) if with_target else None
    fields = [[cell.strip() for cell in cells] for cells in zip(*(columns[n] for n in spec.feature_names),
                                                                 strict=True)]
    return InputChunk(fields, x, y)


def encode_columns(table: Table, first: int, spec: InputSpec) -> np.ndarray:
    """(n, width) float32 as encode gives, numbers parsed here so that errors carry file-wide row numbers."""
    blocks = [encode(table, (name,), spec.categories) if name in spec.categories
              else parse_column(table.path, first, name, table.column(name))[:, None]
              for name in spec.feature_names]
    return np.concatenate(blocks, axis=1).astype(np.float32)


def parse_column(path: Path, first: int, name: str, cells: list[str]) -> np.ndarray:
    """(n,) float64 numbers of a column whose first cell is data row `first`."""
    return np.array([parse_number(path, first + i, name, cell) for i, cell in enumerate(cells)])
