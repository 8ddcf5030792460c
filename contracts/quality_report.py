"""The model-quality report: captured predictions joined to their ground-truth labels, the realized metrics
with confidence intervals beside the training hold-out's, the estimate from calibrated probabilities, a verdict.

Written as JSON (and HTML) by `mlops quality`; the scheduled check (drift_check.quality_check) stores the same
report per window of one model version's predictions, and a QualityRun per run. A field that is UNSET is left
out of the JSON.
"""
from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from contracts.drift_report import ModelRef, StoredReport, UnreadableFile

QualityStatus = Literal["ok", "degraded", "insufficient_labels"]


class QualityWindow(msgspec.Struct, kw_only=True):
    """What was read: capture files or a window of them, the labels, and the captured predictions' time span."""

    start: str | None = None  # the earliest and latest time of the captured predictions considered
    end: str | None = None
    captures: list[str] | UnsetType = UNSET  # files or directories (the command line)
    labels: str | UnsetType = UNSET
    # The scheduled check: the model version whose predictions these are, and the fixed window they fall in
    # (prediction time floored to the window length, UTC; the end is exclusive).
    model_version: str | UnsetType = UNSET
    period_start: str | UnsetType = UNSET
    period_end: str | UnsetType = UNSET


class VersionQuality(msgspec.Struct, kw_only=True):
    """The matched predictions one model version served, and its realized metrics (no intervals)."""

    predictions: int
    matched: int
    realized: dict[str, float]


class QualityReport(StoredReport, kw_only=True):
    """The whole report; estimated and estimated_calibrated are UNSET for regression."""

    generated_at: str
    model: ModelRef
    task: str
    window: QualityWindow
    status: QualityStatus
    reason: str
    primary_metric: str
    predictions: int  # captured predictions considered (valid records, the last per id)
    predictions_without_id: int  # captured before prediction ids existed: they cannot be joined
    rejected_captures: dict[str, int]  # capture lines not used, by reason
    labels: int  # label records read, before a later label replaced an earlier one
    replaced_labels: int
    matched: int
    unmatched_labels: int  # labels whose id was never predicted (in these captures)
    invalid_labels: int  # labels that do not fit the model, and malformed label rows
    invalid_reasons: dict[str, int]
    label_coverage: float | None  # matched / predictions with an id
    # Hours from a matched prediction's time to its label's arrival (median, 90th percentile); None when no
    # matched label has both times. A label time before its prediction counts as 0.
    label_delay_median_hours: float | None | UnsetType = UNSET
    label_delay_p90_hours: float | None | UnsetType = UNSET
    realized: dict[str, float]
    intervals: dict[str, list[float]]  # metric -> [low, high]
    baseline: dict[str, float]  # the training hold-out's metrics (the artifact's metadata)
    estimated: dict[str, float] | UnsetType = UNSET  # classifiers: from calibrated probabilities of every prediction
    estimated_rows: int | UnsetType = UNSET  # predictions with probabilities the estimate used
    estimated_calibrated: bool | UnsetType = UNSET  # False: the artifact had no calibration, raw probabilities
    degraded_metrics: list[str]
    thresholds: dict[str, Any]  # min_labels, tolerance, floors, confidence, bootstrap resamples and seed
    model_versions: dict[str, VersionQuality]


class WindowSummary(msgspec.Struct, kw_only=True):
    """One window of a scheduled run: a row of the run report's table (its whole report is at `report_key`)."""

    model_version: str
    period_start: str
    period_end: str
    status: QualityStatus
    predictions: int
    matched: int
    label_coverage: float | None
    label_delay_median_hours: float | None
    label_delay_p90_hours: float | None
    primary_metric: str
    realized: float | None  # the primary metric on the labelled predictions
    interval: list[float] | None
    estimated: float | None  # classifiers: from calibrated probabilities of every prediction
    baseline: float | None  # the version's training hold-out value; None: no baseline (see baseline_note)
    degraded_metrics: list[str]
    baseline_note: str | None = None  # why this version has no training baseline
    report_key: str
    changed: bool = False  # recomputed and rewritten by this run


class QualityRun(StoredReport, kw_only=True):
    """A scheduled run that changed something: every window in the horizon, the totals of what it read."""

    generated_at: str
    model: ModelRef  # the live model (the configured artifact)
    status: QualityStatus | Literal["no_data"]  # the live version's latest window with a verdict, else its latest
    horizon_start: str  # predictions and label objects older than this are not read; their windows are final
    window_hours: int
    windows: list[WindowSummary]  # newest first
    windows_changed: int
    predictions: int  # captured predictions in the horizon's windows
    labels: int  # label records read from the horizon's label objects
    replaced_labels: int  # replaced by a later label for the same id
    unmatched_labels: int  # labels in force whose id no prediction in the horizon has
    invalid_labels: int  # malformed label rows, and matched labels that do not fit the model
    invalid_reasons: dict[str, int]
    rejected_captures: dict[str, int]  # capture lines not used, by reason (before_horizon is informational)
    capture_objects: int
    label_objects: int
    unreadable_objects: list[UnreadableFile]  # capture or label objects that could not be read (to the end)
    thresholds: dict[str, Any]
    report_uri: str | UnsetType = UNSET
