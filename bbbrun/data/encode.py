"""From a table's text columns to model inputs: numbers as they are, categories one-hot."""

from __future__ import annotations

import numpy as np

from bbbrun.data.table import Table, is_number, parse_number
from bbbrun.errors import DataError


def numeric_column(table: Table, name: str) -> np.ndarray:
    """A column as float64 numbers; an empty or non-numeric cell names its row and column."""
    first = table.first_row
    return np.array([parse_number(table.path, first + i, name, c) for i, c in enumerate(table.column(name))])


def check_numeric(table: Table, names: tuple[str, ...], categorical: tuple[str, ...]) -> None:
    """Refuse a text-valued input that is not declared categorical, naming every such column.

    A column of numbers with a stray word in it is a typo, not a text column: that cell is named by its
    row and column instead, since one-hot encoding a numeric column would be the wrong advice.
    """
    texts = []
    for name in names:
        if name in categorical:
            continue
        cells = table.column(name)
        bad = [i for i, c in enumerate(cells) if c.strip() and not is_number(c)]
        if not bad:
            continue
        if 2 * len(bad) < sum(1 for c in cells if c.strip()):
            parse_number(table.path, table.first_row + bad[0], name, cells[bad[0]])
        texts.append(name)
    if texts:
        raise DataError(f"{table.path}: column(s) {', '.join(map(repr, texts))} hold text, not numbers; list them "
                        "in data.categorical to one-hot encode them, or leave them out of data.features")


def categories_of(table: Table, name: str, rows: np.ndarray) -> tuple[str, ...]:
    """A categorical column's categories as the training rows show them, sorted."""
    values = table.column(name)
    return tuple(sorted({values[i].strip() for i in rows}))


def encode(table: Table, names: tuple[str, ...], categories: dict[str, tuple[str, ...]]) -> np.ndarray:
    """(N, width) float32 inputs: one column per numeric input, one per category of a categorical one.

    A category the training rows never showed encodes as all zeros.
    """
    blocks = []
    for name in names:
        if name in categories:
            values = np.array([v.strip() for v in table.column(name)])
            empty = np.flatnonzero(values == "")
            if len(empty):
                raise DataError(f"{table.path}, data row {table.first_row + int(empty[0])}, column {name!r}: the "
                                "cell is empty; a categorical input needs a category in every row")
            blocks.append((values[:, None] == np.array(categories[name])[None, :]).astype(np.float64))
        else:
            blocks.append(numeric_column(table, name)[:, None])
    return np.concatenate(blocks, axis=1).astype(np.float32)


def encoded_width(names: tuple[str, ...], categories: dict[str, tuple[str, ...]]) -> int:
    return sum(len(categories[n]) if n in categories else 1 for n in names)
