"""One drift-check run: read the new capture files, count them, write the report, move the cursor.

State lives in one checkpoint object: the committed cursor, and while a window is being read, a
partial state (cursor + accumulator, saved together after whole files). A run that stops early
resumes from the partial state, so no file is lost or counted twice.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from msgspec.structs import replace

from contracts import names
from contracts.drift_report import DriftReport, ModelRef, UnreadableFile, Window
from drift_check.capture_source import Cursor, iso, list_window
from drift_check.file_counts import count_files_parallel
from drift_check.model_source import ProductionModel
from drift_check.report import empty_report, make_report
from drift_check.report_html import render
from drift_check.stats import Accumulator
from drift_check.stats_compare import Thresholds

CHECKPOINT_FORMAT = "drift-checkpoint/1"


@dataclass(frozen=True)
class Settings:
    capture_bucket: str
    capture_prefix: str  # the model's folder, e.g. capture/<model_name>/
    reports_bucket: str
    checkpoint_key: str
    model_name: str
    thresholds: Thresholds = field(default_factory=Thresholds)
    checkpoint_every: int = 10  # files between partial checkpoints
    stop_margin_ms: int = 60_000  # stop and checkpoint when less time than this is left
    workers: int = 1  # processes counting files, this one included


@dataclass(frozen=True, kw_only=True)
class PartialCheck:
    """A run that stopped for time before the end of the window; the next run resumes it."""

    status: str = "partial"
    files: int  # read so far in this window
    remaining_files: int
    rows_checked: int
    rows_rejected: int


@dataclass
class WindowState:
    """A window being read: accumulator and cursor always describe the same whole files."""

    acc: Accumulator
    cursor: Cursor
    start: str | None
    files: int = 0
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self, model_sha256: str) -> dict[str, Any]:
        return {"model_sha256": model_sha256, "accumulator": self.acc.to_dict(), "cursor": self.cursor.to_dict(),
                "start": self.start, "files": self.files, "unreadable": self.unreadable}


def load_checkpoint(s3: Any, settings: Settings) -> dict[str, Any]:
    try:
        body = s3.get_object(Bucket=settings.reports_bucket, Key=settings.checkpoint_key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return {"format": CHECKPOINT_FORMAT, "cursor": None, "partial": None}
        raise
    state = json.loads(body)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"s3://{settings.reports_bucket}/{settings.checkpoint_key} is not a {CHECKPOINT_FORMAT} checkpoint")
    return state


def save_checkpoint(s3: Any, settings: Settings, cursor: dict[str, Any] | None, partial: dict[str, Any] | None) -> None:
    body = {"format": CHECKPOINT_FORMAT, "model_name": settings.model_name, "cursor": cursor, "partial": partial}
    s3.put_object(Bucket=settings.reports_bucket, Key=settings.checkpoint_key,
                  Body=json.dumps(body, separators=(",", ":")).encode(), ContentType="application/json")


def resume(checkpoint: dict[str, Any], model: ProductionModel) -> WindowState:
    """The partial window of the same model, or a new window from the committed cursor."""
    partial = checkpoint.get("partial")
    if partial and partial.get("model_sha256") == model.sha256:
        try:
            return WindowState(acc=Accumulator.from_dict(model.baseline, partial["accumulator"]),
                               cursor=Cursor.from_dict(partial["cursor"]), start=partial["start"],
                               files=int(partial["files"]), unreadable=list(partial["unreadable"]))
        except (KeyError, TypeError, ValueError):
            pass  # unusable partial state: read the window again from the committed cursor
    cursor = Cursor.from_dict(checkpoint.get("cursor"))
    return WindowState(acc=Accumulator(model.baseline), cursor=cursor, start=iso(cursor.time) if cursor.time else None)


def write_report(s3: Any, settings: Settings, report: DriftReport, now: datetime) -> DriftReport:
    """JSON and HTML side by side, partitioned by date; returns the report with the JSON's s3 uri."""
    stem = names.drift_report_stem(settings.model_name, now)
    report = replace(report, report_uri=f"s3://{settings.reports_bucket}/{stem}.json")
    s3.put_object(Bucket=settings.reports_bucket, Key=f"{stem}.json", ContentType="application/json",
                  Body=report.to_json(indent=1).encode())
    s3.put_object(Bucket=settings.reports_bucket, Key=f"{stem}.html", ContentType="text/html; charset=utf-8",
                  Body=render(report).encode())
    return report


def run_check(
    s3: Any, settings: Settings, model: ProductionModel | None, now: datetime,
    remaining_ms: Callable[[], int] = lambda: 10**9,
) -> DriftReport | PartialCheck:
    """Check the window up to `now`; returns the stored report, or PartialCheck when time ran out."""
    if model is None:
        report = empty_report("no_model", "no promoted model (MODEL_DATA_URL is empty): nothing to compare with",
                              model=ModelRef(name=settings.model_name))
        return write_report(s3, settings, report, now)
    checkpoint = load_checkpoint(s3, settings)
    state = resume(checkpoint, model)
    objects = list_window(s3, settings.capture_bucket, settings.capture_prefix, state.cursor, now)
    files = count_files_parallel(s3, settings.capture_bucket, objects, model.baseline, settings.workers)
    since_save = 0
    for i, (obj, counts, problem) in enumerate(files):
        state.acc.merge(counts)
        if problem:
            state.unreadable.append({"key": obj.key, "error": problem})
        state.cursor.advance(obj)
        state.files += 1
        since_save += 1
        left = len(objects) - i - 1
        out_of_time = left > 0 and remaining_ms() < settings.stop_margin_ms
        if out_of_time or (left > 0 and since_save >= settings.checkpoint_every):
            save_checkpoint(s3, settings, checkpoint.get("cursor"), state.to_dict(model.sha256))
            since_save = 0
        if out_of_time:
            return PartialCheck(files=state.files, remaining_files=left, rows_checked=state.acc.rows,
                                rows_rejected=state.acc.rejected)
    window = Window(start=state.start, end=iso(now), files=state.files,
                    unreadable_files=[UnreadableFile(**u) for u in state.unreadable])
    model_info = ModelRef(name=model.name, version=model.version, sha256=model.sha256, url=model.url)
    report = make_report(model.baseline, state.acc, settings.thresholds, model=model_info, window=window)
    report = write_report(s3, settings, report, now)
    # Only after the report is stored does the window count as read.
    save_checkpoint(s3, settings, state.cursor.to_dict(), None)
    return report

