"""One drift-check run: read the new capture files, count them (here, or fanned out), report, move the cursor."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.drift_report import DriftReport, ModelRef
from drift_check import fanout
from drift_check.capture_source import list_window
from drift_check.file_counts import count_files_parallel
from drift_check.model_source import ProductionModel
from drift_check.report import empty_report
from drift_check.window_state import Settings, finish, load_checkpoint, resume, save_checkpoint, write_report

__all__ = ["PartialCheck", "Settings", "run_check"]


@dataclass(frozen=True, kw_only=True)
class PartialCheck:
    """A run that stopped for time before the end of the window; the next run resumes it."""

    status: str = "partial"
    files: int  # read so far in this window
    remaining_files: int
    rows_checked: int
    rows_rejected: int


def run_check(
    s3: Any, settings: Settings, model: ProductionModel | None, now: datetime,
    remaining_ms: Callable[[], int] = lambda: 10**9, sfn: Any = None,
) -> DriftReport | PartialCheck | fanout.FanoutStarted | fanout.FanoutInProgress:
    """Check the window up to `now`; returns the stored report, PartialCheck when time ran out, or what a
    fan-out (started now with the Step Functions client `sfn`, or still in flight) is doing."""
    if model is None:
        report = empty_report("no_model", "no promoted model (MODEL_DATA_URL is empty): nothing to compare with",
                              model=ModelRef(name=settings.model_name))
        return write_report(s3, settings, report, now)
    checkpoint = load_checkpoint(s3, settings)
    busy = fanout.in_flight(checkpoint, settings, now)
    if busy is not None:
        return busy
    state = resume(checkpoint, model)
    objects = list_window(s3, settings.capture_bucket, settings.capture_prefix, state.cursor, now)
    if fanout.wants_fanout(settings, objects):
        return fanout.start(s3, sfn, settings, model, checkpoint, objects, now)
    files = count_files_parallel(s3, settings.capture_bucket, objects, model.baseline, settings.workers)
    since_save = 0
    for i, (obj, counts, problem) in enumerate(files):
        state.count(obj, counts, problem)
        since_save += 1
        left = len(objects) - i - 1
        out_of_time = left > 0 and remaining_ms() < settings.stop_margin_ms
        if out_of_time or (left > 0 and since_save >= settings.checkpoint_every):
            save_checkpoint(s3, settings, checkpoint.get("cursor"), state.to_dict(model.sha256), checkpoint.get("pool"))
            since_save = 0
        if out_of_time:
            return PartialCheck(files=state.files, remaining_files=left, rows_checked=state.acc.rows,
                                rows_rejected=state.acc.rejected)
    return finish(s3, settings, model, state, now)
