"""Rendering scored rows as JSON Lines or CSV, column by column (contracts.batch_job.OutputRow is the shape).

A row is the same few constant pieces around a few values, so each column is rendered once by a C
encoder (msgspec), and the rows are assembled by interleaving the columns with the constants in one
list and joining it: no Python work per row, which keeps writing cheaper than the model call.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Any

import msgspec
import numpy as np

from inference.runtime import Output

_encoder = msgspec.json.Encoder()
_CSV_SPECIAL = re.compile(r'[",\r\n]')


class RowWriter:
    """One model's rows in one format."""

    def __init__(self, classes: list[str] | None, model_version: str, output_format: str) -> None:
        self.classes = classes
        self.model_version = model_version
        self.csv = output_format == "csv"
        self._labels = (np.array([self._text(c) for c in classes], dtype=object) if classes else None)

    def header(self) -> bytes:
        """CSV's first line (JSON Lines has none)."""
        if not self.csv:
            return b""
        probabilities = [f"probability_{c}" for c in self.classes] if self.classes else []
        return _csv_row(["id", "prediction", *probabilities, "model_version"])

    def render(self, file_name: str, numbers: np.ndarray, ids: list[str] | None, out: Output,
               warnings: dict[int, list[str]] | None = None) -> bytes:
        """Rows k = 0..n-1: id (ids[k], else "<file>:<numbers[k]>"), prediction, probabilities, version.

        warnings: row k → its warnings (JSON Lines only; CSV has no column for them).
        """
        n = len(numbers)
        if n == 0:
            return b""
        if ids is not None and self.csv and any(_CSV_SPECIAL.search(i) for i in ids):
            return self._csv_module(file_name, numbers, ids, out)
        values = ([self._labels[out.values].tolist()] if self._labels is not None else []) + (
            [_numbers(out.proba[:, k]) for k in range(len(self.classes))] if self.classes else [_numbers(out.values)])
        constants = self._constants(file_name, given_ids=ids is not None)
        first = (_strings(ids) if not self.csv else [i.encode() for i in ids]) if ids is not None else _numbers(numbers)
        pieces = _interleave(constants, [first, *values], n)
        if warnings and not self.csv:
            stride = 2 * (len(values) + 1) + 1
            for k, found in warnings.items():
                end = (k + 1) * stride - 1
                pieces[end] = pieces[end][:-2] + b',"warnings":' + _encoder.encode(found) + b"}\n"
        return b"".join(pieces)

    def _constants(self, file_name: str, *, given_ids: bool) -> list[bytes]:
        """The pieces between the values of a row: before the id, between each value, after the last."""
        version = self._text(self.model_version)
        if self.csv:
            before_id = b"" if given_ids else _csv_field(file_name + ":")[:-1].encode() if _CSV_SPECIAL.search(
                file_name) else (file_name + ":").encode()
            after_id = b'",' if not given_ids and _CSV_SPECIAL.search(file_name) else b","
            between = [b","] * (len(self.classes) if self.classes else 0)
            return [before_id, after_id, *between, b"," + version + b"\n"]
        name = _encoder.encode(file_name)[1:-1]
        before_id, after_id = (b'{"id":', b',"prediction":') if given_ids else (b'{"id":"' + name + b":", b'","prediction":')
        tail = b',"model_version":' + version
        if not self.classes:
            return [before_id, after_id, tail + b"}\n"]
        keys = [_encoder.encode(c) for c in self.classes]
        return [before_id, after_id, tail + b',"probabilities":{' + keys[0] + b":",
                *(b"," + key + b":" for key in keys[1:]), b"}}\n"]

    def _text(self, value: Any) -> bytes:
        """A constant value as it appears in a row: JSON, or a CSV field."""
        return _csv_field(str(value)).encode() if self.csv else _encoder.encode(value)

    def _csv_module(self, file_name: str, numbers: np.ndarray, ids: list[str], out: Output) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for k, row_id in enumerate(ids):
            if self.classes:
                row = [self.classes[int(out.values[k])], *out.proba[k].tolist()]
            else:
                row = [float(out.values[k])]
            writer.writerow([row_id or f"{file_name}:{int(numbers[k])}", *row, self.model_version])
        return buffer.getvalue().encode()


def _interleave(constants: list[bytes], columns: list[list[bytes]], n: int) -> list[bytes]:
    """[c0, col0[0], c1, col1[0], …, cK, c0, col0[1], …]: every row's pieces in one list, by slice assignment."""
    stride = 2 * len(columns) + 1
    pieces: list[bytes] = [b""] * (n * stride)
    for k, constant in enumerate(constants):
        pieces[2 * k::stride] = [constant] * n
    for k, column in enumerate(columns):
        pieces[2 * k + 1::stride] = column
    return pieces


def _numbers(values: np.ndarray) -> list[bytes]:
    """Each number as JSON text (floats in shortest round-trip form), by one C encode of the column."""
    return _encoder.encode(values.tolist())[1:-1].split(b",")


def _strings(values: list[str]) -> list[bytes]:
    return _encoder.encode_lines(values).split(b"\n")[:-1]


def _csv_field(value: str) -> str:
    return _csv_row([value]).decode().removesuffix("\n")


def _csv_row(values: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()
