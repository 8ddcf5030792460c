"""Compare current counts with a baseline: tests, effect sizes, data quality, the drift verdict.

A feature drifts only when its change is significant (KS or chi-squared, Benjamini-Hochberg
across features) and large enough to matter (PSI or the largest category-share change).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from msgspec import UNSET
from msgspec.structs import replace
from scipy.special import (  # scipy.stats alone costs ~70 MB and 0.5 s at import
    chdtrc,
    kolmogorov,
)

from contracts.baseline import Baseline, CategoricalBaseline, FeatureBaseline, NumericBaseline
from contracts.drift_report import (
    DatasetQuality,
    DriftReport,
    FeatureQuality,
    FeatureReport,
    FeatureStatus,
    Histogram,
    Issue,
    Summary,
)
from contracts.schema import FeatureType
from drift_check.stats import PREDICTION, Accumulator

SEVERITIES = ("none", "warn", "critical")


# The data-quality thresholds of Thresholds: shares (0-1] that the deployment configures.
QUALITY_SHARES = ("quality_warn", "missing_warn", "malformed_warn", "quality_fail")


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds; the defaults are the documented ones."""

    alpha: float = 0.05  # false discovery rate across features
    min_rows: int = 500  # fewer current rows: insufficient_data, never drift
    min_values: int = 50  # fewer non-missing values of a feature: that feature is not tested
    psi_warn: float = 0.1
    psi_critical: float = 0.25
    share_warn: float = 0.1  # largest change of one category's share
    share_critical: float = 0.2
    quality_warn: float = 0.05  # share of values out of range / unseen
    missing_warn: float = 0.1  # increase of the missing rate
    malformed_warn: float = 0.01  # share of lines rejected, or where a feature was absent or of the wrong type
    quality_fail: float = 1 / 3  # any quality share at or over this fails the dataset

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.min_rows < 1:
            raise ValueError(f"min_rows must be at least 1, got {self.min_rows}")
        for name in QUALITY_SHARES:
            value = getattr(self, name)
            if not 0 < value <= 1:  # at 0 every feature would have every issue
                raise ValueError(f"{name} must be above 0 and at most 1, got {value}")


# ---------------------------------------------------------------- statistics


def ks_from_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic over shared bins and its p-value (Stephens' approximation).

    The ECDFs are compared only at bin edges, so the statistic is at most the exact one and the
    test is conservative (never more false alarms than alpha).
    """
    n, m = int(ref.sum()), int(cur.sum())
    d = float(np.max(np.abs(np.cumsum(ref) / n - np.cumsum(cur) / m)))
    root = math.sqrt(n * m / (n + m))
    return d, float(kolmogorov((root + 0.12 + 0.11 / root) * d))


def chi2_from_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Chi-squared test of homogeneity; bins expecting fewer than 5 current rows are pooled."""
    total = ref + cur
    keep = total > 0
    ref, cur, total = ref[keep], cur[keep], total[keep]
    expected_cur = total * (cur.sum() / total.sum())
    small = expected_cur < 5
    if small.any():
        ref = np.append(ref[~small], ref[small].sum())
        cur = np.append(cur[~small], cur[small].sum())
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(chdtrc(table.shape[1] - 1, statistic))


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """Population stability index; bins empty on both sides are skipped, empty ones on one side smoothed."""
    keep = (ref + cur) > 0
    r = (ref[keep] + 0.5) / (ref.sum() + 0.5 * keep.sum())
    c = (cur[keep] + 0.5) / (cur.sum() + 0.5 * keep.sum())
    return float(np.sum((c - r) * np.log(c / r)))


def wasserstein_from_counts(edges: np.ndarray, ref: np.ndarray, cur: np.ndarray, lo: float, hi: float) -> float:
    """Approximate W1 distance: the area between the binned CDFs, outer bins clipped to [lo, hi]."""
    points = np.concatenate([[min(lo, edges[0])], edges, [max(hi, edges[-1])]])
    cdf_ref = np.concatenate([[0.0], np.cumsum(ref) / ref.sum()])
    cdf_cur = np.concatenate([[0.0], np.cumsum(cur) / cur.sum()])
    gap = np.abs(cdf_ref - cdf_cur)
    return float(np.sum((gap[:-1] + gap[1:]) / 2 * np.diff(points)))


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """BH-adjusted p-values (same order as given)."""
    if not p_values:
        return []
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def severity(value: float | None, warn: float, critical: float) -> str:
    if value is None or value < warn:
        return "none"
    return "critical" if value >= critical else "warn"


def _share(part: float, whole: float) -> float:
    return float(part / whole) if whole else 0.0


# ------------------------------------------------------------------- features


def numeric_histogram(stats: NumericBaseline, ref: np.ndarray, cur: np.ndarray) -> Histogram:
    """Counts grouped into the PSI bins, labelled for a person."""
    edges, starts = stats.edges, stats.psi_groups
    top = stats.max
    labels = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(edges) + 1
        lo = edges[start - 1] if start > 0 else -math.inf
        hi = edges[end - 1] if end - 1 < len(edges) else math.inf
        if stats.discrete and end - start == 1 and start % 2 == 1:
            labels.append(f"{lo:.6g}")  # a bin holding exactly one value
        elif lo == -math.inf:
            labels.append(f"< {hi:.4g}")
        elif hi == math.inf:
            labels.append(f"> {top:.4g}")
        elif top is not None and hi > top:  # the edge just above the maximum closes the range
            labels.append(f"[{lo:.4g}, {top:.4g}]")
        else:
            labels.append(f"[{lo:.4g}, {hi:.4g})")
    return Histogram(
        labels=labels,
        reference=np.add.reduceat(ref, starts).tolist() if starts else [],
        current=np.add.reduceat(cur, starts).tolist() if starts else [],
    )


def _moments_summary(count: int, missing: int, s: float, ss: float, lo: float, hi: float) -> Summary:
    present = count - missing
    mean = s / present if present else None
    var = max(ss / present - mean * mean, 0.0) if present else None
    return Summary(
        count=count, missing_rate=_share(missing, count),
        min=lo if present else None, max=hi if present else None,
        mean=mean, std=math.sqrt(var) if var is not None else None,
    )


def _status(n_ref: int, n_cur: int, th: Thresholds) -> FeatureStatus:
    if n_ref == 0:
        return "no_reference"
    return "insufficient_data" if n_cur < th.min_values else "tested"


def numeric_feature(stats: NumericBaseline, acc: Accumulator, name: str, th: Thresholds) -> FeatureReport:
    ref = np.asarray(stats.counts, dtype=np.int64)
    cur = acc.counts[name]
    missing = acc.missing[name]
    n_cur = int(cur.sum())
    s, ss, lo, hi = acc.moments[name]
    entry = FeatureReport(
        type=FeatureType.NUMERIC.value,
        reference=Summary(count=stats.count, missing_rate=stats.missing_rate, min=stats.min, max=stats.max,
                          mean=stats.mean, std=stats.std),
        current=_moments_summary(n_cur + missing, missing, s, ss, lo, hi),
        histogram=numeric_histogram(stats, ref, cur),
        quality=FeatureQuality(
            missing_rate_increase=_share(missing, n_cur + missing) - stats.missing_rate,
            out_of_range_share=_share(cur[0] + cur[-1], n_cur) if stats.edges else 0.0,
        ),
        status=_status(int(ref.sum()), n_cur, th),
    )
    if entry.status != "tested":
        return entry
    # KS is very conservative on a few distinct values (ties); their bins are categories to chi-squared.
    test, (statistic, p) = ("chi2", chi2_from_counts(ref, cur)) if stats.discrete else ("ks", ks_from_counts(ref, cur))
    effect = psi(np.asarray(entry.histogram.reference), np.asarray(entry.histogram.current))
    w = wasserstein_from_counts(np.asarray(stats.edges), ref, cur, lo, hi)
    std = stats.std or 0.0
    return replace(
        entry, test=test, statistic=statistic, p_value=p, psi=effect,
        wasserstein=w, wasserstein_std=w / std if std > 0 else None,
        severity=severity(effect, th.psi_warn, th.psi_critical),
    )


def categorical_feature(stats: CategoricalBaseline, acc: Accumulator, name: str, th: Thresholds) -> FeatureReport:
    ref = np.asarray(stats.counts, dtype=np.int64)
    cur = acc.counts[name]
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    labels = list(stats.categories) + ["(other)", "(unseen)", "(missing)"]
    unseen_at, missing_at = len(labels) - 2, len(labels) - 1
    entry = FeatureReport(
        type=FeatureType.CATEGORICAL.value,
        reference=Summary(count=n_ref, missing_rate=stats.missing_rate, n_categories=stats.n_categories),
        current=Summary(count=n_cur, missing_rate=_share(cur[missing_at], n_cur),
                        unseen_examples=sorted(acc.unseen[name])),
        histogram=Histogram(labels=labels, reference=ref.tolist(), current=cur.tolist()),
        quality=FeatureQuality(
            missing_rate_increase=_share(cur[missing_at], n_cur) - stats.missing_rate,
            unseen_share=_share(cur[unseen_at], n_cur),
        ),
        status=_status(n_ref, n_cur, th),
    )
    if entry.status != "tested":
        return entry
    chi2, p = chi2_from_counts(ref, cur)
    change = np.abs(cur / n_cur - ref / n_ref)
    worst = int(np.argmax(change))
    return replace(
        entry, test="chi2", statistic=chi2, p_value=p, psi=psi(ref, cur),
        max_share_change=float(change[worst]), max_share_change_category=labels[worst],
        severity=severity(float(change[worst]), th.share_warn, th.share_critical),
    )


def feature_report(stats: FeatureBaseline, acc: Accumulator, name: str, th: Thresholds) -> FeatureReport:
    if isinstance(stats, NumericBaseline):
        return numeric_feature(stats, acc, name, th)
    return categorical_feature(stats, acc, name, th)


# -------------------------------------------------------------- data quality


def quality_issues(name: str, entry: FeatureReport, acc: Accumulator, th: Thresholds) -> list[Issue]:
    """Warnings and failures for one feature: missing jumps, out of range, unseen, wrong types, absent."""
    found = acc.issues.get(name, {})
    entry.quality.wrong_type_share = _share(found.get("wrong_type", 0), acc.lines)
    entry.quality.absent_share = _share(found.get("absent", 0), acc.lines)
    warn_at = {
        "missing_rate_increase": th.missing_warn, "out_of_range_share": th.quality_warn,
        "unseen_share": th.quality_warn, "wrong_type_share": th.malformed_warn, "absent_share": th.malformed_warn,
    }
    issues = []
    for check, value in entry.quality.shares().items():
        if value >= th.quality_fail:
            issues.append(Issue(feature=name, check=check, value=value, severity="fail"))
        elif value >= warn_at[check]:
            issues.append(Issue(feature=name, check=check, value=value, severity="warn"))
    return issues


# ------------------------------------------------------------------- verdict


def _decide(entries: dict[str, FeatureReport], alpha: float) -> None:
    """Benjamini-Hochberg across the tested entries, then drift = significant and large enough."""
    tested = [n for n, e in entries.items() if e.status == "tested"]
    for name, adjusted in zip(tested, benjamini_hochberg([entries[n].p_value for n in tested])):
        entries[name].p_adjusted = adjusted
    for entry in entries.values():
        entry.significant = entry.p_adjusted is not UNSET and entry.p_adjusted < alpha
        entry.drift = entry.significant and entry.severity != "none"


def compare(baseline: Baseline, acc: Accumulator, thresholds: Thresholds | None = None) -> DriftReport:
    """The drift report body: status, dataset verdict, per-feature statistics and data quality."""
    th = thresholds or Thresholds()
    features = {name: feature_report(stats, acc, name, th) for name, stats in baseline.features.items()}
    _decide(features, th.alpha)
    issues = [i for name, entry in features.items() for i in quality_issues(name, entry, acc, th)]
    rejected_share = _share(acc.rejected, acc.lines)
    if rejected_share >= th.malformed_warn:  # malformed capture lines: a broken writer or client
        severity = "fail" if rejected_share >= th.quality_fail else "warn"
        issues.append(Issue(feature=None, check="rejected_share", value=rejected_share, severity=severity))
    if acc.unexpected:
        issues.append(Issue(feature=None, check="unexpected_columns", value=sorted(acc.unexpected), severity="warn"))
    prediction = None
    if baseline.prediction is not None:
        prediction = feature_report(baseline.prediction, acc, PREDICTION, th)
        _decide({PREDICTION: prediction}, th.alpha)  # one test: its adjusted p is its p
    drifted = [n for n, e in features.items() if e.drift]
    quality_failed = any(i.severity == "fail" for i in issues)
    enough = acc.rows >= th.min_rows
    dataset_drift = enough and (bool(drifted) or quality_failed)
    if acc.lines == 0:
        status = "no_data"
    elif not enough:
        status = "insufficient_data"
    else:
        status = "drift" if dataset_drift else "ok"
    if not enough:  # too few rows: report the numbers, flag nothing
        drifted = []
        for entry in features.values():
            entry.drift = False
    return DriftReport(
        status=status,
        dataset_drift=dataset_drift,
        drifted_features=drifted,
        drift_share=_share(len(drifted), len(features)),
        severity_counts={s: sum(1 for n in drifted if features[n].severity == s) for s in SEVERITIES[1:]},
        rows_checked=acc.rows,
        rows_rejected=acc.rejected,
        reject_reasons=dict(acc.reject_reasons),
        model_versions=dict(acc.versions),
        quality=DatasetQuality(
            failed=quality_failed,
            issues=issues,
            missing_columns=sorted({i.feature for i in issues if i.check == "absent_share" and i.value >= 1.0}),
            unexpected_columns=dict(acc.unexpected),
        ),
        features=features,
        prediction=prediction,
        prediction_drift=bool(enough and prediction is not None and prediction.drift),
        thresholds=asdict(th),
    )
