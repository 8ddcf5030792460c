"""A window too big for one run: children of a Step Functions Distributed Map count it, one merge reports it.

When a window's capture files add up to more bytes than one run reads with a margin (Settings.fanout_bytes),
the scheduled run plans instead of counting: it cuts the files, in plan order, into groups of about
fanout_group_bytes, writes the groups as the map's manifest, locks the checkpoint and starts the state
machine. Each child counts its group into one accumulator and stores it. The merge (the drift check's own
function, so it never runs beside a scheduled run) adds the groups' counts into the window in plan order,
moves the cursor over the same files and finishes the window as a single run does: pooling, report,
checkpoint. Counts add up exactly, so the report is the one a single run would have written.

The lock keeps scheduled runs off the planned files while the children count them. If a child fails for
good, the state machine's failure path releases the lock and the next scheduled run plans the window again;
a lock older than fanout_timeout (the state machine's own timeout) belongs to a lost run and is ignored.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import names
from contracts.drift_report import DriftReport
from drift_check.capture_source import CaptureObject, iso
from drift_check.file_counts import count_files_parallel
from drift_check.model_source import ProductionModel
from drift_check.stats import Accumulator
from drift_check.window_state import Settings, finish, load_checkpoint, resume, save_checkpoint

PART_FORMAT = "drift-fanout-part/1"
MAX_FILES_PER_GROUP = 500  # keeps one map item (its file list) far below Step Functions' 256 KB input limit


class FanoutError(RuntimeError):
    """A fan-out step cannot go on: the lock is gone, the model changed, or a child's counts are missing."""


@dataclass(frozen=True, kw_only=True)
class FanoutStarted:
    """The scheduled run planned a fan-out instead of counting; the merge step will write the report."""

    status: str = "fanned_out"
    run_id: str
    execution_arn: str
    files: int
    groups: int
    bytes: int


@dataclass(frozen=True, kw_only=True)
class FanoutInProgress:
    """A fanned-out run holds the window: this scheduled run leaves it alone."""

    status: str = "fanout_in_progress"
    run_id: str
    started: str


@dataclass(frozen=True, kw_only=True)
class FanoutReleased:
    """The state machine failed: its lock is released, the next scheduled run plans the window again."""

    status: str = "fanout_released"
    run_id: str
    error: str


def wants_fanout(settings: Settings, objects: list[CaptureObject]) -> bool:
    if not settings.fanout_state_machine_arn or settings.fanout_bytes <= 0:
        return False
    return sum(obj.size for obj in objects) > settings.fanout_bytes


def group_files(objects: list[CaptureObject], group_bytes: int) -> list[list[CaptureObject]]:
    """Consecutive groups of about group_bytes (a bigger file is a group of its own), plan order kept."""
    groups: list[list[CaptureObject]] = []
    current: list[CaptureObject] = []
    size = 0
    for obj in objects:
        if current and (size + obj.size > group_bytes or len(current) >= MAX_FILES_PER_GROUP):
            groups.append(current)
            current, size = [], 0
        current.append(obj)
        size += obj.size
    if current:
        groups.append(current)
    return groups


def encode(obj: CaptureObject) -> list[Any]:
    return [obj.key, iso(obj.last_modified), obj.size]


def decode(item: list[Any]) -> CaptureObject:
    key, modified, size = item
    return CaptureObject(key=key, last_modified=datetime.fromisoformat(modified), size=int(size))


def in_flight(checkpoint: dict[str, Any], settings: Settings, now: datetime) -> FanoutInProgress | None:
    """The fanned-out run that holds the window, unless its lock is older than the state machine may run."""
    lock = checkpoint.get("fanout")
    if not lock or now - datetime.fromisoformat(lock["started"]) >= settings.fanout_timeout:
        return None
    return FanoutInProgress(run_id=lock["run_id"], started=lock["started"])


def start(s3: Any, sfn: Any, settings: Settings, model: ProductionModel, checkpoint: dict[str, Any],
          objects: list[CaptureObject], now: datetime) -> FanoutStarted:
    """Write the manifest, lock the checkpoint, start the state machine (or release the lock and raise)."""
    run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    groups = group_files(objects, settings.fanout_group_bytes)
    manifest_key = names.drift_fanout_manifest_key(settings.model_name, run_id)
    manifest = [{"group": i, "files": [encode(obj) for obj in group]} for i, group in enumerate(groups)]
    s3.put_object(Bucket=settings.reports_bucket, Key=manifest_key, ContentType="application/json",
                  Body=json.dumps(manifest, separators=(",", ":")).encode())
    lock = {"run_id": run_id, "manifest_key": manifest_key, "started": iso(now), "model_sha256": model.sha256}
    keep = checkpoint.get("cursor"), checkpoint.get("partial"), checkpoint.get("pool")
    save_checkpoint(s3, settings, *keep, fanout=lock)
    request = {"run_id": run_id, "manifest_key": manifest_key, "model_sha256": model.sha256}
    try:
        execution = sfn.start_execution(stateMachineArn=settings.fanout_state_machine_arn, name=run_id,
                                        input=json.dumps(request))
    except Exception:
        save_checkpoint(s3, settings, *keep, fanout=None)  # nothing is counting: the next run plans again
        raise
    return FanoutStarted(run_id=run_id, execution_arn=execution["executionArn"], files=len(objects),
                         groups=len(groups), bytes=sum(obj.size for obj in objects))


# ------------------------------------------------------------------ a child: one group of files


def count_groups(s3: Any, settings: Settings, model: ProductionModel, event: dict[str, Any]) -> dict[str, Any]:
    """A map child's batch (`{"Items": [...], "BatchInput": {...}}`): count each group, store its counts.

    Idempotent: a retried child writes the same part again.
    """
    request = event["BatchInput"]
    if request["model_sha256"] != model.sha256:
        raise FanoutError(f"run {request['run_id']} was planned for model {request['model_sha256'][:12]}, this "
                          f"function serves {model.sha256[:12]}: a promotion happened meanwhile")
    rows = files = 0
    for item in event["Items"]:
        objects = [decode(f) for f in item["files"]]
        acc = Accumulator(model.baseline)
        unreadable = []
        for obj, counts, problem in count_files_parallel(s3, settings.capture_bucket, objects, model.baseline,
                                                         settings.workers):
            acc.merge(counts)
            if problem:
                unreadable.append({"key": obj.key, "error": problem})
        part = {"format": PART_FORMAT, "run_id": request["run_id"], "group": item["group"],
                "model_sha256": model.sha256, "files": len(objects), "accumulator": acc.to_dict(),
                "unreadable": unreadable}
        s3.put_object(Bucket=settings.reports_bucket, ContentType="application/json",
                      Key=names.drift_fanout_part_key(settings.model_name, request["run_id"], item["group"]),
                      Body=json.dumps(part, separators=(",", ":")).encode())
        rows += acc.rows
        files += len(objects)
    return {"run_id": request["run_id"], "groups": [item["group"] for item in event["Items"]], "files": files,
            "rows": rows}


# ------------------------------------------------------------------ the merge, or the release after a failure


def is_fanout_step(event: dict[str, Any]) -> bool:
    """The state machine's merge or release step (a scheduled event has no "fanout")."""
    return isinstance(event.get("fanout"), dict)


def _owned_lock(s3: Any, settings: Settings, run_id: str) -> dict[str, Any]:
    checkpoint = load_checkpoint(s3, settings)
    lock = checkpoint.get("fanout")
    if not lock or lock.get("run_id") != run_id:
        raise FanoutError(f"fan-out run {run_id} no longer holds the drift check's window (its lock expired or was "
                          "released): its counts are not merged, the window is read again")
    return checkpoint


def release(s3: Any, settings: Settings, event: dict[str, Any]) -> FanoutReleased:
    """After the map failed for good: drop the lock so the next scheduled run plans the window again."""
    run_id = event["fanout"]["run_id"]
    checkpoint = _owned_lock(s3, settings, run_id)
    save_checkpoint(s3, settings, checkpoint.get("cursor"), checkpoint.get("partial"), checkpoint.get("pool"))
    return FanoutReleased(run_id=run_id, error=json.dumps(event.get("error"))[:1000])


def merge(s3: Any, settings: Settings, model: ProductionModel, event: dict[str, Any]) -> DriftReport:
    """Add every group's counts into the window in plan order and finish it as one run would."""
    run_id = event["fanout"]["run_id"]
    checkpoint = _owned_lock(s3, settings, run_id)
    lock = checkpoint["fanout"]
    if lock["model_sha256"] != model.sha256:
        # The state machine's Release step drops the lock (it still holds it), and the next run reads the window again.
        raise FanoutError(f"the promoted model changed while run {run_id} was counting: the window is read again")
    manifest = json.loads(s3.get_object(Bucket=settings.reports_bucket, Key=lock["manifest_key"])["Body"].read())
    state = resume(checkpoint, model)
    for item in manifest:
        key = names.drift_fanout_part_key(settings.model_name, run_id, item["group"])
        part = json.loads(s3.get_object(Bucket=settings.reports_bucket, Key=key)["Body"].read())
        if (part.get("format"), part.get("run_id"), part.get("model_sha256")) != (PART_FORMAT, run_id, model.sha256):
            raise FanoutError(f"s3://{settings.reports_bucket}/{key} is not group {item['group']} of run {run_id}")
        state.count_group([decode(f) for f in item["files"]], Accumulator.from_dict(model.baseline, part["accumulator"]),
                          part["unreadable"])
    return finish(s3, settings, model, state, datetime.fromisoformat(lock["started"]))
