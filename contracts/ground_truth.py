"""The ground-truth record: the label that arrived later for a prediction id, the one definition the labels
files (CSV or JSON Lines, plain or gzip), POST /feedback and the model-quality check share."""
from __future__ import annotations

import csv
import gzip
import io
import math
import operator
import os
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

ID, LABEL, TIME = "id", "label", "time"
MAX_SHARED_TEXTS = 1024  # distinct label texts shared between rows (a regression's values are not worth it)


class GroundTruth(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One label: the prediction id it belongs to, the true value, when it arrived (ISO-8601, optional).

    gc=False: its fields are scalars, so it can be in no reference cycle; the model-quality check holds a million
    of these, 16 bytes and a garbage-collector visit each the less."""

    id: str
    label: str | int | float | bool
    time: str | None = None


class LabelFileError(ValueError):
    """A labels file that cannot be used at all (unreadable, or without the id and label columns)."""


@dataclass
class Labels:
    """The records of a labels file in file order, and the rows that were not records."""

    records: list[GroundTruth]
    malformed: int = 0  # rows without an id or a label, with a bad time, or not JSON objects


_decoder = msgspec.json.Decoder(GroundTruth)


def arrival(record: GroundTruth) -> datetime | None:
    """The record's time as an aware datetime (a time without zone is UTC); ValueError when it is not ISO-8601."""
    if record.time is None:
        return None
    moment = datetime.fromisoformat(record.time)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _checked(record: GroundTruth) -> GroundTruth:
    if not record.id or record.label == "":
        raise ValueError("empty id or label")
    arrival(record)
    return record


def parse_line(line: bytes | str) -> GroundTruth:
    """One JSON line as a record; ValueError when it is not one."""
    return _checked(_decoder.decode(line))


def parse_jsonl(text: str) -> Labels:
    labels = Labels(records=[])
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            labels.records.append(parse_line(line))
        except ValueError:  # msgspec's DecodeError and ValidationError included
            labels.malformed += 1
    if not labels.records and labels.malformed:
        raise LabelFileError(f"no line is a label record with {ID!r} and {LABEL!r} fields")
    return labels


def parse_csv(text: str) -> Labels:
    """Rows as csv.DictReader reads them (blank lines skipped, a short row's missing fields empty, a repeated column
    name's last column), without a dict per row; a label text repeated across rows is one string, not one per row
    (a classifier's million labels are a few texts)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    missing = [c for c in (ID, LABEL) if c not in header]
    if missing:
        raise LabelFileError(f"no {' or '.join(repr(c) for c in missing)} column (columns: {', '.join(header) or 'none'})")
    at = {name: k for k, name in enumerate(header)}
    pid, lab, tim = at[ID], at[LABEL], at.get(TIME)
    texts: dict[str, str] = {}
    labels = Labels(records=[])
    for row in reader:
        if not row:
            continue
        width = len(row)
        label = row[lab] if lab < width else ""
        if len(texts) < MAX_SHARED_TEXTS:
            label = texts.setdefault(label, label)
        time = row[tim] if tim is not None and tim < width else None
        try:
            labels.records.append(_checked(GroundTruth(id=row[pid] if pid < width else "", label=label, time=time or None)))
        except (TypeError, ValueError):  # an empty id or label; a bad time
            labels.malformed += 1
    return labels


def label_text(value: Any) -> str:
    """A label or prediction as its class name: 1 and 1.0 are class "1" (classes are the training CSV's text)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def label_value(label: str | int | float | bool, classes: list[str] | None) -> int | float | None:
    """The label as a class index or a finite number; None when it does not fit the model."""
    if classes is not None:
        text = label_text(label)
        return classes.index(text) if text in classes else None
    if isinstance(label, bool):
        return None
    try:
        number = float(label)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_text(text: str) -> Labels:
    """A labels file's text: JSON Lines when it starts with "{", else CSV with a header."""
    return parse_jsonl(text) if text.lstrip().startswith("{") else parse_csv(text)


def parse_object(body: bytes, default_time: str | None = None) -> Labels:
    """A labels object as stored in S3: gzip (what Firehose writes) or plain, JSON Lines or CSV.

    default_time: the arrival of records without a time of their own (a bulk file's upload time).
    """
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise LabelFileError(f"not a readable gzip file: {exc}") from exc
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelFileError(f"not UTF-8 text: {exc}") from exc
    if not text.strip():
        return Labels(records=[])
    labels = parse_text(text)
    if default_time is not None:
        for record in labels.records:
            if record.time is None:
                record.time = default_time
    return labels


def read_labels(path: str | os.PathLike) -> Labels:
    """A CSV (header with id, label and optionally time) or JSON Lines labels file, told apart by its first character."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFileError(f"cannot read the labels file {path}: {exc}") from exc
    if not text.strip():
        raise LabelFileError(f"the labels file {path} is empty")
    try:
        return parse_text(text)
    except LabelFileError as exc:
        raise LabelFileError(f"labels file {path}: {exc}") from None


_ID = operator.attrgetter("id")


def in_force(records: list[GroundTruth]) -> tuple[list[GroundTruth], int]:
    """latest() as a list in the same order (first appearance of each id): when no id repeats, `records` itself,
    found without a dict of a million ids next to the caller's own."""
    if len(set(map(_ID, records))) == len(records):
        return records, 0
    current, replaced = latest(records)
    return list(current.values()), replaced


def latest(records: list[GroundTruth]) -> tuple[dict[str, GroundTruth], int]:
    """The label in force per id, and how many were replaced: a later time wins, and without both times the later row."""
    current: dict[str, GroundTruth] = {}
    replaced = 0
    for record in records:
        before = current.get(record.id)
        if before is not None:
            replaced += 1
            earlier, later = arrival(before), arrival(record)
            if earlier is not None and later is not None and later < earlier:
                continue  # an out-of-order row older than the label in force
        current[record.id] = record
    return current, replaced
