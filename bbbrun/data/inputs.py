"""New rows to predict at or score, streamed from a delimited file in chunks, by column name.

The dialect is read_table's (header required, comma, semicolon or tab,
UTF-8 with or without a byte-order mark, quoted fields), but the rows are
read CHUNK_ROWS at a time, so a file larger than memory can be predicted.
Columns are found by name in any order; extra columns are ignored;
categorical inputs one-hot encode with the checkpoint's categories.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bbbrun.data.base import InputSpec
from bbbrun.data.encode import encode, numeric_column
from bbbrun.data.labels import codes_of
from bbbrun.data.table import Table, checked_widths, csv_errors, open_rows
from bbbrun.errors import DataError
from bbbrun.files import check_readable_file

CHUNK_ROWS = 20_000  # rows encoded and predicted at once


@dataclass(frozen=True)
class InputChunk:
    """Consecutive data rows of a file: their input fields as written, encoded inputs, and targets if asked."""

    fields: list[list[str]]  # (n, num_features) the feature cells as text, in the model's order
    x: np.ndarray  # (n, encoded width) float32
    y: np.ndarray | None  # (n,) float64 (class codes for a classifier), or None when no target was asked for


def read_input_chunks(path: Path, spec: InputSpec, with_target: bool = False) -> Iterator[InputChunk]:
    """The file's rows CHUNK_ROWS at a time; bad cells raise DataError naming row and column.

    Errors in a chunk are raised before that chunk is yielded, so a file that
    is bad in its first CHUNK_ROWS rows yields nothing.
    """
    check_readable_file(path, "CSV input", DataError)
    yielded = False
    with csv_errors(path), path.open(newline="", encoding="utf-8-sig") as handle:
        header, numbered = open_rows(path, handle)
        table = Table(path, header, [])
        table.require(list(spec.feature_names), "an input the model was trained on")
        if with_target:
            table.require([spec.target_name], "the target, which scoring needs")
        rows = checked_widths(path, header, numbered)
        while block := list(itertools.islice(rows, CHUNK_ROWS)):
            yield make_chunk(Table(path, header, [row for _, row in block], block[0][0]), spec, with_target)
            yielded = True
    if not yielded:
        raise DataError(f"{path} has a header but no data rows")


def target_column(table: Table, spec: InputSpec) -> np.ndarray:
    """The target as numbers, or for a classifier as its class codes (an unknown class is refused)."""
    if not spec.classes:
        return numeric_column(table, spec.target_name)
    where = f"{table.path}, column {spec.target_name!r}"
    return codes_of(table.column(spec.target_name), spec.classes, where, table.first_row)


def make_chunk(table: Table, spec: InputSpec, with_target: bool) -> InputChunk:
    """Encode a chunk of rows; cells are named by their row number in the whole file."""
    x = encode(table, spec.feature_names, spec.categories)
    y = target_column(table, spec) if with_target else None
    columns = [table.column(name) for name in spec.feature_names]
    fields = [[cell.strip() for cell in cells] for cells in zip(*columns, strict=True)]
    return InputChunk(fields, x, y)
