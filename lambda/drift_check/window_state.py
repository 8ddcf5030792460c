"""The drift check's state between runs, and how a window that was read becomes a report.

State lives in one checkpoint object: the committed cursor; while a window is being read, a partial
state (cursor + accumulator, saved together after whole files); and the pool, the counts of earlier
windows that had too few rows for a verdict. A run that stops early resumes from the partial state,
so no file is lost or counted twice; a run below min_rows carries its counts over into the next one,
until the minimum is reached or the pool's oldest data is older than the maximum window age. While a
fanned-out run is in flight, the checkpoint also holds its lock (drift_check.fanout).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from msgspec.structs import replace

from contracts import names
from contracts.drift_report import DriftReport, ModelRef, PoolState, UnreadableFile, Window
from contracts.s3_uri import get_if_exists
from drift_check.capture_source import CaptureObject, Cursor, iso
from drift_check.model_source import ProductionModel
from drift_check.report import make_report
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
    max_window: timedelta = timedelta(days=7)  # a pool whose oldest data is older closes without a verdict
    # Fan-out (drift_check.fanout): windows of more capture bytes than fanout_bytes are counted by children.
    fanout_state_machine_arn: str = ""  # empty: never fan out
    fanout_bytes: int = 0  # 0: never fan out
    fanout_group_bytes: int = 1 << 30  # capture bytes per child
    fanout_timeout: timedelta = timedelta(hours=2)  # the state machine's timeout: an older lock is a lost run


@dataclass
class WindowState:
    """A window being read: accumulator and cursor always describe the same whole files.

    `runs` counts the earlier runs pooled into it; `oldest` is the oldest capture file's LastModified.
    """

    acc: Accumulator
    cursor: Cursor
    start: str | None
    files: int = 0
    unreadable: list[dict[str, str]] = field(default_factory=list)
    runs: int = 0
    oldest: str | None = None

    def count(self, obj: CaptureObject, counts: Accumulator, problem: str | None) -> None:
        """Add one whole file: its counts, its problem if any, and the cursor past it."""
        self.count_group([obj], counts, [{"key": obj.key, "error": problem}] if problem else [])

    def count_group(self, objects: list[CaptureObject], counts: Accumulator, unreadable: list[dict[str, str]]) -> None:
        """Add whole files counted together (a fan-out child's group), in plan order."""
        self.acc.merge(counts)
        self.unreadable.extend(unreadable)
        for obj in objects:
            self.cursor.advance(obj)
            if self.oldest is None or obj.last_modified < datetime.fromisoformat(self.oldest):
                self.oldest = iso(obj.last_modified)
        self.files += len(objects)

    def to_dict(self, model_sha256: str) -> dict[str, Any]:
        return {"model_sha256": model_sha256, "accumulator": self.acc.to_dict(), "cursor": self.cursor.to_dict(),
                "start": self.start, "files": self.files, "unreadable": self.unreadable, "runs": self.runs,
                "oldest": self.oldest}

    @classmethod
    def from_dict(cls, model: ProductionModel, state: dict[str, Any] | None) -> WindowState | None:
        """The saved state when it belongs to this model and can be read, else None."""
        if not state or state.get("model_sha256") != model.sha256:
            return None  # another model's counts were binned with another baseline
        try:
            return cls(acc=Accumulator.from_dict(model.baseline, state["accumulator"]),
                       cursor=Cursor.from_dict(state["cursor"]), start=state["start"], files=int(state["files"]),
                       unreadable=list(state["unreadable"]), runs=int(state.get("runs", 0)),
                       oldest=state.get("oldest"))
        except (KeyError, TypeError, ValueError):
            return None


def load_checkpoint(s3: Any, settings: Settings) -> dict[str, Any]:
    """The last run's state; a fresh one before the first run (the role may list only drift/<model>/)."""
    obj = get_if_exists(s3, settings.reports_bucket, settings.checkpoint_key)
    if obj is None:
        return {"format": CHECKPOINT_FORMAT, "cursor": None, "partial": None, "pool": None, "fanout": None}
    state = json.loads(obj["Body"].read())
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"s3://{settings.reports_bucket}/{settings.checkpoint_key} is not a {CHECKPOINT_FORMAT} checkpoint")
    return state


def save_checkpoint(s3: Any, settings: Settings, cursor: dict[str, Any] | None, partial: dict[str, Any] | None,
                    pool: dict[str, Any] | None, fanout: dict[str, Any] | None = None) -> None:
    """One object, written whole: a run sees either the old state or the new one."""
    body = {"format": CHECKPOINT_FORMAT, "model_name": settings.model_name, "cursor": cursor, "partial": partial,
            "pool": pool, "fanout": fanout}
    s3.put_object(Bucket=settings.reports_bucket, Key=settings.checkpoint_key,
                  Body=json.dumps(body, separators=(",", ":")).encode(), ContentType="application/json")


def resume(checkpoint: dict[str, Any], model: ProductionModel) -> WindowState:
    """The partial window of the same model, else its pool from the committed cursor, else a new window.

    A partial state already holds the pool it started from. A model change starts a new pool.
    """
    partial = WindowState.from_dict(model, checkpoint.get("partial"))
    if partial is not None:
        return partial
    pool = WindowState.from_dict(model, checkpoint.get("pool"))
    if pool is not None:
        return pool
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


def pool_state(state: WindowState, settings: Settings, now: datetime) -> PoolState:
    """Whether this window gets its verdict now, is carried over into the next run, or closes unjudged."""
    if state.acc.rows == 0 or state.acc.rows >= settings.thresholds.min_rows:
        return "complete"
    if state.oldest is not None and now - datetime.fromisoformat(state.oldest) >= settings.max_window:
        return "expired"
    return "carried_over"


def finish(s3: Any, settings: Settings, model: ProductionModel, state: WindowState, now: datetime) -> DriftReport:
    """Report the window read into `state`, then commit the cursor and keep or drop the pool."""
    pool = pool_state(state, settings, now)
    runs = state.runs + 1
    window = Window(start=state.start, end=iso(now), files=state.files, runs=runs, pool=pool, oldest_data=state.oldest,
                    unreadable_files=[UnreadableFile(**u) for u in state.unreadable])
    model_info = ModelRef(name=model.name, version=model.version, sha256=model.sha256, url=model.url)
    report = make_report(model.baseline, state.acc, settings.thresholds, model=model_info, window=window)
    minimum, rows = settings.thresholds.min_rows, state.acc.rows
    if pool == "carried_over":
        report = replace(report, reason=f"{rows} of the {minimum} rows needed, pooled over {runs} run(s) since "
                                        f"{state.oldest}: carried over into the next run")
    elif pool == "expired":
        report = replace(report, reason=f"{rows} of the {minimum} rows needed when the pool's oldest data "
                                        f"({state.oldest}) passed the maximum window age of {settings.max_window}: "
                                        "no verdict, a new pool starts")
    report = write_report(s3, settings, report, now)
    # Only after the report is stored does the window count as read.
    state.runs = runs
    carried = state.to_dict(model.sha256) if pool == "carried_over" else None
    save_checkpoint(s3, settings, state.cursor.to_dict(), None, carried)
    return report
