"""Reading labelled CSV data into typed columns and the model's input matrix (no pandas)."""
from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contracts.schema import MISSING_CATEGORY, Feature, FeatureSchema, FeatureType

# Spellings of "no value" accepted in CSV input.
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})


class DataError(ValueError):
    """The data cannot be used; the message names the column and the problem."""


@dataclass
class Table:
    """A CSV as raw strings, column by column, in header order (duplicate names kept)."""

    header: list[str]
    columns: list[list[str]]
    sha256: str

    @property
    def n_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def column(self, name: str) -> list[str]:
        return self.columns[self.header.index(name)]


def is_missing(value: str) -> bool:
    return value.strip().lower() in MISSING_TOKENS


def read_csv(path: str | os.PathLike) -> Table:
    """Read a CSV file; raises DataError for an empty file or ragged rows."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    return parse_csv(path.read_bytes(), path.name)


def parse_csv(raw: bytes, name: str) -> Table:
    """A CSV's bytes as a Table (name: how messages call it); raises DataError for an empty file or ragged rows."""
    try:
        text = raw.decode("utf-8-sig", errors="strict") if raw else ""
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not UTF-8 text ({exc})") from None
    # The csv module splits records itself, on \r and \n outside quotes only, so a quoted value keeps its
    # line breaks and an unquoted one keeps \v, \f, \x1c-\x1e, \x85, \u2028 and \u2029, which
    # str.splitlines() would cut it at (newline="": no translation, the value as written).
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [r for r in reader if r]  # blank lines carry nothing
    except csv.Error as exc:  # e.g. an unclosed quote that swallows the rest of a large file
        raise DataError(f"{name}: not readable as CSV at line {reader.line_num} ({exc})") from None
    if not rows:
        raise DataError(f"{name}: the file is empty (no header row)")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    for lineno, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{name}: line {lineno} has {len(row)} fields, the header has {len(header)}")
    columns = [list(col) for col in zip(*body)] if body else [[] for _ in header]
    return Table(header=header, columns=columns, sha256=hashlib.sha256(raw).hexdigest())


def csv_bytes(table: Table, rows: np.ndarray) -> bytes:
    """The header and the given rows, values exactly as read."""
    return rows_csv(table.header, [[col[i] for col in table.columns] for i in rows])


def rows_csv(header: list[str], rows: list[list[str]]) -> bytes:
    """A CSV (UTF-8, \n line ends) that parse_csv reads back as these values.

    csv.writer quotes a value holding the line terminator (\n) but, before Python 3.12, not one holding a
    lone \r, which the reader then ends the record at: such a record (rare) is written with every field
    quoted. Any other record is written as csv.writer always wrote it.
    """
    out = io.StringIO()
    plain = csv.writer(out, lineterminator="\n")
    plain.writerow(header)
    plain.writerows(rows)
    text = out.getvalue()
    if "\r" in text:  # only a value can hold one: write again, quoting those records whole
        out = io.StringIO()
        plain = csv.writer(out, lineterminator="\n")
        quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        for row in [header, *rows]:
            (quoted if any("\r" in value for value in row) else plain).writerow(row)
        text = out.getvalue()
    return text.encode()


def parse_float(value: str) -> float:
    """A CSV cell as float: NaN when missing, ValueError when not a number."""
    if is_missing(value):
        return math.nan
    number = float(value)
    if math.isinf(number):
        raise ValueError(f"infinite value {value!r}")
    return number


def numeric_column(values: list[str]) -> tuple[np.ndarray, list[int]]:
    """Parse a column as floats; returns the array and the row indices that did not parse."""
    out = np.empty(len(values), dtype=np.float64)
    bad: list[int] = []
    for i, v in enumerate(values):
        try:
            out[i] = parse_float(v)
        except ValueError:
            out[i] = math.nan
            bad.append(i)
    return out, bad


def looks_numeric(values: list[str]) -> bool:
    present = [v for v in values if not is_missing(v)]
    if not present:
        return True  # an all-missing column is reported by validation, not typed here
    _, bad = numeric_column(present)
    return not bad


def categorical_column(values: list[str]) -> np.ndarray:
    return np.array([MISSING_CATEGORY if is_missing(v) else v.strip() for v in values], dtype=object)


def typed_columns(table: Table, schema: FeatureSchema) -> dict[str, np.ndarray]:
    """Each feature as float64 (NaN = missing) or object array of str (MISSING_CATEGORY = missing)."""
    out: dict[str, np.ndarray] = {}
    for f in schema.features:
        values = table.column(f.name)
        if f.type is FeatureType.NUMERIC:
            arr, bad = numeric_column(values)
            if bad:
                raise DataError(
                    f"column {f.name!r}: {len(bad)} value(s) are not numbers, e.g. {values[bad[0]]!r} on line {bad[0] + 2}"
                )
            out[f.name] = arr
        else:
            out[f.name] = categorical_column(values)
    return out


def infer_schema(table: Table, target: str, categorical: set[str] | frozenset[str] = frozenset()) -> FeatureSchema:
    """Feature types (numeric unless named categorical or not parseable), categories and ranges."""
    features = []
    for name, values in zip(table.header, table.columns):
        if name == target:
            continue
        n = max(len(values), 1)
        missing_rate = sum(is_missing(v) for v in values) / n
        if name not in categorical and looks_numeric(values):
            arr, _ = numeric_column(values)
            finite = arr[~np.isnan(arr)]
            features.append(Feature(
                name=name, type=FeatureType.NUMERIC, missing_rate=missing_rate,
                min=float(finite.min()) if finite.size else None,
                max=float(finite.max()) if finite.size else None,
                integer=bool(finite.size and np.all(finite == np.round(finite))),
            ))
        else:
            cats = sorted({v.strip() for v in values if not is_missing(v)})
            features.append(Feature(name=name, type=FeatureType.CATEGORICAL, categories=cats, missing_rate=missing_rate))
    return FeatureSchema(target=target, features=features)


def feature_matrix(schema: FeatureSchema, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The 2-D model input in schema order: float64 when all features are numeric, else object."""
    arrays = [columns[name] for name in schema.names]
    if not schema.categorical:
        return np.column_stack(arrays).astype(np.float64, copy=False)
    return np.column_stack([a.astype(object) for a in arrays])
