"""The drift report: the drift check's verdict on a window of captured data (or the CLI's on a CSV file).

Stored as JSON beside its HTML page in the reports bucket; the handler publishes its metrics, the
command line prints its summary. A field that is UNSET is left out of the JSON.
"""
from __future__ import annotations

import json
from typing import Any, Literal, Self

import msgspec
from msgspec import UNSET, UnsetType

Status = Literal["ok", "drift", "insufficient_data", "no_data", "no_model"]
FeatureStatus = Literal["tested", "no_reference", "insufficient_data"]
Severity = Literal["none", "warn", "critical"]


class Summary(msgspec.Struct, kw_only=True):
    """One side of a feature (reference or current): its size, missing rate, range or categories."""

    count: int
    missing_rate: float
    min: float | None | UnsetType = UNSET  # numeric
    max: float | None | UnsetType = UNSET
    mean: float | None | UnsetType = UNSET
    std: float | None | UnsetType = UNSET
    n_categories: int | UnsetType = UNSET  # categorical reference
    unseen_examples: list[str] | UnsetType = UNSET  # categorical current


class Histogram(msgspec.Struct):
    """Counts per bin for a person: PSI bins (numeric) or categories, reference beside current."""

    labels: list[str]
    reference: list[int]
    current: list[int]


class FeatureQuality(msgspec.Struct, kw_only=True):
    """Shares of values (or lines) with a data-quality problem; the field names are the checks of Issue.check."""

    missing_rate_increase: float
    out_of_range_share: float | UnsetType = UNSET  # numeric
    unseen_share: float | UnsetType = UNSET  # categorical
    wrong_type_share: float | UnsetType = UNSET  # features, not the prediction
    absent_share: float | UnsetType = UNSET

    def shares(self) -> dict[str, float]:
        """The checks this feature has, by name."""
        return msgspec.to_builtins(self)


class FeatureReport(msgspec.Struct, kw_only=True):
    """One feature (or the prediction): both sides, the test, the effect size and the verdict."""

    type: Literal["numeric", "categorical"]
    reference: Summary
    current: Summary
    histogram: Histogram
    quality: FeatureQuality
    status: FeatureStatus
    # Tested only:
    test: Literal["ks", "chi2"] | UnsetType = UNSET
    statistic: float | UnsetType = UNSET
    p_value: float | UnsetType = UNSET
    psi: float | UnsetType = UNSET
    wasserstein: float | UnsetType = UNSET  # numeric
    wasserstein_std: float | None | UnsetType = UNSET
    max_share_change: float | UnsetType = UNSET  # categorical
    max_share_change_category: str | UnsetType = UNSET
    severity: Severity = "none"
    p_adjusted: float | UnsetType = UNSET  # Benjamini-Hochberg across the tested features
    significant: bool = False
    drift: bool = False  # significant and at least a warning


class Issue(msgspec.Struct, kw_only=True):
    """A data-quality warning or failure, of one feature or (feature None) of the dataset."""

    feature: str | None
    check: str  # a FeatureQuality field, rejected_share or unexpected_columns
    value: float | list[str]
    severity: Literal["warn", "fail"]


class DatasetQuality(msgspec.Struct, kw_only=True):
    """The issues of every feature and of the dataset as a whole."""

    failed: bool  # any failure: the dataset counts as drifted
    issues: list[Issue]
    missing_columns: list[str]
    unexpected_columns: dict[str, int]  # column -> rows that had it


class ModelRef(msgspec.Struct, kw_only=True):
    """The model whose baseline the data was compared with."""

    name: str
    version: str | UnsetType = UNSET
    sha256: str | UnsetType = UNSET
    url: str | UnsetType = UNSET


class UnreadableFile(msgspec.Struct):
    """A capture file that could not be read to the end (what could be read was counted)."""

    key: str
    error: str


PoolState = Literal["complete", "carried_over", "expired"]


class Window(msgspec.Struct, kw_only=True):
    """What was read: a window of capture files (the handler) or two CSV files (the command line).

    A scheduled window with fewer rows than min_rows is carried over: the next run pools its counts
    with its own, until the minimum is reached (complete) or the pool's oldest data passes the
    maximum age (expired: reported without a verdict, a new pool starts).
    """

    start: str | None | UnsetType = UNSET
    end: str | UnsetType = UNSET
    files: int | UnsetType = UNSET
    runs: int | UnsetType = UNSET  # scheduled runs whose data this window pools, this one included
    pool: PoolState | UnsetType = UNSET
    oldest_data: str | None | UnsetType = UNSET  # LastModified of the oldest capture file counted
    unreadable_files: list[UnreadableFile] | UnsetType = UNSET
    reference: str | UnsetType = UNSET
    current: str | UnsetType = UNSET


class StoredReport(msgspec.Struct, kw_only=True):
    """A report stored as JSON (drift, model quality): decoding, and encoding without NaN."""

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        """Decode and validate a stored report."""
        return msgspec.json.decode(data, type=cls)

    def to_dict(self) -> dict[str, Any]:
        """The parsed JSON body, fields in the stored order, UNSET fields left out."""
        return msgspec.to_builtins(self)

    def to_json(self, indent: int) -> str:
        """The stored JSON; NaN or infinity raises ValueError rather than writing invalid JSON."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


class DriftReport(StoredReport, kw_only=True):
    """The whole report. compare() leaves the first three fields UNSET; a report without a model has only `reason`."""

    generated_at: str | UnsetType = UNSET
    model: ModelRef | None | UnsetType = UNSET
    window: Window | None | UnsetType = UNSET
    status: Status
    reason: str | UnsetType = UNSET  # why nothing was compared
    dataset_drift: bool
    drifted_features: list[str]
    drift_share: float
    severity_counts: dict[str, int] | UnsetType = UNSET  # drifted features by severity
    rows_checked: int
    rows_rejected: int
    reject_reasons: dict[str, int] | UnsetType = UNSET
    model_versions: dict[str, int] | UnsetType = UNSET  # rows by the version that served them
    quality: DatasetQuality | UnsetType = UNSET
    features: dict[str, FeatureReport]
    prediction: FeatureReport | None
    prediction_drift: bool | UnsetType = UNSET
    thresholds: dict[str, float | int] | UnsetType = UNSET  # drift_check.stats_compare.Thresholds
    report_uri: str | UnsetType = UNSET  # where the JSON was stored
