"""Scoring a chunk of rows: the serving input rules, the serving runtime, one vectorised model call.

Rows that are plainly fine (numbers finite and in range, missing only where training saw missing
values, known categories) go straight into the model input matrix; every other row is checked by
inference.validation.FeatureReader, the API's own checks, so a row is refused here exactly when
POST /predict would refuse it, with the same message, and an unseen category is accepted with the
same warning. Refused rows are returned with their number and reasons; nothing is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from batch_scoring.chunk_parse import Chunk
from batch_scoring.output_rows import RowWriter
from contracts.artifact import Artifact
from contracts.batch_job import ErrorRow
from contracts.schema import MISSING_CATEGORY
from inference.input_rules import MAX_ABS
from inference.runtime import OnnxModel, Output, SklearnModel
from inference.service import UNSCORABLE
from inference.validation import FeatureReader, RequestError

_encoder = msgspec.json.Encoder()


@dataclass
class Scored:
    """A chunk's outcome: output bytes, error lines, and what a capture sample needs."""

    output: bytes
    errors: list[bytes]
    rows: int
    scored: int
    accepted: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # positions in the chunk
    out: Output | None = None  # the model's output for the accepted rows
    checked: dict[int, dict[str, Any]] = field(default_factory=dict)  # rows FeatureReader read, as it read them


class ChunkScorer:
    """One model, its input rules and an output format, for the rows of one file."""

    def __init__(self, art: Artifact, model: OnnxModel | SklearnModel, *, model_version: str, output_format: str,
                 strict_categories: bool = False) -> None:
        meta = art.metadata
        self.model = model
        self.reader = FeatureReader(meta.feature_schema, strict_categories=strict_categories)
        self.rules = self.reader.rules
        self.model_version = model_version
        self.classes = meta.classes if meta.task != "regression" else None
        self._nullable = np.array([rule.nullable for rule in self.rules.features])
        self.writer = RowWriter(self.classes, model_version, output_format)
        self._numeric = [j for j, rule in enumerate(self.rules.features) if not rule.categorical]

    def score(self, chunk: Chunk, file_name: str) -> Scored:
        n = len(chunk)
        if n == 0:
            return Scored(b"", [], 0, 0)
        X = self._matrix(chunk)
        plain = self._screen(chunk, X)
        problems: dict[int, list[str]] = {pos: [why] for pos, why in chunk.unreadable.items()}
        warnings: dict[int, list[str]] = {}
        checked: dict[int, dict[str, Any]] = {}
        for pos in np.flatnonzero(~plain):
            pos = int(pos)
            if pos in problems:
                continue
            try:
                rows = self.reader.read([self._raw(chunk, pos)], (), indexed=False)
            except RequestError as exc:
                problems[pos] = [f"{'.'.join(map(str, i.loc))}: {i.msg}" if i.loc else i.msg for i in exc.issues]
                continue
            X[pos] = rows.X[0]
            checked[pos] = rows.features(0)  # e.g. a category code 3 read as "3"
            if rows.warnings:
                warnings[pos] = rows.warnings
        accepted = np.setdiff1d(np.arange(n), np.fromiter(problems, dtype=np.int64)) if problems else np.arange(n)
        out = None
        if len(accepted):
            out = self.model.run(X[accepted] if len(accepted) < n else X)
            scores = out.proba if out.proba is not None else out.values
            finite = np.isfinite(scores.reshape(len(scores), -1)).all(axis=1)
            if not finite.all():
                for pos in accepted[~finite]:
                    problems[int(pos)] = [UNSCORABLE]
                accepted = accepted[finite]
                out = Output(values=out.values[finite], proba=None if out.proba is None else out.proba[finite])
        output = self._write(chunk, file_name, accepted, out, warnings) if out is not None else b""
        errors = [_encoder.encode(ErrorRow(file=file_name, row=int(chunk.numbers[pos]), id=self.row_id(chunk, file_name, pos),
                                           errors=problems[pos])) + b"\n"
                  for pos in sorted(problems)]
        return Scored(output, errors, n, len(accepted), accepted, out, checked)

    def prediction(self, out: Output, k: int) -> tuple[Any, dict[str, float] | None]:
        """Row k of the output as the API answers it: the label (or value) and the class probabilities."""
        if self.classes is None:
            return float(out.values[k]), None
        return self.classes[int(out.values[k])], dict(zip(self.classes, out.proba[k].tolist()))

    def features(self, chunk: Chunk, pos: int) -> dict[str, Any]:
        """Row pos's features as a capture record keeps them (None = missing)."""
        return {rule.name: _plain(column[pos]) for rule, column in zip(self.rules.features, chunk.columns)}

    def row_id(self, chunk: Chunk, file_name: str, pos: int) -> str:
        """Row pos's id as its output and error lines show it: the file's id column, else "<file>:<row>"."""
        given = chunk.ids[pos] if chunk.ids is not None else ""
        return given or f"{file_name}:{int(chunk.numbers[pos])}"

    # ------------------------------------------------------------------ internals

    def _matrix(self, chunk: Chunk) -> np.ndarray:
        """The model input for every row, as FeatureReader builds it (float64, or object with categories)."""
        if self.reader.numeric_only:
            if chunk.matrix is not None:
                return chunk.matrix
            return np.column_stack(chunk.columns).astype(np.float64, copy=False)
        X = np.empty((len(chunk), len(chunk.columns)), dtype=object)
        for j, (rule, column) in enumerate(zip(self.rules.features, chunk.columns)):
            if rule.categorical:
                column = column.copy()
                column[np.equal(column, None)] = MISSING_CATEGORY
            X[:, j] = column
        return X

    def _screen(self, chunk: Chunk, X: np.ndarray) -> np.ndarray:
        """Rows that pass every rule as they stand; the rest go to FeatureReader."""
        ok = np.ones(len(chunk), dtype=bool)
        if chunk.unreadable:
            ok[list(chunk.unreadable)] = False
        if chunk.suspect is not None:
            ok &= ~chunk.suspect
        if X.dtype == np.float64:  # all numeric: the whole matrix at once, contiguous
            with np.errstate(invalid="ignore"):
                fine = np.abs(X) <= MAX_ABS
            if self._nullable.any():
                fine |= np.isnan(X) & self._nullable
            return ok & fine.all(axis=1)
        for rule, column in zip(self.rules.features, chunk.columns):
            if rule.categorical:
                missing = np.equal(column, None)
                known = np.fromiter((v in rule.allowed for v in column), dtype=bool, count=len(column))
                ok &= (missing & rule.nullable) | known
            else:
                missing = np.isnan(column)
                with np.errstate(invalid="ignore"):
                    ok &= (missing & rule.nullable) | (np.abs(column) <= MAX_ABS)
        return ok

    def _raw(self, chunk: Chunk, pos: int) -> dict[str, Any]:
        sent = chunk.raw(pos) if chunk.raw is not None else None
        return sent if sent is not None else self.features(chunk, pos)

    def _write(self, chunk: Chunk, file_name: str, accepted: np.ndarray, out: Output,
               warnings: dict[int, list[str]]) -> bytes:
        numbers = chunk.numbers[accepted]
        ids = None
        if chunk.ids is not None:
            ids = [chunk.ids[p] for p in accepted.tolist()]
            if "" in ids:  # a row without an id is named by its file and row number
                ids = [i or f"{file_name}:{number}" for i, number in zip(ids, numbers.tolist())]
        by_row = {int(k): warnings[int(accepted[k])] for k in np.flatnonzero(np.isin(accepted, list(warnings)))} if warnings else None
        return self.writer.render(file_name, numbers, ids, out, by_row)


def _plain(value: Any) -> Any:
    """A numpy scalar as JSON-able Python; NaN (missing) as None."""
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if value != value else value
    return value
