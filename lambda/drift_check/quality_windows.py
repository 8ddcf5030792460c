"""The scheduled model-quality check's windows: captured predictions grouped by (model version, window start),
labels routed to the window of the prediction they belong to, a digest per window, and the checkpoint.

A window is recomputed from its inputs whenever its digest changes (a late label, a rewritten capture object),
so its report is rewritten, never added to; a run that finds the same (key, etag) inputs as the last one reads
nothing. Windows that start before the horizon are final: they are no longer read or rewritten.
"""
from __future__ import annotations

import hashlib
import json
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from contracts import names
from contracts.capture_record import CaptureRecord
from contracts.drift_report import UnreadableFile
from contracts.ground_truth import GroundTruth, in_force
from contracts.label_objects import InputObject, day_prefixes, iso, list_objects
from contracts.s3_uri import get_if_exists
from drift_check.capture_source import CORRUPT, object_blocks
from drift_check.model_quality import Captured

logger = Logger()
CHECKPOINT_FORMAT = "quality-checkpoint/1"
_ID = operator.attrgetter("id")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNKNOWN_VERSION = "unknown"  # captured without a model version

# What a window reads of a capture record (model_quality.Captured.add_record turns it into the window's columns):
# no features, not even as msgspec.Raw. The record is not kept: the horizon's windows are all held until judged,
# a record with its probability dict and its strings is over 500 bytes, its columns under 150.
_FIELDS = {"id": str | None, "prediction": Any, "probability": dict[str, float] | None, "model_version": Any,
           "time": Any}
assert set(_FIELDS) <= set(CaptureRecord.__struct_fields__)
LeanRecord = msgspec.defstruct("LeanRecord", [(name, kind, None) for name, kind in _FIELDS.items()], gc=False)
record_decoder = msgspec.json.Decoder(LeanRecord)
Classes = Callable[[str], "list[str] | None"]  # a version's classes (None: regression), from its model


def window_start(moment: datetime, hours: int) -> datetime:
    """The start of the window a moment falls in: whole multiples of `hours` since the epoch, UTC (24: midnight)."""
    size = hours * 3600
    return EPOCH + timedelta(seconds=int((moment - EPOCH).total_seconds()) // size * size)


def horizon_start(now: datetime, hours: int, days: int) -> datetime:
    """The oldest window still read: the window holding now - horizon. Captured predictions before it and label
    objects modified before it are not read, so a label is never dropped while its prediction's window is read."""
    return window_start(now - timedelta(days=days), hours)


def window_id(version: str, start: datetime) -> str:
    return f"{version}@{iso(start)}"


@dataclass
class Window:
    """One version's predictions in one window (as the columns of a Captured, in its model's classes), the capture
    objects they came from and the label records of their ids."""

    version: str
    start: datetime
    captured: Captured
    rows: int = 0  # capture records routed here, usable or not
    objects: dict[str, str] = field(default_factory=dict)  # capture key -> etag
    labels: list[GroundTruth] = field(default_factory=list)

    def release(self) -> None:
        """Judged or unchanged: let the predictions' memory go before the next window."""
        self.captured = Captured(self.captured.classes)

    @property
    def id(self) -> str:
        return window_id(self.version, self.start)

    def digest(self, model_identity: str, settings: dict[str, Any]) -> str:
        """What the window's report is computed from: a new capture object, label or setting changes it."""
        body = {"objects": sorted(self.objects.items()), "labels": [[g.id, g.label, g.time] for g in self.labels],
                "model": model_identity, "settings": settings, "rows": self.rows}
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Captures:
    """The horizon's captured predictions by window, and which window each prediction id is in (its last one).

    classes: a version's classes, asked once per window when its first record arrives (the records are decoded
    into the window's columns as they are read, which needs the classes, and nothing else is kept of them)."""

    classes: Classes
    hours: int
    since: datetime
    windows: dict[tuple[str, datetime], Window] = field(default_factory=dict)
    owner: dict[str, Window] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    unreadable: list[UnreadableFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._starts = _Hours(self.hours)

    def add_block(self, obj: InputObject, block: bytes) -> None:
        """Decode one block of a capture object's lines into their windows (a block's lines are mostly one
        window's: the last one found is tried first)."""
        starts, owner = self._starts, self.owner
        last: Window | None = None
        for line in block.split(b"\n"):
            try:
                record = record_decoder.decode(line)
            except msgspec.DecodeError:
                if line.strip():  # a blank line is no record
                    self.rejected["bad_record"] += 1
                continue
            start = starts.start(record.time)
            if start is None:
                self.rejected["no_time"] += 1
                continue
            if start < self.since:
                self.rejected["before_horizon"] += 1
                continue
            version = str(record.model_version) if record.model_version not in (None, "") else UNKNOWN_VERSION
            window = last
            if window is None or window.start != start or window.version != version:
                window = self.windows.get((version, start))
                if window is None:
                    window = self.windows[(version, start)] = Window(version, start, Captured(self.classes(version)))
                window.objects[obj.key] = obj.etag
                last = window
            window.rows += 1
            # Only a prediction the window can judge claims its id: a label for a rejected one is unmatched,
            # counted once, in the run's totals.
            if window.captured.add_record(record) and record.id:
                owner[record.id] = window

    def settle(self) -> None:
        """Every window's rows as numbers: nothing of the records is held once reading is done."""
        for window in self.windows.values():
            window.captured.settle()


class _Hours:
    """Prediction time → window start, parsing each distinct hour once (a window is whole hours)."""

    def __init__(self, hours: int):
        self._hours = hours
        self._starts: dict[str, datetime] = {}

    def start(self, time: Any) -> datetime | None:
        if not isinstance(time, str) or len(time) < 13:
            return None
        utc = time.endswith("Z") or time.endswith("+00:00")
        found = self._starts.get(time[:13]) if utc else None
        if found is None:
            try:
                moment = datetime.fromisoformat(time)
            except ValueError:
                return None
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            found = window_start(moment.astimezone(UTC), self._hours)
            if utc:
                self._starts[time[:13]] = found
        return found


def list_captures(s3: Any, bucket: str, model_name: str, *, since: datetime, until: datetime) -> list[InputObject]:
    """The capture objects (capture/<model>/YYYY/MM/DD/HH/) modified since `since`, by day partition."""
    root = names.capture_prefix(model_name)
    found = [obj for prefix in day_prefixes(root, since, until) for obj in list_objects(s3, bucket, prefix, since=since)[0]]
    return sorted(found, key=lambda o: (o.last_modified, o.key))


def read_captures(s3: Any, bucket: str, objects: list[InputObject], *, hours: int, since: datetime,
                  classes: Classes) -> Captures:
    """Decode id, prediction, probability, version and time of every line (not the features) into its window."""
    found = Captures(classes=classes, hours=hours, since=since)
    for obj in objects:
        try:
            for block in object_blocks(s3, bucket, obj.key):
                found.add_block(obj, block)
        except (*CORRUPT, ClientError, BotoCoreError) as exc:  # what was read before the damage counts
            found.unreadable.append(UnreadableFile(key=obj.key, error=str(exc) or type(exc).__name__))
    found.settle()
    return found


@dataclass
class Routed:
    """The labels' fate: each record went to its prediction's window, or its id is unmatched."""

    replaced: int
    unmatched: int


def route_labels(captures: Captures, records: list[GroundTruth]) -> Routed:
    """Every label record (later ones replace earlier ones in the window's check) to the window of its id; then the
    id index is let go (a dict of every prediction id of the horizon, needed no more)."""
    current, replaced = in_force(records)
    for record, window in zip(records, map(captures.owner.get, map(_ID, records)), strict=True):
        if window is not None:
            window.labels.append(record)
    unmatched = len(current) - sum(map(captures.owner.__contains__, map(_ID, current)))
    captures.owner = {}
    return Routed(replaced=replaced, unmatched=unmatched)


# ------------------------------------------------------------------ checkpoint


@dataclass
class Checkpoint:
    """The inputs the last run read (key -> etag), what its settings and live model were, and per window its digest
    and its row of the run report."""

    inputs: dict[str, str] = field(default_factory=dict)
    context: str = ""
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)  # window id -> {"digest", "summary"}
    retry: bool = False  # a version could not be resolved for a reason that may pass: read again next run

    def to_dict(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "inputs": self.inputs, "context": self.context, "windows": self.windows,
                "retry": self.retry}


def load_checkpoint(s3: Any, bucket: str, key: str) -> Checkpoint:
    """The last run's inputs and windows; an empty one before the first run (the role may list only quality/<m>/)."""
    obj = get_if_exists(s3, bucket, key)
    if obj is None:
        return Checkpoint()
    try:
        state = json.loads(obj["Body"].read())
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {state.get('format')!r}")
        return Checkpoint(inputs=dict(state["inputs"]), context=state["context"], windows=dict(state["windows"]),
                          retry=bool(state.get("retry")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # Starting over is safe: every window's report is recomputed from its inputs and rewritten at its fixed
        # key, so the cost is one full run, where refusing would stop the check until someone fixes the object.
        logger.warning("unreadable checkpoint: starting over", extra={"key": key, "error": repr(exc)})
        return Checkpoint()


def save_checkpoint(s3: Any, bucket: str, key: str, checkpoint: Checkpoint) -> None:
    s3.put_object(Bucket=bucket, Key=key, ContentType="application/json",
                  Body=json.dumps(checkpoint.to_dict(), separators=(",", ":")).encode())
