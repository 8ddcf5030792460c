"""Lines of a CSV or JSON Lines file into typed feature columns, row by row accountable.

A chunk becomes one column per feature in schema order (numbers as float64 with NaN for a missing
value, categories as str or None), the row ids when the file has an `id` column, and for each line
that cannot be read at all, the reason. Rows whose values need a closer look (a number that did not
parse, a value of the wrong JSON type) are marked `suspect` and checked by the serving rules
(inference.validation), which name the problem exactly as the API would.

CSV: the header names the columns; columns that are not features (nor `id`) are ignored; an empty
field (or NaN) is a missing value; a quoted field may not span lines. JSON Lines: one object per
line (each line decoded on its own), fields that are not features are ignored, null is a missing
value, NaN/Infinity are read as the API reads them so the same check names them.
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from contracts.batch_job import ID_COLUMN
from inference.decoding import parse_json
from inference.input_rules import MAX_ABS, RowRules
from inference.validation import RequestError

_decode = msgspec.json.decode
ABSENT = object()  # a feature the row does not have (JSON Lines)
_PARSER_ROW = re.compile(r"at row (\d+)")  # where numpy's parser says it stopped (a hint, never trusted)
FAST_RETRY_LINES = 512  # below this, a block the fast path refuses goes to the csv module whole


class FileError(Exception):
    """The whole file cannot be scored (its header lacks features): the part fails with this message."""


@dataclass
class Chunk:
    """The rows of a chunk (blank lines left out) as columns, with what could not be read."""

    numbers: np.ndarray  # each row's number in its file (int64)
    columns: list[np.ndarray]  # per feature, schema order
    ids: list[str] | None  # from the id column, else None
    unreadable: dict[int, str] = field(default_factory=dict)  # row position → why it cannot be read
    suspect: np.ndarray | None = None  # bool per row: check with the serving rules
    # Row position → its features as sent, for those checks (None: read them from the columns).
    raw: Callable[[int], dict[str, Any] | None] | None = None
    matrix: np.ndarray | None = None  # the columns side by side, when the parser made them so (numeric CSV)

    def __len__(self) -> int:
        return len(self.numbers)

    @classmethod
    def concat(cls, chunks: list[Chunk]) -> Chunk:
        """Consecutive chunks of one file as one (positions of the later ones shifted)."""
        offsets = np.cumsum([0] + [len(c) for c in chunks])
        unreadable = {int(offset) + pos: why for c, offset in zip(chunks, offsets) for pos, why in c.unreadable.items()}
        suspect = None
        if any(c.suspect is not None for c in chunks):
            suspect = np.concatenate([c.suspect if c.suspect is not None else np.zeros(len(c), dtype=bool) for c in chunks])
        matrix = np.concatenate([c.matrix for c in chunks]) if all(c.matrix is not None for c in chunks) else None

        def raw(pos: int) -> dict[str, Any] | None:
            k = int(np.searchsorted(offsets, pos, side="right")) - 1
            return chunks[k].raw(pos - int(offsets[k])) if chunks[k].raw is not None else None

        return cls(numbers=np.concatenate([c.numbers for c in chunks]),
                   columns=[np.concatenate(parts) for parts in zip(*(c.columns for c in chunks))],
                   ids=None if chunks[0].ids is None else [i for c in chunks for i in c.ids],
                   unreadable=unreadable, suspect=suspect,
                   raw=raw if any(c.raw is not None for c in chunks) else None, matrix=matrix)


def _present(first_row: int, lines: list[bytes]) -> tuple[np.ndarray, list[bytes]]:
    """The non-blank lines (without a trailing CR) and their row numbers; whitespace-only lines are blank."""
    numbers, kept = [], []
    for k, line in enumerate(lines):
        if line.strip():
            numbers.append(first_row + k)
            kept.append(line.rstrip(b"\r"))
    return np.array(numbers, dtype=np.int64), kept


class CsvParser:
    """One file's CSV layout against the model's features."""

    def __init__(self, rules: RowRules, header: list[str], file_name: str) -> None:
        self.rules = rules
        twice = sorted({name for name in header if header.count(name) > 1})
        if twice:
            raise FileError(f"{file_name}: the header names {', '.join(map(repr, twice))} more than once")
        where = {name: j for j, name in enumerate(header)}
        missing = [rule.name for rule in rules.features if rule.name not in where]
        if missing:
            raise FileError(f"{file_name}: the header has no column {', '.join(map(repr, missing[:10]))}"
                            f"{' …' if len(missing) > 10 else ''} (the model's features: {', '.join(rules.names)})")
        self.width = len(header)
        self.feature_idx = [where[rule.name] for rule in rules.features]
        self.id_idx = where.get(ID_COLUMN)
        self.categorical = [rule.categorical for rule in rules.features]
        self.numeric_only = not any(self.categorical)
        self.every_column = self.feature_idx == list(range(self.width))  # nothing to skip: no usecols

    def parse(self, first_row: int, block: bytes, lines: int) -> Chunk:
        """The rows of a block of `lines` lines (see part_reader.part_chunks).

        A block the fast path refuses (a malformed row, a quoted field) is cut around the row the
        parser named (else in halves) and the pieces tried again, so a stray bad row costs the csv
        module only the few lines around it.
        """
        if self.numeric_only and block[:1] != b"\n" and block[-1:] != b"\n" and b"\n\n" not in block:
            fast, bad_row = self._fast(np.arange(first_row, first_row + lines), block, lines)
            if fast is not None:
                return fast
            if lines > FAST_RETRY_LINES:
                # The parser's row number may count from 0 or 1: the three lines around it go to the csv module.
                near = [bad_row - 1, bad_row + 2] if bad_row is not None else [lines // 2]
                cuts = [min(max(1, cut), lines - 1) for cut in near]
                bounds = [0, *sorted(set(cuts)), lines]
                starts = np.concatenate([[0], np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10) + 1])
                ends = [*(starts[1:] - 1).tolist(), len(block)]
                return Chunk.concat([self.parse(first_row + lo, block[starts[lo]:ends[hi - 1]], hi - lo)
                                     for lo, hi in zip(bounds, bounds[1:]) if hi > lo])
        numbers, kept = _present(first_row, block.split(b"\n"))
        if not kept:
            return Chunk(numbers, [np.empty(0) for _ in self.feature_idx], [] if self.id_idx is not None else None)
        return self._general(numbers, kept)

    def _fast(self, numbers: np.ndarray, text: bytes, lines: int) -> tuple[Chunk | None, int | None]:
        """Plain numeric rows through numpy's C parser: the chunk, or None and the row the parser named.

        The parser ignores the columns it is not asked for, and strips a CR before a newline.
        """
        if not self.every_column and text.count(b",") != lines * (self.width - 1):
            # A row with another number of fields, which the parser would not notice in columns it skips:
            # the general path names it. (Reading every column, the parser refuses such a row itself.)
            return None, None
        values, bad_row = self._loadtxt(text)
        if values is None and (b",," in text or b",\n" in text or b"\n," in text or text[:1] == b"," or text[-1:] == b","):
            # Empty fields are missing values: NaN for the C parser (replaced twice for ",,,").
            filled = text.replace(b",,", b",nan,").replace(b",,", b",nan,").replace(b"\n,", b"\nnan,").replace(b",\n", b",nan\n")
            values, bad_row = self._loadtxt((b"nan" if filled[:1] == b"," else b"") + filled + (b"nan" if filled[-1:] == b"," else b""))
        if values is None:
            return None, bad_row
        if values.shape != (lines, len(self.feature_idx)):
            # Rows that all have the wrong number of fields, or a line the parser skipped (a lone CR):
            # the general path names each.
            return None, None
        ids = None
        if self.id_idx is not None:
            if b'"' in text:  # a quoted id: the csv module unquotes it
                return None, None
            k = self.id_idx
            try:
                ids = [line.split(b",", k + 1)[k].rstrip(b"\r").decode() for line in text.split(b"\n")]
            except UnicodeDecodeError:
                return None, None
        return Chunk(numbers, [values[:, j] for j in range(values.shape[1])], ids, matrix=values), None

    def _loadtxt(self, text: bytes) -> tuple[np.ndarray | None, int | None]:
        try:
            values = np.loadtxt(io.BytesIO(text), delimiter=",", usecols=None if self.every_column else self.feature_idx,
                                dtype=np.float64, ndmin=2, comments=None, encoding=None)
        except ValueError as exc:
            where = _PARSER_ROW.search(str(exc))
            return None, int(where.group(1)) if where else None
        return values, None

    def _general(self, numbers: np.ndarray, kept: list[bytes]) -> Chunk:
        unreadable: dict[int, str] = {}
        rows: list[list[str]] = []
        for pos, line in enumerate(kept):
            try:
                fields = next(csv.reader([line.decode("utf-8")], strict=True))
            except UnicodeDecodeError:
                unreadable[pos] = "the line is not UTF-8 text"
                fields = None
            except csv.Error as exc:
                unreadable[pos] = f"the line is not valid CSV: {exc}"
                fields = None
            if fields is not None and len(fields) != self.width:
                unreadable[pos] = f"expected {self.width} fields as in the header, got {len(fields)}"
                fields = None
            rows.append(fields or [""] * self.width)
        suspect = np.zeros(len(rows), dtype=bool)
        columns = []
        for j, categorical in zip(self.feature_idx, self.categorical):
            texts = [row[j] for row in rows]
            if categorical:
                columns.append(np.array([t if t != "" else None for t in texts], dtype=object))
                continue
            try:
                columns.append(np.array([t or "nan" for t in texts], dtype=np.float64))
            except ValueError:
                column = np.full(len(texts), np.nan)
                for pos, t in enumerate(texts):
                    try:
                        column[pos] = float(t) if t else math.nan
                    except ValueError:
                        suspect[pos] = True  # the serving rules name it (a string where a number belongs)
                columns.append(column)
        ids = [row[self.id_idx] for row in rows] if self.id_idx is not None else None
        names = self.rules.names

        def raw(pos: int) -> dict[str, Any]:
            row = rows[pos]
            out: dict[str, Any] = {}
            for name, j, categorical in zip(names, self.feature_idx, self.categorical):
                text = row[j]
                out[name] = None if text == "" else text if categorical else _number_or_text(text)
            return out

        return Chunk(numbers, columns, ids, unreadable, suspect, raw)


def _number_or_text(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return None if math.isnan(value) else value


class JsonlParser:
    """JSON Lines rows: one object per line."""

    def __init__(self, rules: RowRules) -> None:
        self.rules = rules
        self.names = rules.names
        self.categorical = [rule.categorical for rule in rules.features]

    def parse(self, first_row: int, block: bytes, lines: int) -> Chunk:
        numbers, kept = _present(first_row, block.split(b"\n"))
        unreadable: dict[int, str] = {}
        try:  # one line, one value: lines are never decoded together, which would let a value span them
            docs = [_decode(line) for line in kept]
        except msgspec.DecodeError:
            docs = []
            for pos, line in enumerate(kept):
                try:
                    docs.append(_decode(line))
                except msgspec.DecodeError as exc:
                    try:  # NaN, Infinity, 1e999: read as the API reads them, so the checks name the field
                        docs.append(parse_json(line))
                    except RequestError:
                        unreadable[pos] = f"the line is not valid JSON: {exc}"
                        docs.append({})
        for pos, doc in enumerate(docs):
            if type(doc) is not dict and pos not in unreadable:
                unreadable[pos] = f"expected a JSON object per line, got {type(doc).__name__}"
        rows = [doc if type(doc) is dict else {} for doc in docs]
        suspect = np.zeros(len(rows), dtype=bool)
        columns = []
        for name, categorical in zip(self.names, self.categorical):
            values = [row.get(name, ABSENT) for row in rows]
            kinds = set(map(type, values))
            if categorical:
                if not kinds <= {str, type(None)}:
                    suspect |= np.array([type(v) not in (str, type(None)) for v in values])
                columns.append(np.array([v if type(v) is str else None for v in values], dtype=object))
            else:
                if not kinds <= {float, int, type(None)}:
                    suspect |= np.array([type(v) not in (float, int, type(None)) for v in values])
                    values = [v if type(v) in (float, int) else None for v in values]
                try:
                    columns.append(np.array(values, dtype=np.float64))
                except OverflowError:  # an integer beyond any float: the checks say it is out of range
                    huge = np.array([type(v) is int and abs(v) > MAX_ABS for v in values])
                    suspect |= huge
                    columns.append(np.array([None if big else v for v, big in zip(values, huge)], dtype=np.float64))
        ids = None
        if any(ID_COLUMN in row for row in rows):
            ids = [_id_text(row.get(ID_COLUMN)) for row in rows]
        names = self.names

        def raw(pos: int) -> dict[str, Any]:
            row = rows[pos]
            return {name: row[name] for name in names if name in row}

        return Chunk(numbers, columns, ids, unreadable, suspect, raw)


def _id_text(value: Any) -> str:
    if value is None:
        return ""
    return value if type(value) is str else msgspec.json.encode(value).decode()
