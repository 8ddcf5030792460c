"""Decode blocks of capture JSON lines into typed columns, counting and skipping malformed lines.

The fast path decodes a whole block with one typed msgspec call (validation included); only a
block that fails falls back to line-by-line decoding to find and classify its bad lines.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np

from contracts.baseline import Baseline, NumericBaseline
from contracts.capture_record import FEATURES, partial_record
from drift_check.stats import PREDICTION, Accumulator


@dataclass
class Batch:
    """Typed columns of the valid rows of one block, and what was wrong with the others."""

    columns: dict[str, Any] = field(default_factory=dict)
    rows: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    issues: dict[str, Counter[str]] = field(default_factory=dict)
    unexpected: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)

    def add_to(self, acc: Accumulator) -> None:
        acc.update(self.columns, self.rows)
        self.add_problems_to(acc)

    def add_problems_to(self, acc: Accumulator) -> None:
        acc.count_rejects(self.rejects)
        for feature, kinds in self.issues.items():
            for kind, n in kinds.items():
                acc.count_issue(feature, kind, n)
        for name, n in self.unexpected.items():
            acc.count_unexpected([name], n)
        acc.versions.update(self.versions)


def _floats(values: list[Any]) -> np.ndarray:
    """Numbers as float64, None as NaN; anything else (a prediction of the wrong type) as NaN."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([v if type(v) in (int, float) else math.nan for v in values], dtype=np.float64)


def _type_ok(value: Any, numeric: bool) -> bool:
    if value is None:
        return True
    if numeric:
        return type(value) in (int, float) and math.isfinite(value)
    return type(value) is str


class CaptureDecoder:
    """Decoder for the capture records of one baseline's features."""

    def __init__(self, baseline: Baseline):
        features = baseline.features
        self.names = list(features)
        self._numeric = {n: isinstance(s, NumericBaseline) for n, s in features.items()}
        # Struct fields must be identifiers; feature names need not be, so rename maps them.
        self._attr = {name: f"f{i}" for i, name in enumerate(self.names)}
        fields = [(self._attr[n], float | None if self._numeric[n] else str | None) for n in self.names]
        rename = {a: n for n, a in self._attr.items()}
        strict = msgspec.defstruct("Features", fields, rename=rename, forbid_unknown_fields=True, gc=False)
        lenient = msgspec.defstruct("LenientFeatures", fields, rename=rename, gc=False)
        # Only the fields counted are decoded (skipping the rest is faster); the prediction and the version
        # stay untyped and optional, so a row is never rejected for them.
        self._one = msgspec.json.Decoder(partial_record("Record", features=strict, prediction=Any, model_version=Any))
        self._lenient = msgspec.json.Decoder(
            partial_record("LenientRecord", features=lenient, prediction=Any, model_version=Any))
        self._any = msgspec.json.Decoder()
        prediction = baseline.prediction
        self._prediction_numeric = None if prediction is None else isinstance(prediction, NumericBaseline)

    def decode(self, block: bytes) -> Batch:
        """Decode newline-separated records (blank lines ignored)."""
        body = block.strip()
        batch = Batch()
        if not body:
            return batch
        try:
            records = self._one.decode_lines(body)
            if len(records) != body.count(b"\n") + 1:  # two records on a line, or a blank line
                raise ValueError("lines and records differ")
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            records = self._line_by_line(body.split(b"\n"), batch)
        self._columns(records, batch)
        return batch

    def _columns(self, records: list[Any], batch: Batch) -> None:
        batch.rows = len(records)
        if not records:
            return
        n = len(records)
        feats = [r.features for r in records]
        for name in self.names:
            get = attrgetter(self._attr[name])
            if not self._numeric[name]:
                batch.columns[name] = list(map(get, feats))
                continue
            try:  # straight from the structs; a null (missing value) needs the list path
                batch.columns[name] = np.fromiter(map(get, feats), dtype=np.float64, count=n)
            except TypeError:
                batch.columns[name] = np.array(list(map(get, feats)), dtype=np.float64)
        if self._prediction_numeric is not None:
            preds = [r.prediction for r in records]
            batch.columns[PREDICTION] = (
                _floats(preds) if self._prediction_numeric else [None if p is None else str(p) for p in preds]
            )
        versions = Counter([r.model_version for r in records])
        batch.versions.update({str(v): count for v, count in versions.items()})

    def _line_by_line(self, lines: list[bytes], batch: Batch) -> list[Any]:
        records = []
        for line in lines:
            if not line.strip():
                continue
            try:
                records.append(self._one.decode(line))
                continue
            except msgspec.DecodeError:  # ValidationError included: find out which below
                pass
            try:
                obj = self._any.decode(line)
            except msgspec.DecodeError:
                batch.rejects["bad_json"] += 1
                continue
            reason = self._diagnose(obj, batch)
            if reason is None:  # only extra columns: the row itself is fine
                try:
                    records.append(self._lenient.decode(line))
                    continue
                except msgspec.ValidationError:
                    reason = "invalid"
            batch.rejects[reason] += 1
        return records

    def _diagnose(self, obj: Any, batch: Batch) -> str | None:
        """Why a well-formed JSON line is not a valid record; None when it only has extra columns."""
        if not isinstance(obj, dict):
            return "not_an_object"
        feats = obj.get(FEATURES)
        if not isinstance(feats, dict):
            return "no_features"
        absent = [n for n in self.names if n not in feats]
        wrong = [n for n in self.names if n in feats and not _type_ok(feats[n], self._numeric[n])]
        for kind, names in (("absent", absent), ("wrong_type", wrong)):
            for n in names:
                batch.issues.setdefault(n, Counter())[kind] += 1
        batch.unexpected.update(k for k in feats if k not in self._attr)
        if absent:
            return "missing_feature"
        return "wrong_type" if wrong else None


class BatchBuffer:
    """Gathers the columns of small blocks and counts them in larger batches.

    Small blocks keep decoding in the CPU cache; larger batches amortise the per-call cost of the
    numpy binning. Counting is additive, so where the batches are cut changes nothing.
    """

    def __init__(self, acc: Accumulator, rows: int = 8192):
        self.acc, self.limit = acc, rows
        self.rows = 0
        self.parts: dict[str, list[Any]] = {}

    def add(self, batch: Batch) -> None:
        batch.add_problems_to(self.acc)
        for name, values in batch.columns.items():
            self.parts.setdefault(name, []).append(values)
        self.rows += batch.rows
        if self.rows >= self.limit:
            self.flush()

    def flush(self) -> None:
        columns = {  # categorical parts are only counted: chaining them spares a copy
            name: np.concatenate(parts) if isinstance(parts[0], np.ndarray) else chain.from_iterable(parts)
            for name, parts in self.parts.items()
        }
        self.acc.update(columns, self.rows)
        self.parts, self.rows = {}, 0
