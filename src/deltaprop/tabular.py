"""CSV tables for the ``deltaprop`` command: read as text, checked cell by cell.

A table is a UTF-8 CSV file (a byte-order mark is allowed) with a header row of distinct,
non-empty column names and at least one data row with as many fields as the header; blank
lines are skipped and quoting follows RFC 4180 strictly (a quote must close its field, so a
quote left open is reported where it opened, not where the file ends).  Cells are kept as
stripped text until a column is asked for:

* :func:`numeric_matrix` reads feature or target columns as finite float64 numbers;
* :func:`label_column` reads a class-label column exactly: integers as int64 (never through a
  float, so 9007199254740993 stays itself), other numbers as float64, anything else as text;
  a label it cannot keep exactly (beyond int64) is refused.

Every problem raises :class:`TableError` naming the file, the line (where the record starts)
and the column.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from deltaprop.tabular import read_csv, numeric_matrix, label_column
>>> path = Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_text("a,label\\n1.5,9007199254740993\\n2,3\\n")
>>> table = read_csv(str(path))
>>> numeric_matrix(table, ["a"]).ravel().tolist(), label_column(table, "label").tolist()
([1.5, 2.0], [9007199254740993, 3])
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

import numpy as np

Array = np.ndarray

_INT64 = np.iinfo(np.int64)
_NOT_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity",
               "-infinity"}


class TableError(ValueError):
    """A CSV file that is not a clean table, or a cell that does not hold what it should."""


class LabelRangeError(TableError):
    """A label column holding an integer that int64 cannot keep exactly."""


@dataclass
class Table:
    """A CSV file read as text: header names, rows of stripped cells, their line numbers.

    ``lines[r]`` is the line on which data row r starts (rows may span lines inside quotes).
    """

    path: str
    header: list[str]
    rows: list[list[str]]
    lines: list[int]

    def column_index(self, name: str) -> int:
        """Position of column ``name``; TableError listing the columns if there is none."""
        if name not in self.header:
            available = ", ".join(repr(h) for h in self.header)
            raise TableError(f"{self.path}: no column {name!r}; the columns are {available}")
        return self.header.index(name)

    def where(self, r: int, c: int) -> str:
        """Where data row r, column c is: ``FILE: line L, column 'NAME'``."""
        return f"{self.path}: line {self.lines[r]}, column {self.header[c]!r}"


def _open_text(path: str) -> TextIO:
    if not os.path.lexists(path):
        raise TableError(f"{path}: no such file")
    if os.path.isdir(path):
        raise TableError(f"{path}: is a directory, not a CSV file")
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _records(path: str) -> list[tuple[int, list[str]]]:
    """(start line, stripped cells) of every non-blank record of the file."""
    records: list[tuple[int, list[str]]] = []
    with _open_text(path) as fh:
        reader = csv.reader(fh, strict=True)
        start = 1
        try:
            for row in reader:
                if row:
                    records.append((start, [cell.strip() for cell in row]))
                start = reader.line_num + 1
        except UnicodeDecodeError as exc:
            raise TableError(f"{path}: is not UTF-8 text (byte {exc.start})") from exc
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise TableError(_open_quote(path, start, records)) from exc
            raise TableError(f"{path}: line {reader.line_num}: {exc}") from exc
        except OSError as exc:
            raise TableError(f"{path}: line {reader.line_num}: {exc}") from exc
    return records


def _open_quote(path: str, line: int, records: list[tuple[int, list[str]]]) -> str:
    """The message for a quote opened on ``line`` and never closed."""
    with _open_text(path) as fh:
        text = next((t for i, t in enumerate(fh, start=1) if i == line), "")
    fields = next(csv.reader([text]), [""])
    column = f"field {len(fields)}"
    if records and len(fields) <= len(records[0][1]):
        column = f"column {records[0][1][len(fields) - 1]!r}"
    return (f"{path}: line {line}, {column}: a quoted field opens here and is never closed "
            "(the file ends inside it); close the quote or remove it")


def read_csv(path: str) -> Table:
    """Read a CSV file with a header row; TableError for anything that is not a clean table."""
    records = _records(path)
    if not records:
        raise TableError(f"{path}: is empty")
    (_, header), body = records[0], records[1:]
    _check_header(path, header)
    if not body:
        raise TableError(f"{path}: has a header but no data rows")
    for line, row in body:
        if len(row) != len(header):
            raise TableError(f"{path}: line {line} has {len(row)} fields but the header has "
                             f"{len(header)}")
    return Table(path, header, [row for _, row in body], [line for line, _ in body])


def _check_header(path: str, header: list[str]) -> None:
    for i, name in enumerate(header):
        if not name:
            raise TableError(f"{path}: line 1: column {i + 1} of the header has no name")
        if name in header[:i]:
            raise TableError(f"{path}: line 1: column name {name!r} appears twice in the header")


def _number(table: Table, r: int, c: int) -> float:
    """Cell (r, c) as a finite float64, or TableError naming it."""
    cell, where = table.rows[r][c], table.where(r, c)
    if not cell:
        raise TableError(f"{where}: empty cell (missing values are not supported)")
    try:
        value = float(cell)
    except ValueError:
        raise TableError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        if cell.lower() in _NOT_FINITE:
            raise TableError(f"{where}: {cell!r} is not a finite number (NaN and infinity are "
                             "not allowed)")
        raise TableError(f"{where}: {cell!r} is beyond the range of float64 numbers "
                         "(magnitudes up to 1.8e308)")
    return value


def numeric_matrix(table: Table, names: Sequence[str]) -> Array:
    """The named columns as a float array (N, len(names)); the first bad cell raises."""
    missing = [n for n in names if n not in table.header]
    if missing:
        raise TableError(f"{table.path}: lacks column(s) {', '.join(map(repr, missing))} that "
                         f"the model needs; the file has {', '.join(map(repr, table.header))}")
    cols = [table.header.index(n) for n in names]
    out = np.empty((len(table.rows), len(cols)))
    for r in range(len(table.rows)):
        for j, c in enumerate(cols):
            out[r, j] = _number(table, r, c)
    return out


def _as_int(cell: str) -> int | None:
    try:
        return int(cell)
    except ValueError:
        return None


def label_column(table: Table, name: str) -> Array:
    """A class-label column, kept exactly.

    Returns int64 when every cell is an integer, written as one ("7") or as a number whose
    float64 value is exactly that integer ("7.0", "1e17"); float64 when some numbers are not
    integers (scikit-learn's classifiers refuse those as "continuous"); else the cells as
    text.

    Raises
    ------
    TableError
        For an empty cell, or NaN, infinity or a number beyond float64 among numbers.
    LabelRangeError
        For an integer beyond int64, or an integral number that float64 does not hold
        exactly (e.g. "2.0000000000000001").
    """
    c = table.column_index(name)
    cells = [row[c] for row in table.rows]
    for r, cell in enumerate(cells):
        if not cell:
            raise TableError(f"{table.where(r, c)}: empty cell (missing labels are not "
                             "supported)")
    ints = [_as_int(cell) for cell in cells]
    if all(i is not None for i in ints):
        return _int_labels(table, c, ints)
    try:
        values = np.array([float(cell) for cell in cells])
    except ValueError:
        return np.array(cells)
    for r in range(len(cells)):
        _number(table, r, c)  # raises for NaN, infinity and out-of-range cells
    if not np.all(values == np.round(values)):
        return values
    return _int_labels(table, c, [_exact_int(table, r, c) for r in range(len(cells))])


def _exact_int(table: Table, r: int, c: int) -> int:
    """The integer that cell (r, c), an integral number, denotes; LabelRangeError unless its
    float64 value is exactly that integer."""
    cell = table.rows[r][c]
    value = float(cell)
    if Decimal(cell) != Decimal(value):
        raise LabelRangeError(f"{table.where(r, c)}: label {cell!r} is not exactly a float64 "
                              "number, so it cannot be kept exactly; write the labels as "
                              "integers or text")
    return int(value)


def _int_labels(table: Table, c: int, ints: list[int | None]) -> Array:
    for r, value in enumerate(ints):
        if value is not None and not _INT64.min <= value <= _INT64.max:
            raise LabelRangeError(f"{table.where(r, c)}: integer label "
                                  f"{table.rows[r][c]!r} is beyond the 64-bit range; "
                                  "write the labels as text (e.g. with a letter in front)")
    return np.array(ints, dtype=np.int64)
