"""A retraining run's data set: the configured training CSV plus the labelled production rows, with lineage.

Labels (labels/<model>/ in the capture bucket) that arrived within the horizon are joined by prediction
id to the predictions captured within it (capture/<model>/YYYY/MM/DD/HH/): the features come from the
capture record (the last one per id), the target from the label in force (contracts.ground_truth.latest).
The production rows, ordered by prediction time, are split: the most recent RECENT_SHARE go to
recent.csv, kept out of training for the evaluation gate; the rest follow the configured rows in
train.csv. Both and lineage.json land under datasets/<model>/versions/<run_id>/ in the data bucket.
Values are written as captured (line breaks included: training.dataset reads them back); a row that would
not read back so is left out and counted. The validate step splits train.csv knowing that its last
lineage.production_rows rows are production rows (pipeline.app.configured_rows).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from contracts import env, names
from contracts.artifact import DatasetLineage, utc_now
from contracts.capture_record import CaptureRecord, parse_line
from contracts.env import Var
from contracts.ground_truth import GroundTruth, arrival, label_text, label_value, latest
from contracts.label_objects import DEFAULT_HORIZON_DAYS, day_prefixes, list_labels
from contracts.label_objects import read_labels as read_label_objects
from contracts.s3_uri import split_s3_uri
from contracts.schema import Task
from training.dataset import DataError, Table, is_missing, parse_csv, rows_csv
from training.validate import infer_task, target_values

FORMAT_VERSION = 1
DEFAULT_RECENT_SHARE = 0.2
# Fewer recent rows than this are noise for a gate: they all go to training instead.
MIN_RECENT_ROWS = 10
MAX_UNREADABLE_NAMED = 50  # the lineage names this many unreadable objects and counts the rest
# Characters csv.writer never quotes and csv.reader reads back as they are: a row of two or more cells made
# of them alone is written bare, joined by commas, so whether it reads back depends on the header only.
_PLAIN = re.compile(r"[A-Za-z0-9_.+\-]*")


@dataclass(frozen=True)
class BuildSettings:
    """The build step's configuration (stacks/training_stack.py sets it)."""

    data_bucket: str
    production_labels: bool
    recent_share: float
    horizon_days: int
    capture_bucket: str | None

    @classmethod
    def from_env(cls) -> BuildSettings:
        return cls(
            data_bucket=env.required(Var.DATA_BUCKET),
            production_labels=env.flag(Var.PRODUCTION_LABELS),
            recent_share=env.number(Var.RECENT_SHARE, DEFAULT_RECENT_SHARE, minimum=0, maximum=0.9),
            horizon_days=env.integer(Var.MODEL_QUALITY_HORIZON_DAYS, DEFAULT_HORIZON_DAYS, minimum=1),
            capture_bucket=env.text(Var.CAPTURE_BUCKET) or None,
        )


@dataclass
class Counts:
    """What the join read, used, and left out (lineage.json's production block)."""

    label_objects: int = 0
    labels_read: int = 0  # label records in the objects read
    malformed_labels: int = 0  # rows of those objects that are not label records
    stale_labels: int = 0  # records whose own time is before the horizon
    labels_replaced: int = 0  # an id labelled again: the later label replaced the earlier
    labels_in_force: int = 0
    capture_objects: int = 0
    capture_records: int = 0
    # lines that are not capture records, or have a bad time (of a line whose id is not labelled, only the fields
    # _CaptureKey names are checked: its features are skipped unread)
    malformed_captures: int = 0
    duplicate_captures: int = 0  # further capture records of a labelled id: the last one is used
    matched: int = 0
    unmatched: int = 0  # labels without a captured prediction in the horizon
    invalid: int = 0  # labels the target cannot take (an unknown class, not a finite number)
    unwritable: int = 0  # joined rows left out: a value would not read back from the CSV as captured
    unreadable: list[str] = field(default_factory=list)  # s3:// URIs of objects that could not be read

    def summary(self) -> dict[str, Any]:
        return {
            "label_objects": self.label_objects, "labels_read": self.labels_read,
            "labels_in_force": self.labels_in_force, "matched": self.matched, "unmatched": self.unmatched,
            "invalid": self.invalid, "unwritable": self.unwritable, "stale_labels": self.stale_labels,
            "duplicates": {"captures": self.duplicate_captures, "labels_replaced": self.labels_replaced},
            "malformed": {"labels": self.malformed_labels, "captures": self.malformed_captures},
            "capture_objects": self.capture_objects, "capture_records": self.capture_records,
            "unreadable": len(self.unreadable), "unreadable_objects": self.unreadable[:MAX_UNREADABLE_NAMED],
        }


@dataclass(frozen=True)
class ProductionRow:
    time: datetime  # the prediction's
    id: str
    cells: list[str]  # in the configured CSV's column order


@dataclass
class BuildResult:
    """The step's answer: where the data set is, and its compact lineage (the training job's hyperparameter)."""

    data_uri: str
    recent_uri: str | None
    lineage_uri: str
    lineage: DatasetLineage
    document: dict[str, Any]  # lineage.json

    def output(self) -> dict[str, Any]:
        return {"data_uri": self.data_uri, "recent_uri": self.recent_uri, "lineage_uri": self.lineage_uri,
                "lineage": self.lineage.model_dump(exclude_none=True)}


# ------------------------------------------------------------------------------------------ reading


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _objects(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted((o for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/")),
                  key=lambda o: o["Key"])


def _body(s3: Any, bucket: str, key: str) -> bytes:
    """An object's bytes, gunzipped when gzip (Firehose may write several members: gzip reads them all)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def read_labels(s3: Any, bucket: str, model_name: str, since: datetime, until: datetime,
                counts: Counts) -> dict[str, GroundTruth]:
    """The label in force per id among the labels that arrived since `since`: the label objects written since then,
    read as the model-quality check reads them (bulk rows without a time: the upload's)."""
    objects = list_labels(s3, bucket, model_name, since=since, until=until)
    read = read_label_objects(s3, bucket, objects)
    counts.unreadable += [f"s3://{bucket}/{u.key}: {u.error}" for u in read.unreadable]
    counts.label_objects += len(objects) - len(read.unreadable)
    counts.labels_read += len(read.records)
    counts.malformed_labels += read.malformed
    records = []
    for record in read.records:
        moment = arrival(record)
        if moment is not None and moment < since:
            counts.stale_labels += 1
        else:
            records.append(record)
    current, counts.labels_replaced = latest(records)
    counts.labels_in_force = len(current)
    return current


def _hour_of(key: str, prefix: str) -> datetime | None:
    """The hour partition of capture/<model>/YYYY/MM/DD/HH/…; None for a key outside the layout."""
    parts = key[len(prefix):].split("/")
    try:
        return datetime(int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]), tzinfo=UTC)
    except (IndexError, ValueError):
        return None


def capture_keys(s3: Any, bucket: str, model_name: str, since: datetime, until: datetime) -> list[str]:
    """The capture objects in the hour partitions from `since` to `until`, oldest first (one listing per day)."""
    prefix = names.capture_prefix(model_name)
    keys = []
    for day in day_prefixes(prefix, since, until):
        for obj in _objects(s3, bucket, day):
            hour = _hour_of(obj["Key"], prefix)
            if hour is not None and since - timedelta(hours=1) < hour <= until:
                keys.append(obj["Key"])
    return keys


class _CaptureKey(msgspec.Struct, gc=False):
    """What read_captures decodes of every capture line: its id and time, and the capture record's other required
    fields present (the features as raw JSON, not decoded). A labelled id's line is then decoded whole; most lines
    are not labelled, and this costs a fraction of decoding the whole record with its features."""

    time: str
    request_id: str
    model_name: str
    model_version: str
    features: msgspec.Raw
    id: str | None = None


_capture_key = msgspec.json.Decoder(_CaptureKey)


def _prediction_time(record: _CaptureKey) -> datetime:
    moment = datetime.fromisoformat(record.time)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_captures(s3: Any, bucket: str, model_name: str, ids: set[str], since: datetime, until: datetime,
                  counts: Counts) -> dict[str, tuple[datetime, CaptureRecord]]:
    """The last captured prediction (by its time) of each id in `ids` made since `since`."""
    from botocore.exceptions import ClientError

    found: dict[str, tuple[datetime, CaptureRecord]] = {}
    for key in capture_keys(s3, bucket, model_name, since, until):
        try:
            lines = _body(s3, bucket, key).splitlines()
        except (ClientError, OSError, EOFError, zlib.error) as exc:
            counts.unreadable.append(f"s3://{bucket}/{key}: {exc}")
            continue
        counts.capture_objects += 1
        for line in lines:
            if not line.strip():
                continue
            counts.capture_records += 1
            try:
                key = _capture_key.decode(line)
                moment = _prediction_time(key)
            except ValueError:  # msgspec's errors are ValueErrors
                counts.malformed_captures += 1
                continue
            if key.id not in ids or moment < since:
                continue
            try:
                record = parse_line(line)
            except ValueError:
                counts.malformed_captures += 1
                continue
            before = found.get(record.id)
            if before is not None:
                counts.duplicate_captures += 1
                if moment < before[0]:
                    continue  # an older record read later: the later prediction stays
            found[record.id] = (moment, record)
    return found


# ------------------------------------------------------------------------------------------ joining


def cell(value: Any) -> str:
    """A captured feature value as a CSV cell: numbers and categories as captured, null as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return str(value)


def classes_of(table: Table, target: str, task: Task | None) -> list[str] | None:
    """The configured data's class labels (sorted), or None for regression (task inferred when not given)."""
    values = [v for v in target_values(table, target) if not is_missing(v)]
    if (task or infer_task(values)) == "regression":
        return None
    return sorted(set(values))


def production_rows(header: list[str], target: str, classes: list[str] | None, labels: dict[str, GroundTruth],
                    captures: dict[str, tuple[datetime, CaptureRecord]], counts: Counts) -> list[ProductionRow]:
    """Labelled predictions as rows of the configured CSV, oldest prediction first."""
    rows = []
    plain_rows: bool | None = None  # whether a row of plain cells reads back under this header: the first one says
    for id_, label in labels.items():
        captured = captures.get(id_)
        if captured is None:
            counts.unmatched += 1
            continue
        if label_value(label.label, classes) is None:
            counts.invalid += 1
            continue
        moment, record = captured
        target_cell = label_text(label.label).strip()
        cells = [target_cell if column == target else cell(record.features.get(column)) for column in header]
        if len(cells) > 1 and _PLAIN.fullmatch("".join(cells)):
            if plain_rows is None:
                plain_rows = written_faithfully(header, cells)
            faithful = plain_rows
        else:
            faithful = written_faithfully(header, cells)
        if not faithful:
            counts.unwritable += 1
            continue
        rows.append(ProductionRow(moment, id_, cells))
        counts.matched += 1
    return sorted(rows, key=lambda r: (r.time, r.id))


def recent_count(rows: int, share: float) -> int:
    """How many of the newest rows the gate keeps: share of them rounded down, 0 below MIN_RECENT_ROWS."""
    count = math.floor(rows * share + 1e-9)
    return count if count >= MIN_RECENT_ROWS else 0


def csv_of(header: list[str], rows: list[list[str]]) -> bytes:
    return rows_csv(header, rows)


def written_faithfully(header: list[str], cells: list[str]) -> bool:
    """Whether the row, written as train.csv writes it, reads back (training.dataset) as these very cells.

    Values holding line breaks of any kind, quotes or commas do; the check catches whatever else would
    not (such a row would shift or break every row after it), whichever Python writes and reads it.
    """
    try:
        table = parse_csv(csv_of(header, [cells]), "row")
    except (DataError, UnicodeError):
        return False
    return table.n_rows == 1 and [column[0] for column in table.columns] == cells


# ------------------------------------------------------------------------------------------ building


def _put(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> dict[str, Any]:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return {"uri": f"s3://{bucket}/{key}", "sha256": hashlib.sha256(body).hexdigest()}


def build_dataset(s3: Any, settings: BuildSettings, *, model_name: str, run_id: str, data_uri: str, target: str,
                  task: Task | None = None, now: datetime | None = None) -> BuildResult:
    """Build, write and describe the run's data set (see the module docstring); the configured data as it is
    when production labels are off or none could be joined."""
    now = now or datetime.now(UTC)
    since = now - timedelta(days=settings.horizon_days)
    prefix = names.dataset_version_prefix(model_name, run_id)
    source: dict[str, Any] = {"uri": data_uri}
    table: Table | None = None
    note: str | None = None
    production: dict[str, Any] | None = None
    rows: list[ProductionRow] = []

    bucket, key = split_s3_uri(data_uri)
    if key.endswith("/"):
        note = "the configured data is a prefix, not a CSV object: production rows are added only to a CSV object"
    else:
        raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        source["sha256"] = hashlib.sha256(raw).hexdigest()
        try:
            table = parse_csv(raw, key.rsplit("/", 1)[-1])
            source["rows"] = table.n_rows
        except DataError as exc:
            note = f"the configured data cannot be read ({exc}): the validate step reports it"

    if note is None and not settings.production_labels:
        note = f"{Var.PRODUCTION_LABELS} is off: the run trains on the configured data as it is"
    elif note is None and not settings.capture_bucket:
        note = f"{Var.CAPTURE_BUCKET} is not set: no production rows can be read"
    elif note is None and target not in table.header:
        note = f"the configured data has no target column {target!r}: the validate step reports it"
    elif note is None:
        counts = Counts()
        labels = read_labels(s3, settings.capture_bucket, model_name, since, now, counts)
        captures = read_captures(s3, settings.capture_bucket, model_name, set(labels), since, now,
                                 counts) if labels else {}
        rows = production_rows(table.header, target, classes_of(table, target, task), labels, captures, counts)
        production = {
            "capture_prefix": f"s3://{settings.capture_bucket}/{names.capture_prefix(model_name)}",
            "labels_prefix": f"s3://{settings.capture_bucket}/{names.labels_prefix(model_name)}",
            "horizon_days": settings.horizon_days, "since": _iso(since), "until": _iso(now),
            "recent_share": settings.recent_share, **counts.summary(),
        }
        if not rows:
            note = (f"no labelled production rows in the last {settings.horizon_days} days (labels in force "
                    f"{counts.labels_in_force}, unmatched {counts.unmatched}, invalid {counts.invalid}"
                    + (f", unwritable {counts.unwritable})" if counts.unwritable else ")"))

    recent = recent_count(len(rows), settings.recent_share)
    training, kept = rows[:len(rows) - recent], rows[len(rows) - recent:]
    outputs: dict[str, Any] = {"train": source, "recent": None}
    if rows:
        body = csv_of(table.header, [[*r] for r in zip(*table.columns)] + [r.cells for r in training])
        outputs["train"] = _put(s3, settings.data_bucket, prefix + names.DATASET_TRAIN_FILE, body, "text/csv") | {
            "rows": table.n_rows + len(training)}
        if kept:
            body = csv_of(table.header, [r.cells for r in kept])
            outputs["recent"] = _put(s3, settings.data_bucket, prefix + names.DATASET_RECENT_FILE, body,
                                     "text/csv") | {"rows": len(kept)}
        window = {"first": _iso(rows[0].time), "last": _iso(rows[-1].time)}
        production = (production or {}) | {"window": window, "training_rows": len(training), "recent_rows": len(kept)}
    elif production is not None:
        production |= {"window": None, "training_rows": 0, "recent_rows": 0}

    document = {
        "format_version": FORMAT_VERSION, "model_name": model_name, "run_id": run_id, "built_at": utc_now(),
        "sources": [source], "production": production, "outputs": outputs, "note": note,
    }
    lineage_uri = _put(s3, settings.data_bucket, prefix + names.DATASET_LINEAGE_FILE,
                       json.dumps(document, indent=2).encode(), "application/json")["uri"]
    train = outputs["train"]
    lineage = DatasetLineage(
        data_uri=train["uri"], data_sha256=train.get("sha256"), rows=train.get("rows"),
        production_rows=len(training), recent_rows=len(kept),
        window=(production or {}).get("window"), lineage_uri=lineage_uri, note=note,
    )
    recent_uri = outputs["recent"]["uri"] if outputs["recent"] else None
    return BuildResult(data_uri=train["uri"], recent_uri=recent_uri, lineage_uri=lineage_uri, lineage=lineage,
                       document=document)
