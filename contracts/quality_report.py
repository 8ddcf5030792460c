"""The model-quality report: captured predictions joined to their ground-truth labels, the realized metrics
with confidence intervals beside the training hold-out's, the estimate from calibrated probabilities, a verdict.

Written as JSON (and HTML) by `mlops quality`; the scheduled check will store the same report. A field that
is UNSET is left out of the JSON.
"""
from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from contracts.drift_report import ModelRef, StoredReport

QualityStatus = Literal["ok", "degraded", "insufficient_labels"]


class QualityWindow(msgspec.Struct, kw_only=True):
    """What was read: capture files or a window of them, the labels, and the captured predictions' time span."""

    start: str | None = None  # the earliest and latest time of the captured predictions considered
    end: str | None = None
    captures: list[str] | UnsetType = UNSET  # files or directories (the command line)
    labels: str | UnsetType = UNSET


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
    realized: dict[str, float]
    intervals: dict[str, list[float]]  # metric -> [low, high]
    baseline: dict[str, float]  # the training hold-out's metrics (the artifact's metadata)
    estimated: dict[str, float] | UnsetType = UNSET  # classifiers: from calibrated probabilities of every prediction
    estimated_rows: int | UnsetType = UNSET  # predictions with probabilities the estimate used
    estimated_calibrated: bool | UnsetType = UNSET  # False: the artifact had no calibration, raw probabilities
    degraded_metrics: list[str]
    thresholds: dict[str, Any]  # min_labels, tolerance, floors, confidence, bootstrap resamples and seed
    model_versions: dict[str, VersionQuality]
