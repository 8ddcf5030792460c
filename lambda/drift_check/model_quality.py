"""The model-quality check: captured predictions joined by id to their ground-truth labels, realized metrics
with intervals against the training hold-out's, the CBPE estimate, and the verdict.

Input is blocks of capture JSON lines (files here, S3 objects for the scheduled check) and label records.
"""
from __future__ import annotations

import math
import operator
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import compress, repeat
from typing import Any

import msgspec
import numpy as np

from contracts import metric_names
from contracts.artifact import Metadata, utc_now
from contracts.capture_record import partial_record
from contracts.drift_report import ModelRef
from contracts.ground_truth import GroundTruth, Labels, in_force, label_text, label_value
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

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
NO_TIME = -(2**63)  # a row without a usable time
# Rows of probabilities and times are kept as the decoder gave them for this many rows, then turned into numbers
# for the whole chunk at once (numpy parses serving's fixed-width times; a record at a time it is a microsecond).
CHUNK = 4096
# Serving's time, 2026-12-01T05:00:00.123Z: such a text is kept as its microseconds alone, and written back as it was.
_STAMP = 24
_SEPARATOR_AT, _SEPARATORS = [4, 7, 10, 13, 16, 19, 23], np.frombuffer(b"--T::.Z", dtype=np.uint8)
_DIGIT_AT = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22]
_PAD = "\0" * _STAMP


def _microseconds(text: str) -> int | None:
    """An ISO-8601 time as microseconds since the epoch (without a zone: UTC); None when it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ((moment if moment.tzinfo else moment.replace(tzinfo=UTC)) - EPOCH) // MICROSECOND


def _canonical_text(microseconds: int) -> str:
    m = EPOCH + microseconds * MICROSECOND
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
            f"{m.microsecond // 1000:03d}Z")


def _stamps(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-width texts (24 bytes each) as microseconds since the epoch, and which were serving's canonical form
    of a real time (the others are parsed one at a time)."""
    chars = np.frombuffer(blob, dtype=np.uint8).reshape(-1, _STAMP)
    digits = chars[:, _DIGIT_AT].astype(np.int64) - ord("0")
    ok = (chars[:, _SEPARATOR_AT] == _SEPARATORS).all(axis=1) & ((digits >= 0) & (digits <= 9)).all(axis=1)
    d = np.where(ok[:, None], digits, 0)
    year, month, day = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3], d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
    hour, minute, second = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
    milli = d[:, 14] * 100 + d[:, 15] * 10 + d[:, 16]
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23) & (minute <= 59) & (second <= 59)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0)
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    ok &= day <= (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - first
    seconds = ((first + day - 1) * 24 + hour) * 3600 + minute * 60 + second
    return seconds * 1_000_000 + milli * 1000, ok


@dataclass
class Captured:
    """The usable captured predictions, in reading order, as columns, and the lines that were not usable.

    The scheduled check holds every window of the horizon from reading to judging, so a row is its id and a few
    numbers, not a record: the class index (or value), the probabilities in class order in one flat array (NaN:
    none, or not all finite), the version as an index into version_names, the time as microseconds since the
    epoch. A time that is not serving's canonical text is also kept as text (time_texts), so the report's window
    start and end are the texts as captured. Under 150 bytes a row, the id's string most of it (a record with its
    probability dict and strings was over 500, and a copy of it in lists another 250).
    """

    classes: list[str] | None  # None: regression
    rejected: Counter[str] = field(default_factory=Counter)
    ids: list[str | None] = field(default_factory=list, init=False)
    predictions: array = field(init=False)  # class index ("i") or value ("d")
    versions: array = field(default_factory=lambda: array("i"), init=False)  # index into version_names
    version_names: list[str] = field(default_factory=list, init=False)
    time_texts: dict[int, str] = field(default_factory=dict, init=False)  # row -> time text not canonical

    def __post_init__(self) -> None:
        self._index = {c: i for i, c in enumerate(self.classes or [])}
        self.predictions = array("i" if self.classes else "d")
        self._probabilities = array("d")  # len(classes) per row, the rows before the pending ones
        self._times = array("q")  # microseconds since the epoch (NO_TIME), the rows before the pending ones
        self._pending_probabilities: list[dict[str, float] | None] = []
        self._pending_times: list[Any] = []
        self._version_index: dict[Any, int] = {}
        self._one = msgspec.json.Decoder(_Record)

    def __len__(self) -> int:
        return len(self.ids)

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

    def add_record(self, record: Any) -> bool:
        """One decoded record with id, prediction, probability (str -> float, as the decoders type it),
        model_version and time (the scheduled check decodes each line once into its window's columns; the record
        itself is not kept). False when it is rejected (counted in `rejected`)."""
        value = record.prediction
        if self.classes is None:
            prediction = float(value) if _is_number(value) else None
        else:
            prediction = self._index.get(value if type(value) is str else label_text(value))
        if prediction is None:
            self.rejected["prediction_not_a_class" if self.classes else "prediction_not_a_number"] += 1
            return False
        self.ids.append(record.id or None)
        self.predictions.append(prediction)
        try:
            self.versions.append(self._version_index[record.model_version])
        except (KeyError, TypeError):  # new, or not hashable (a JSON list)
            self.versions.append(self._new_version(record.model_version))
        if self.classes:
            self._pending_probabilities.append(record.probability)
        self._pending_times.append(record.time)
        if len(self._pending_times) >= CHUNK:
            self.settle()
        return True

    def _new_version(self, value: Any) -> int:
        name = str(value) if value is not None else "unknown"
        if name not in self.version_names:
            self.version_names.append(name)
        index = self.version_names.index(name)
        if type(value) in (str, type(None)):  # 1 == 1.0 == True: only these are safe as keys for their text
            self._version_index[value] = index
        return index

    def settle(self) -> None:
        """The pending rows' probabilities and times as numbers (reading them does it; so may a reader that is done,
        not to hold up to a chunk of records' dicts and strings per window)."""
        first = len(self._times)
        pending, self._pending_times = self._pending_times, []
        if not pending:
            return
        if self.classes:
            given = self._pending_probabilities
            self._pending_probabilities = []
            if given.count(None):
                given = [{} if p is None else p for p in given]
            # A class without a probability is NaN, as is a value that is not finite: the row has none (see
            # probability_rows).
            columns = [np.fromiter(map(dict.get, given, repeat(c), repeat(math.nan)), dtype=np.float64,
                                   count=len(given)) for c in self.classes]
            self._probabilities.frombytes(np.column_stack(columns).tobytes())
        blob = "".join(pending) if set(map(type, pending)) == {str} and set(map(len, pending)) == {_STAMP} else ""
        if not blob.isascii() or len(blob) != _STAMP * len(pending):
            blob = "".join(t if type(t) is str and len(t) == _STAMP and t.isascii() else _PAD for t in pending)
        times, ok = _stamps(blob.encode("ascii"))
        for k in np.flatnonzero(~ok).tolist():  # not serving's form: parsed one at a time, and its text kept
            text = pending[k]
            moment = _microseconds(text) if isinstance(text, str) and text else None
            times[k] = NO_TIME if moment is None else moment
            if isinstance(text, str) and text:
                self.time_texts[first + k] = text
        self._times.frombytes(times.tobytes())

    @property
    def times(self) -> np.ndarray:
        """Each row's time in microseconds since the epoch, NO_TIME without one."""
        self.settle()
        return np.frombuffer(self._times, dtype=np.int64)

    def probability_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, classes) probabilities, NaN rows where none were given or one is not finite; which rows have them."""
        self.settle()
        proba = np.frombuffer(self._probabilities, dtype=np.float64).reshape(len(self), len(self.classes or []))
        given = np.isfinite(proba).all(axis=1)
        if not given.all():
            proba = proba.copy()
            proba[~given] = math.nan
        return proba, given

    def last_per_id(self) -> tuple[np.ndarray, dict[str, int]]:
        """Row numbers to consider: every row without an id, the last row of each id (a retried request's repeat);
        and that last row by id."""
        last: dict[Any, int] = dict(zip(self.ids, range(len(self.ids)), strict=True))
        last.pop(None, None)
        without_id = self.ids.count(None)
        keep = np.fromiter(last.values(), dtype=np.intp, count=len(last))
        if without_id:
            keep = np.concatenate([keep, [i for i, pid in enumerate(self.ids) if pid is None]])
        keep.sort()
        duplicates = len(self.ids) - without_id - len(last)
        if duplicates:
            self.rejected["repeated_id"] = duplicates
        return keep, last

    def time_span(self, rows: np.ndarray) -> tuple[str | None, str | None]:
        """The first and last time text of the rows, as texts sort (canonical texts sort as their times)."""
        times = self.times[rows]
        texts = []
        if self.time_texts:
            kept = np.fromiter(self.time_texts, dtype=np.intp, count=len(self.time_texts))
            kept = kept[np.isin(kept, rows)]
            texts = [self.time_texts[i] for i in kept.tolist()]
            times = times[~np.isin(rows, kept)]
        times = times[times != NO_TIME]
        if len(times):
            texts += [_canonical_text(int(times.min())), _canonical_text(int(times.max()))]
        return (min(texts), max(texts)) if texts else (None, None)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


@dataclass
class Join:
    rows: np.ndarray  # captured row numbers of the matched labels, in the order of the labels in force
    y_true: np.ndarray
    unmatched: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    arrivals: list[str | None] = field(default_factory=list)  # each matched label's time ([]: no label has one)


_ID, _LABEL, _TIME = operator.attrgetter("id"), operator.attrgetter("label"), operator.attrgetter("time")


def join(captured: Captured, by_id: dict[str, int], records: list[GroundTruth]) -> Join:
    """Match each label in force (one per id, contracts.ground_truth.in_force) to the prediction with its id;
    count the ones that cannot be used.

    Column by column (a million labels are a million dict lookups either way, but not a million Python steps):
    each label's row (-1: no prediction with its id), then its value, each distinct label text judged once.
    """
    reason = "not_a_class" if captured.classes else "not_a_number"
    rows = np.fromiter(map(by_id.get, map(_ID, records), repeat(-1)), dtype=np.intp, count=len(records))
    found = rows >= 0
    texts = list(map(_LABEL, compress(records, found.tolist())))
    if captured.classes and set(map(type, texts)) <= {str}:  # 1 == 1.0 == True: only texts are safe as keys
        known = {text: label_value(text, captured.classes) for text in set(texts)}
        values = list(map(known.__getitem__, texts))
    else:
        values = [label_value(text, captured.classes) for text in texts]
    dtype = np.int32 if captured.classes else np.float64
    if values.count(None):
        usable = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
        y_true = np.array([v for v in values if v is not None], dtype=dtype)
    else:
        usable, y_true = np.ones(len(values), dtype=bool), np.array(values, dtype=dtype)
    matched = np.flatnonzero(found)[usable]
    invalid = Counter({reason: int(len(values) - usable.sum())} if len(values) > usable.sum() else {})
    arrivals = [records[k].time for k in matched.tolist()] if any(map(_TIME, records)) else []
    return Join(rows=rows[matched], y_true=y_true, unmatched=int(len(records) - found.sum()), invalid=invalid,
                arrivals=arrivals)


def label_delay(captured: Captured, matched: Join) -> tuple[float | None, float | None]:
    """Median and 90th percentile of the hours from prediction to label arrival (negative delays count as 0)."""
    if not any(matched.arrivals):  # none of the labels has a time (or no label matched)
        return None, None
    arrived = np.full(len(matched.rows), NO_TIME, dtype=np.int64)
    last, moment = None, None
    for k, text in enumerate(matched.arrivals):
        if text != last:  # a bulk file's labels share its upload time
            last, moment = text, _microseconds(text) if text else None
        if moment is not None:
            arrived[k] = moment
    predicted = captured.times[matched.rows]
    both = (predicted != NO_TIME) & (arrived != NO_TIME)
    if not both.any():
        return None, None
    # microseconds / 1e6 / 3600: the same correctly rounded divisions as timedelta.total_seconds() / 3600
    delays = np.maximum(0.0, (arrived[both] - predicted[both]) / 10**6 / 3600)
    return round(float(np.median(delays)), 3), round(float(np.percentile(delays, 90)), 3)


def _labelled(captured: Captured, rows: np.ndarray, y_true: np.ndarray) -> Labelled:
    predicted = np.frombuffer(captured.predictions, dtype=np.int32 if captured.classes else np.float64)[rows]
    if not captured.classes:
        return Labelled(y_true.astype(np.float64, copy=False), predicted)
    proba, _ = captured.probability_rows()
    return Labelled(y_true, predicted, proba[rows])  # class indices as int32: half the bytes, held to the end


def task_classes(meta: Metadata) -> list[str] | None:
    """The classes a model's captured predictions are decoded in; None: a regression model's values."""
    return meta.classes if meta.task != "regression" else None


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


def _estimated(captured: Captured, considered: np.ndarray, meta: Metadata) -> tuple[dict[str, float], int]:
    proba, given = captured.probability_rows()
    rows = considered[given[considered]]
    if not len(rows):
        return {}, 0
    predicted = np.frombuffer(captured.predictions, dtype=np.int32)[rows].astype(int)
    return estimate(proba[rows], predicted, meta.calibration), len(rows)


def _per_version(captured: Captured, considered: np.ndarray, matched: Join, data: Labelled,
                 realized: dict[str, float]) -> dict[str, VersionQuality]:
    codes = np.frombuffer(captured.versions, dtype=np.int32)
    served = np.bincount(codes[considered], minlength=len(captured.version_names))
    of_matched = codes[matched.rows]
    found = {}
    for code in sorted((c for c in range(len(served)) if served[c]), key=lambda c: captured.version_names[c]):
        picks = np.flatnonzero(of_matched == code)
        if len(picks) == len(matched.rows):  # the window's one version: its figures are the window's
            figures = realized
        else:
            part = Labelled(data.y_true[picks], data.predicted[picks], None if data.proba is None else data.proba[picks])
            figures = realized_metrics.values(metric_functions(part, captured.classes), len(picks)) if len(picks) else {}
        found[captured.version_names[code]] = VersionQuality(predictions=int(served[code]), matched=len(picks),
                                                             realized=figures)
    return found


def check(captured: Captured, labels: Labels, meta: Metadata, *, settings: Settings | None = None,
          window: QualityWindow | None = None) -> QualityReport:
    """Join, measure, estimate and judge one window of captured predictions and labels."""
    settings = settings or Settings()
    current, replaced = in_force(labels.records)  # before last_per_id's dict: not two dicts of every id at once
    considered, by_id = captured.last_per_id()
    matched = join(captured, by_id, current)
    with_id = len(by_id)
    del by_id  # a dict of a million ids and their row numbers: gone before the bootstrap's arrays
    invalid = Counter(matched.invalid)
    if labels.malformed:
        invalid["malformed"] = labels.malformed
    data = _labelled(captured, matched.rows, matched.y_true)
    functions = metric_functions(data, captured.classes)
    n = len(matched.rows)
    realized = realized_metrics.values(functions, n) if n else {}
    intervals = realized_metrics.intervals(functions, n, resamples=settings.resamples, seed=settings.seed,
                                           confidence=settings.confidence) if n else {}
    del functions
    baseline = dict(meta.metrics)
    primary = PRIMARY_METRIC[meta.task]
    if n < settings.min_labels:
        status, problems = "insufficient_labels", []
        reason = f"{n} labelled predictions, fewer than the {settings.min_labels} needed for a verdict"
    else:
        problems = verdict(realized, intervals, baseline, settings)
        status = "degraded" if problems else "ok"
        reason = "; ".join(problems) if problems else _ok_reason(primary, realized, intervals, baseline, settings)
    window = window or QualityWindow()
    window.start, window.end = captured.time_span(considered)
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
        thresholds=settings.describe(), model_versions=_per_version(captured, considered, matched, data, realized),
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
