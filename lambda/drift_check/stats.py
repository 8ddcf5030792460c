"""Mergeable drift statistics: the baseline training writes and the counts the drift check adds up.

Every feature gets fixed bins from its reference data; current data is only ever counted into
those bins, so memory is features x bins, not rows, and partial counts merge exactly. The baseline's
types are contracts.baseline's; the counts stay numpy arrays.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from contracts.baseline import BASELINE_FORMAT, Baseline, CategoricalBaseline, FeatureBaseline, NumericBaseline
from contracts.schema import MISSING_CATEGORY, FeatureSchema, FeatureType

ACCUMULATOR_FORMAT = "drift-accumulator/1"
PREDICTION = "__prediction__"  # the prediction is binned like a feature under this reserved key

FINE_BINS = 100  # quantile bins for KS and Wasserstein
PSI_BINS = 10  # deciles for PSI, made by grouping fine bins
MAX_DISCRETE = 20  # at most this many distinct values: one bin per value
TOP_CATEGORIES = 50  # categories tracked one by one; the rest share "other"
MAX_KNOWN_CATEGORIES = 10_000  # beyond this the baseline cannot tell unseen categories apart
MAX_EXAMPLES = 20  # unseen categories / unexpected columns named in a report


def _next_up(value: float) -> float:
    return float(np.nextafter(value, math.inf))


# ---------------------------------------------------------------- numeric bins


def numeric_edges(values: np.ndarray) -> tuple[list[float], bool]:
    """Bin edges for finite reference values, and whether the feature is treated as discrete.

    Bins are [e_i, e_i+1) with open-ended outer bins, so bin 0 is "below the training minimum" and
    the last bin "above the maximum". A value with a point mass gets a bin of its own
    ([v, nextafter(v))), which is what keeps discrete features (counts, flags) from collapsing.
    """
    if values.size == 0:
        return [], False
    distinct = np.unique(values)
    if distinct.size <= MAX_DISCRETE:
        edges = sorted({float(v) for v in distinct} | {_next_up(v) for v in distinct})
        return edges, True
    qs = np.quantile(values, np.linspace(0.0, 1.0, FINE_BINS + 1))
    uniq, repeats = np.unique(qs, return_counts=True)
    point_masses = {_next_up(v) for v in uniq[repeats > 1]}
    edges = {float(v) for v in uniq} | point_masses | {_next_up(float(values.max()))}
    return sorted(edges), False


def psi_groups(counts: Sequence[int]) -> list[int]:
    """Start indices grouping fine bins into about PSI_BINS equal-share bins for PSI.

    Bins the reference never saw (out of range, gaps between discrete values) stay groups of
    their own, so current values landing there move the PSI.
    """
    total = float(sum(counts)) or 1.0
    starts: list[int] = []
    share = 0.0
    open_group = False
    for i, c in enumerate(counts):
        if c == 0:
            starts.append(i)
            open_group = False
            continue
        if not open_group:
            starts.append(i)
            share, open_group = 0.0, True
        share += c / total
        if share >= 1.0 / PSI_BINS - 1e-9:
            open_group = False
    return starts


def sorted_counts(edges: np.ndarray, finite_sorted: np.ndarray) -> np.ndarray:
    """Counts per bin ([edges[j-1], edges[j]) is bin j) of sorted finite values.

    Searching the edges in the sorted values is several times faster than each value in the edges.
    """
    below = np.searchsorted(finite_sorted, edges, side="left")
    counts = np.empty(below.size + 1, dtype=np.int64)  # np.diff(prepend=, append=) costs more than the search
    counts[:-1] = below
    counts[-1] = finite_sorted.size
    counts[1:] -= below
    return counts


def bin_numeric(edges: Sequence[float] | np.ndarray, values: np.ndarray) -> tuple[np.ndarray, int]:
    """Counts per bin of the finite values, and the number of missing (NaN) values."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.sort(values[~np.isnan(values)])
    return sorted_counts(np.asarray(edges, dtype=np.float64), finite), int(values.size - finite.size)


def _rate(missing: int, n: int) -> float:
    return missing / n if n else 0.0


def numeric_baseline(values: np.ndarray) -> NumericBaseline:
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    edges, discrete = numeric_edges(finite)
    counts, missing = bin_numeric(edges, values)
    n = int(values.size)
    return NumericBaseline(
        count=n, missing=missing, missing_rate=_rate(missing, n),
        min=float(finite.min()) if finite.size else None,
        max=float(finite.max()) if finite.size else None,
        mean=float(finite.mean()) if finite.size else None,
        std=float(finite.std()) if finite.size else None,
        integer=bool(finite.size and np.all(finite == np.round(finite))),
        discrete=discrete,
        edges=edges,
        counts=counts.tolist(),
        psi_groups=psi_groups(counts.tolist()),
    )


# ------------------------------------------------------------ categorical bins
# Categorical bins: one per top category, then "other" (known, not top), "unseen", "missing".


def categorical_baseline(values: np.ndarray, known: Iterable[str] | None = None) -> CategoricalBaseline:
    values = np.asarray(values, dtype=object)
    freq = Counter(values.tolist())
    missing = freq.pop(MISSING_CATEGORY, 0)
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ranked[:TOP_CATEGORIES]
    all_known = sorted(set(freq) | set(known or ()))
    n = int(values.size)
    return CategoricalBaseline(
        count=n, missing=missing, missing_rate=_rate(missing, n),
        categories=[k for k, _ in top],
        counts=[int(v) for _, v in top] + [int(sum(v for _, v in ranked[TOP_CATEGORIES:])), 0, int(missing)],
        n_categories=len(all_known),
        # Without the full list an unseen category is indistinguishable from a rare known one.
        known=all_known if len(all_known) <= MAX_KNOWN_CATEGORIES else None,
    )


class _CategoryIndex:
    """Maps category strings to bin indices of one categorical baseline."""

    def __init__(self, stats: CategoricalBaseline):
        top = stats.categories
        self.other, self.unseen, self.missing = len(top), len(top) + 1, len(top) + 2
        known = stats.known
        lookup: dict[Any, int] = {}
        if known is not None:
            lookup.update(dict.fromkeys(known, self.other))
        lookup.update({c: i for i, c in enumerate(top)})
        lookup[MISSING_CATEGORY] = self.missing
        lookup[None] = self.missing
        self.lookup = lookup
        # An unknown value is "unseen" only when the baseline lists every known category.
        self.default = self.unseen if known is not None else self.other
        self.n_bins = len(top) + 3

    def count(self, values: Iterable[Any]) -> tuple[np.ndarray, list[str]]:
        """Counts per bin, and the distinct unseen values (Counter runs in C; few distinct values)."""
        counts = np.zeros(self.n_bins, dtype=np.int64)
        unseen = []
        get, default = self.lookup.get, self.default
        for value, n in Counter(values).items():
            i = get(value, default)
            counts[i] += n
            if i == self.unseen:
                unseen.append(str(value))
        return counts, unseen


def bin_categorical(stats: CategoricalBaseline, values: Iterable[Any]) -> np.ndarray:
    return _CategoryIndex(stats).count(values)[0]


# -------------------------------------------------------------------- baseline


def build_baseline(
    schema: FeatureSchema,
    columns: dict[str, np.ndarray],
    *,
    task: str,
    classes: list[str] | None,
    predictions: np.ndarray | None,
) -> Baseline:
    """The baseline.json body: per-feature reference bins and statistics, and the predictions'."""
    features: dict[str, FeatureBaseline] = {}
    for f in schema.features:
        if f.name not in columns:
            raise KeyError(f"build_baseline: column {f.name!r} of the schema is missing from the data")
        if f.type is FeatureType.NUMERIC:
            features[f.name] = numeric_baseline(columns[f.name])
        else:
            features[f.name] = categorical_baseline(columns[f.name], f.categories)
    prediction: FeatureBaseline | None = None
    if predictions is not None:
        if task == "regression":
            prediction = numeric_baseline(np.asarray(predictions, dtype=np.float64))
        else:
            labels = np.asarray([str(p) for p in predictions], dtype=object)
            prediction = categorical_baseline(labels, classes)
    rows = len(next(iter(columns.values()))) if columns else 0
    return Baseline(format=BASELINE_FORMAT, task=task, classes=list(classes) if classes is not None else None,
                    rows=int(rows), features=features, prediction=prediction)


# ----------------------------------------------------------------- accumulator


class Accumulator:
    """Current-data counts in a baseline's bins: update batch by batch, merge, checkpoint as JSON."""

    def __init__(self, baseline: Baseline):
        self.baseline = baseline
        self.rows = 0  # rows counted into the bins
        self.rejected = 0  # rows skipped as malformed
        self.reject_reasons: Counter[str] = Counter()
        self.unexpected: Counter[str] = Counter()  # columns the baseline does not know
        self.versions: Counter[str] = Counter()  # rows by the model version that served them
        self.issues: dict[str, Counter[str]] = {}  # feature -> {"wrong_type": n, "absent": n}
        self.counts: dict[str, np.ndarray] = {}
        self.missing: dict[str, int] = {}  # numeric NaNs (categorical missing is a bin)
        self.moments: dict[str, list[float]] = {}  # numeric: [sum, sum of squares, min, max]
        self.unseen: dict[str, set[str]] = {}
        self._index: dict[str, _CategoryIndex] = {}
        self._edges: dict[str, np.ndarray] = {}
        for name, stats in self._binned():
            if isinstance(stats, NumericBaseline):
                self.counts[name] = np.zeros(len(stats.edges) + 1, dtype=np.int64)
                self._edges[name] = np.asarray(stats.edges, dtype=np.float64)
                self.missing[name] = 0
                self.moments[name] = [0.0, 0.0, math.inf, -math.inf]
            else:
                self._index[name] = _CategoryIndex(stats)
                self.counts[name] = np.zeros(self._index[name].n_bins, dtype=np.int64)
                self.unseen[name] = set()

    def _binned(self) -> list[tuple[str, FeatureBaseline]]:
        items = list(self.baseline.features.items())
        if self.baseline.prediction is not None:
            items.append((PREDICTION, self.baseline.prediction))
        return items

    @property
    def lines(self) -> int:
        return self.rows + self.rejected

    def update(self, columns: Mapping[str, Any], n_rows: int) -> None:
        """Count `n_rows` valid rows; columns absent from `columns` are not counted (see count_issue)."""
        self.rows += n_rows
        for name, values in columns.items():
            if name not in self.counts:
                continue
            if name in self.moments:
                self._update_numeric(name, np.asarray(values, dtype=np.float64))
            else:
                self._update_categorical(name, values)

    def _update_numeric(self, name: str, values: np.ndarray) -> None:
        total = float(values.sum())
        finite = values[~np.isnan(values)] if math.isnan(total) else values
        if finite is not values:
            total = float(finite.sum())
        finite = np.sort(finite)
        self.counts[name] += sorted_counts(self._edges[name], finite)
        self.missing[name] += values.size - finite.size
        if finite.size:
            m = self.moments[name]
            m[0] += total
            m[1] += float(np.dot(finite, finite))
            m[2] = min(m[2], float(finite[0]))
            m[3] = max(m[3], float(finite[-1]))

    def _update_categorical(self, name: str, values: Iterable[Any]) -> None:
        counts, unseen = self._index[name].count(values)
        self.counts[name] += counts
        seen = self.unseen[name]
        for value in sorted(unseen)[: max(0, MAX_EXAMPLES - len(seen))]:
            seen.add(value)

    def baseline_stats(self, name: str) -> FeatureBaseline | None:
        return self.baseline.prediction if name == PREDICTION else self.baseline.features[name]

    def count_rejects(self, reasons: Mapping[str, int]) -> None:
        """Rows skipped as malformed, by reason (bad_json, not_an_object, wrong_type, ...)."""
        for reason, n in reasons.items():
            self.reject_reasons[reason] += int(n)
            self.rejected += int(n)

    def count_issue(self, feature: str, kind: str, n: int) -> None:
        """A per-feature data-quality count that is not a value (wrong_type, absent)."""
        if n:
            self.issues.setdefault(feature, Counter())[kind] += int(n)

    def count_unexpected(self, names: Iterable[str], n: int = 1) -> None:
        for name in names:
            if name in self.unexpected or len(self.unexpected) < MAX_EXAMPLES:
                self.unexpected[name] += n
            else:
                self.unexpected["…"] += n  # cap the names kept, still count the rows

    def merge(self, other: Accumulator) -> Accumulator:
        """Add another accumulator over the same baseline into this one; counts add up exactly."""
        if set(other.counts) != set(self.counts) or any(
            other.counts[k].shape != v.shape for k, v in self.counts.items()
        ):
            raise ValueError("cannot merge accumulators built on different baselines")
        self.rows += other.rows
        self.rejected += other.rejected
        self.reject_reasons.update(other.reject_reasons)
        self.versions.update(other.versions)
        for name, n in other.unexpected.items():
            self.count_unexpected([name], n)
        for name, counter in other.issues.items():
            self.issues.setdefault(name, Counter()).update(counter)
        for name in self.counts:
            self.counts[name] += other.counts[name]
        for name, m in self.moments.items():
            o = other.moments[name]
            self.moments[name] = [m[0] + o[0], m[1] + o[1], min(m[2], o[2]), max(m[3], o[3])]
            self.missing[name] += other.missing[name]
        for name, seen in self.unseen.items():
            seen.update(sorted(other.unseen[name])[: max(0, MAX_EXAMPLES - len(seen))])
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (for a checkpoint); from_dict with the same baseline restores it."""
        features: dict[str, Any] = {}
        for name, counts in self.counts.items():
            entry: dict[str, Any] = {"counts": counts.tolist()}
            if name in self.moments:
                s, ss, lo, hi = self.moments[name]
                entry.update(missing=self.missing[name], sum=s, sumsq=ss,
                             min=lo if math.isfinite(lo) else None, max=hi if math.isfinite(hi) else None)
            else:
                entry["unseen"] = sorted(self.unseen[name])
            features[name] = entry
        return {
            "format": ACCUMULATOR_FORMAT,
            "rows": self.rows,
            "rejected": self.rejected,
            "reject_reasons": dict(self.reject_reasons),
            "unexpected": dict(self.unexpected),
            "versions": dict(self.versions),
            "issues": {k: dict(v) for k, v in self.issues.items()},
            "features": features,
        }

    @classmethod
    def from_dict(cls, baseline: Baseline, state: Mapping[str, Any]) -> Accumulator:
        """Restore a checkpointed accumulator; ValueError when it was built on another baseline."""
        if state.get("format") != ACCUMULATOR_FORMAT:
            raise ValueError(f"accumulator state has format {state.get('format')!r}, expected {ACCUMULATOR_FORMAT!r}")
        acc = cls(baseline)
        if set(state["features"]) != set(acc.counts):
            raise ValueError("accumulator state names other features than the baseline")
        for name, entry in state["features"].items():
            counts = np.asarray(entry["counts"], dtype=np.int64)
            if counts.shape != acc.counts[name].shape:
                raise ValueError(f"accumulator state for {name!r} has {counts.size} bins, the baseline {acc.counts[name].size}")
            acc.counts[name] = counts
            if name in acc.moments:
                acc.missing[name] = int(entry["missing"])
                lo, hi = entry["min"], entry["max"]
                acc.moments[name] = [float(entry["sum"]), float(entry["sumsq"]),
                                     math.inf if lo is None else float(lo), -math.inf if hi is None else float(hi)]
            else:
                acc.unseen[name] = set(entry["unseen"])
        acc.rows, acc.rejected = int(state["rows"]), int(state["rejected"])
        acc.reject_reasons = Counter({k: int(v) for k, v in state["reject_reasons"].items()})
        acc.unexpected = Counter({k: int(v) for k, v in state["unexpected"].items()})
        acc.versions = Counter({k: int(v) for k, v in state["versions"].items()})
        acc.issues = {k: Counter({kk: int(vv) for kk, vv in v.items()}) for k, v in state["issues"].items()}
        return acc
