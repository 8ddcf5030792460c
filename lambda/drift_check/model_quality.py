"""The model-quality check: captured predictions joined by id to their ground-truth labels, realized metrics
with intervals against the training hold-out's, the CBPE estimate, and the verdict.

Input is blocks of capture JSON lines (files here, S3 objects for the scheduled check) and label records.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from contracts import metric_names
from contracts.artifact import Metadata, utc_now
from contracts.capture_record import partial_record
from contracts.drift_report import ModelRef
from contracts.ground_truth import GroundTruth, Labels, label_text, label_value, latest
from contracts.quality_report import QualityReport, QualityWindow, VersionQuality
from drift_check import realized_metrics
from drift_check.performance_estimate import estimate
from drift_check.realized_metrics import Labelled
from training.evaluate import PRIMARY_METRIC

DEFAULT_MIN_LABELS = 100
DEFAULT_TOLERANCE = 0.05
JUDGED = metric_names.JUDGED_QUALITY_METRICS


@dataclass(frozen=True)
class Settings:
    min_labels: int = DEFAULT_MIN_LABELS
    tolerance: float = DEFAULT_TOLERANCE
    floors: dict[str, float] = field(default_factory=dict)  # metric -> absolute floor, e.g. accuracy 0.7
    resamples: int = realized_metrics.RESAMPLES
    seed: int = realized_metrics.SEED
    confidence: float = realized_metrics.CONFIDENCE

    def __post_init__(self) -> None:
        if self.min_labels < 1:
            raise ValueError(f"min-labels must be at least 1, got {self.min_labels}")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"tolerance must be between 0 and 1, got {self.tolerance}")
        unknown = sorted(set(self.floors) - set(JUDGED))
        if unknown:
            raise ValueError(f"no floor for {', '.join(unknown)}: floors apply to {', '.join(JUDGED)}")

    def describe(self) -> dict[str, Any]:
        return {"min_labels": self.min_labels, "tolerance": self.tolerance, "floors": dict(self.floors),
                "confidence": self.confidence, "bootstrap_resamples": self.resamples, "bootstrap_seed": self.seed}


_Record = partial_record("QualityRecord", features=msgspec.Raw, id=str | None, prediction=Any,
                         probability=dict[str, float] | None, model_version=Any, time=Any)


@dataclass
class Captured:
    """The usable captured predictions, in reading order, and the lines that were not usable."""

    classes: list[str] | None  # None: regression
    ids: list[str | None] = field(default_factory=list)
    predictions: list[float | int] = field(default_factory=list)  # class index or value
    probabilities: list[list[float] | None] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    times: list[str | None] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._index = {c: i for i, c in enumerate(self.classes or [])}
        self._one = msgspec.json.Decoder(_Record)

    def add_block(self, block: bytes) -> None:
        """Decode newline-separated capture records; a bad line is counted and skipped."""
        for line in block.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = self._one.decode(line)
            except msgspec.DecodeError:  # ValidationError included
                self.rejected["bad_record"] += 1
                continue
            self.add_record(record)

    def add_record(self, record: Any) -> None:
        """One decoded record with id, prediction, probability, model_version and time (the scheduled check
        decodes each line once and routes the records to their windows)."""
        prediction = self._prediction(record.prediction)
        if prediction is None:
            self.rejected["prediction_not_a_class" if self.classes else "prediction_not_a_number"] += 1
            return
        self.ids.append(record.id or None)
        self.predictions.append(prediction)
        self.probabilities.append(self._probability(record.probability))
        self.versions.append(str(record.model_version) if record.model_version is not None else "unknown")
        self.times.append(record.time if isinstance(record.time, str) else None)

    def _prediction(self, value: Any) -> float | int | None:
        if self.classes is None:
            return float(value) if _is_number(value) else None
        return self._index.get(label_text(value))

    def _probability(self, probability: dict[str, float] | None) -> list[float] | None:
        if not self.classes or probability is None:
            return None
        row = [probability.get(c) for c in self.classes]
        return None if any(p is None or not math.isfinite(p) for p in row) else row  # type: ignore[arg-type]

    def last_per_id(self) -> list[int]:
        """Row numbers to consider: every row without an id, the last row of each id (a retried request's repeat)."""
        last: dict[str, int] = {}
        for i, pid in enumerate(self.ids):
            if pid is not None:
                last[pid] = i
        keep = [i for i, pid in enumerate(self.ids) if pid is None or last[pid] == i]
        duplicates = len(self.ids) - len(keep)
        if duplicates:
            self.rejected["repeated_id"] = duplicates
        return keep


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


@dataclass
class Join:
    rows: list[int]  # captured row numbers of the matched labels
    y_true: list[int | float]
    unmatched: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    arrivals: list[str | None] = field(default_factory=list)  # each matched label's time


def join(captured: Captured, considered: list[int], labels: dict[str, GroundTruth]) -> Join:
    """Match each label in force to the prediction with its id; count the ones that cannot be used."""
    by_id = {captured.ids[i]: i for i in considered if captured.ids[i] is not None}
    found = Join(rows=[], y_true=[])
    for pid, record in labels.items():
        row = by_id.get(pid)
        if row is None:
            found.unmatched += 1
            continue
        value = label_value(record.label, captured.classes)
        if value is None:
            found.invalid["not_a_class" if captured.classes else "not_a_number"] += 1
            continue
        found.rows.append(row)
        found.y_true.append(value)
        found.arrivals.append(record.time)
    return found


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def label_delay(captured: Captured, matched: Join) -> tuple[float | None, float | None]:
    """Median and 90th percentile of the hours from prediction to label arrival (negative delays count as 0)."""
    delays = []
    for row, arrival in zip(matched.rows, matched.arrivals, strict=True):
        predicted, arrived = _moment(captured.times[row]), _moment(arrival)
        if predicted is not None and arrived is not None:
            delays.append(max(0.0, (arrived - predicted).total_seconds() / 3600))
    if not delays:
        return None, None
    return round(float(np.median(delays)), 3), round(float(np.percentile(delays, 90)), 3)


def _labelled(captured: Captured, rows: list[int], y_true: list[int | float]) -> Labelled:
    predicted = np.array([captured.predictions[i] for i in rows])
    if not captured.classes:
        return Labelled(np.array(y_true, dtype=np.float64), predicted.astype(np.float64))
    proba = np.array([captured.probabilities[i] or [math.nan] * len(captured.classes) for i in rows],
                     dtype=np.float64).reshape(len(rows), len(captured.classes))
    return Labelled(np.array(y_true, dtype=int), predicted.astype(int), proba)


def metric_functions(data: Labelled, classes: list[str] | None) -> dict[str, realized_metrics.Metric]:
    return realized_metrics.classification(data, len(classes)) if classes else realized_metrics.regression(data)


def verdict(realized: dict[str, float], intervals: dict[str, list[float]], baseline: dict[str, float],
            settings: Settings) -> list[str]:
    """The judged metrics whose interval lies wholly below training − tolerance, or below their floor."""
    problems = []
    for name in JUDGED:
        if name not in realized:
            continue
        high = intervals.get(name, [realized[name]] * 2)[1]  # no interval: the value itself
        if name in baseline and high < baseline[name] - settings.tolerance:
            problems.append(f"{name} {realized[name]:.4f} (interval up to {high:.4f}) is below training "
                            f"{baseline[name]:.4f} - tolerance {settings.tolerance:g}")
        elif name in settings.floors and high < settings.floors[name]:
            problems.append(f"{name} {realized[name]:.4f} (interval up to {high:.4f}) is below the floor {settings.floors[name]:g}")
    return problems


def _estimated(captured: Captured, considered: list[int], meta: Metadata) -> tuple[dict[str, float], int]:
    rows = [i for i in considered if captured.probabilities[i] is not None]
    if not rows:
        return {}, 0
    proba = np.array([captured.probabilities[i] for i in rows], dtype=np.float64)
    predicted = np.array([captured.predictions[i] for i in rows], dtype=int)
    return estimate(proba, predicted, meta.calibration), len(rows)


def _per_version(captured: Captured, considered: list[int], matched: Join) -> dict[str, VersionQuality]:
    served = Counter(captured.versions[i] for i in considered)
    found = {}
    for version, count in sorted(served.items()):
        picks = [k for k, row in enumerate(matched.rows) if captured.versions[row] == version]
        data = _labelled(captured, [matched.rows[k] for k in picks], [matched.y_true[k] for k in picks])
        realized = realized_metrics.values(metric_functions(data, captured.classes), len(picks)) if picks else {}
        found[version] = VersionQuality(predictions=count, matched=len(picks), realized=realized)
    return found


def check(captured: Captured, labels: Labels, meta: Metadata, *, settings: Settings | None = None,
          window: QualityWindow | None = None) -> QualityReport:
    """Join, measure, estimate and judge one window of captured predictions and labels."""
    settings = settings or Settings()
    considered = captured.last_per_id()
    in_force, replaced = latest(labels.records)
    matched = join(captured, considered, in_force)
    invalid = Counter(matched.invalid)
    if labels.malformed:
        invalid["malformed"] = labels.malformed
    data = _labelled(captured, matched.rows, matched.y_true)
    functions = metric_functions(data, captured.classes)
    n = len(matched.rows)
    realized = realized_metrics.values(functions, n) if n else {}
    intervals = realized_metrics.intervals(functions, n, resamples=settings.resamples, seed=settings.seed,
                                           confidence=settings.confidence) if n else {}
    baseline = dict(meta.metrics)
    with_id = sum(1 for i in considered if captured.ids[i] is not None)
    primary = PRIMARY_METRIC[meta.task]
    if n < settings.min_labels:
        status, problems = "insufficient_labels", []
        reason = f"{n} labelled predictions, fewer than the {settings.min_labels} needed for a verdict"
    else:
        problems = verdict(realized, intervals, baseline, settings)
        status = "degraded" if problems else "ok"
        reason = "; ".join(problems) if problems else _ok_reason(primary, realized, intervals, baseline, settings)
    times = sorted(t for t in (captured.times[i] for i in considered) if t)
    window = window or QualityWindow()
    window.start, window.end = (times[0], times[-1]) if times else (None, None)
    delay_median, delay_p90 = label_delay(captured, matched)
    report = QualityReport(
        generated_at=utc_now(), model=ModelRef(name=meta.model_name, version=meta.model_version), task=meta.task,
        window=window, status=status, reason=reason, primary_metric=primary, predictions=len(considered),
        predictions_without_id=len(considered) - with_id, rejected_captures=dict(captured.rejected),
        labels=len(labels.records), replaced_labels=replaced, matched=n, unmatched_labels=matched.unmatched,
        invalid_labels=sum(invalid.values()), invalid_reasons=dict(invalid),
        label_coverage=round(n / with_id, 6) if with_id else None, label_delay_median_hours=delay_median,
        label_delay_p90_hours=delay_p90, realized=realized, intervals=intervals,
        baseline=baseline, degraded_metrics=[p.split(" ", 1)[0] for p in problems],
        thresholds=settings.describe(), model_versions=_per_version(captured, considered, matched),
    )
    if captured.classes:
        report.estimated, report.estimated_rows = _estimated(captured, considered, meta)
        report.estimated_calibrated = meta.calibration is not None
    return report


def _ok_reason(primary: str, realized: dict[str, float], intervals: dict[str, list[float]],
               baseline: dict[str, float], settings: Settings) -> str:
    if primary not in realized:
        return f"{primary} is undefined on the labelled predictions (a class is missing); no judged metric fell"
    low, high = intervals.get(primary, [realized[primary]] * 2)
    basis = f" vs training {baseline[primary]:.4f} - tolerance {settings.tolerance:g}" if primary in baseline else ""
    return f"{primary} {realized[primary]:.4f} [{low:.4f}, {high:.4f}]{basis}"
