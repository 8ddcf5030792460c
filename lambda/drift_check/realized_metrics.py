"""Realized model metrics on labelled predictions, and their bootstrap confidence intervals.

Every metric takes a block of weight vectors over the rows (shape (resamples, rows)) and gives one value per
vector: one bootstrap resample is a vector of counts over the rows, so a resample costs a few numpy passes, not a
copy of the data and a scikit-learn call, and small windows are judged a block of resamples per pass (the Python
overhead per resample, not the arithmetic, is what costs at a thousand rows). With weights of one they equal
scikit-learn's metrics (the tests check).

The counts are integers, so what is a count (accuracy, F1, ROC AUC) is computed exactly, whatever the order of the
sums; what sums real numbers per row (Brier score, log loss, regression) is one dot product per weight vector, the
summation one resample at a time always had, so a seed gives the same intervals whatever the block size.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RESAMPLES = 200
SEED = 0
CONFIDENCE = 0.95
# A resample may leave a class out, which makes ROC AUC undefined; fewer defined resamples than this share
# give no interval rather than one from a biased subset.
MIN_DEFINED_SHARE = 0.8
EPS = np.finfo(np.float64).eps
# Weight cells per block of resamples (float64): 200 resamples of 1,000 rows go in one block, a million rows one
# resample at a time (a block saves the per-call overhead, which is nothing next to a million-row pass).
BLOCK_CELLS = 1 << 18



class Weights:
    """A block of weight vectors over the rows, each a whole number per row (a resample's counts, or ones): as
    integers for what counts (ROC AUC gathers them in score order, half the bytes of floats to move) and as
    floats for the dot products, converted once per block."""

    def __init__(self, counts: np.ndarray, total: int):
        self.counts = counts  # shape (vectors, rows), int32
        self.total = np.full(len(counts), total, dtype=np.int64)  # each vector's sum
        self._floats: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def floats(self) -> np.ndarray:
        if self._floats is None:
            self._floats = self.counts.astype(np.float64)
        return self._floats


Metric = Callable[[Weights], np.ndarray]  # the metric per weight vector, NaN where undefined


@dataclass
class Labelled:
    """The matched rows: true labels, predictions and (classifiers) probabilities in class order (NaN: none)."""

    y_true: np.ndarray  # class indices (classifiers) or floats (regression)
    predicted: np.ndarray
    proba: np.ndarray | None = None  # shape (rows, classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)


def _dots(w: Weights, x: np.ndarray) -> np.ndarray:
    """w @ x per weight vector, each a BLAS dot (a matrix product would sum in another order: not the same bits)."""
    return np.array([row @ x for row in w.floats])


def _shared(compute: Callable[[Weights], np.ndarray]) -> Callable[[Weights], np.ndarray]:
    """compute(w) once for the metrics that ask in turn with the same block of weights (intervals and values pass
    each block as a new object to every metric; holding it keeps its id from being reused)."""
    last: list = [None, None]

    def cached(w: Weights) -> np.ndarray:
        if last[0] is not w:
            last[:] = [w, compute(w)]
        return last[1]

    return cached


def _auc_parts(score: np.ndarray, positive: np.ndarray) -> Metric:
    """Weighted ROC AUC of one score, the sort and the tie groups prepared once.

    The area under the ROC curve's trapezoids is sum over thresholds (tied scores share one) of the negatives
    there times (the positives above + half the positives there), over positives x negatives: with integer
    weights (counts) every term is an integer, summed in int64, so the area is the exact ratio, correctly rounded
    (below 2**53 terms: some 10**8 rows), where the trapezoid rule over the cumulative rates was exact up to
    rounding (the last digit may differ). One gather of the int32 counts into score order a vector.
    """
    order = np.argsort(-score, kind="mergesort")
    s, pos = score[order], positive[order].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # tied scores share one threshold
    tied = len(starts) < len(s)
    del s
    if not tied:
        del starts

    def auc(w: Weights) -> np.ndarray:
        ws = np.take(w.counts, order, axis=1)
        wp = ws * pos
        if tied:
            wp, ws = np.add.reduceat(wp, starts, axis=1), np.add.reduceat(ws, starts, axis=1, dtype=np.int64)
            wn = ws - wp
            above = np.cumsum(wp, axis=1) - wp
            twice = 2 * np.einsum("ij,ij->i", wn, above) + np.einsum("ij,ij->i", wn, wp)
        else:  # one row per threshold, a positive or a negative: a negative's positives above are the running sum
            twice = 2 * np.einsum("ij,ij->i", ws - wp, np.cumsum(wp, axis=1))
        positives = wp.sum(axis=1)
        return _ratio(twice, 2 * positives * (w.total - positives))

    return auc


def classification(data: Labelled, n_classes: int) -> dict[str, Metric]:
    """accuracy, F1 (binary: of class 1; else macro over the classes present), ROC AUC, Brier score, log loss."""
    y, pred = data.y_true.astype(int, copy=False), data.predicted.astype(int, copy=False)
    metrics: dict[str, Metric] = {}
    if n_classes == 2:
        # Per vector the weight of true 1 and predicted 1, of true 1, of predicted 1: the whole confusion matrix.
        indicators = [((y == 1) & (pred == 1)).astype(np.float64), (y == 1).astype(np.float64),
                      (pred == 1).astype(np.float64)]
        counts = _shared(lambda w: [_dots(w, x) for x in indicators])

        def accuracy(w: Weights) -> np.ndarray:
            both, true1, pred1 = counts(w)
            return _ratio(w.total - true1 - pred1 + 2 * both, w.total)

        def f1(w: Weights) -> np.ndarray:
            both, true1, pred1 = counts(w)
            denominator = true1 + pred1  # 2tp + fp + fn
            return np.divide(2 * both, denominator, out=np.zeros(len(w)), where=denominator > 0)

        metrics |= {"accuracy": accuracy, "f1": f1}
    else:
        cell = y * n_classes + pred

        confusion = _shared(lambda w: np.array([np.bincount(cell, weights=row, minlength=n_classes**2)
                                                for row in w.floats]).reshape(len(w), n_classes, n_classes))

        def accuracy(w: Weights) -> np.ndarray:
            return _ratio(np.trace(confusion(w), axis1=1, axis2=2), w.total)

        def f1_macro(w: Weights) -> np.ndarray:
            table = confusion(w)
            tp = np.diagonal(table, axis1=1, axis2=2)
            denominator = table.sum(axis=2) + table.sum(axis=1)  # 2tp + fp + fn per class
            present = denominator > 0
            f1 = np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=present)
            return np.array([f[p].mean() if p.any() else np.nan for f, p in zip(f1, present, strict=True)])

        metrics |= {"accuracy": accuracy, "f1_macro": f1_macro}
    proba = data.proba
    if proba is None or np.isnan(proba).any():
        return metrics  # the probability metrics need every row's probabilities
    if n_classes == 2:
        metrics["roc_auc"] = _auc_parts(proba[:, 1], y == 1)
    else:
        per_class = [_auc_parts(proba[:, k], y == k) for k in range(n_classes)]

        def roc_auc_ovr(w: Weights) -> np.ndarray:
            each = np.array([auc(w) for auc in per_class]).T  # (vectors, classes)
            return np.array([np.mean(row) for row in each])

        metrics["roc_auc_ovr"] = roc_auc_ovr
    if n_classes == 2:  # sklearn's binary Brier score: the positive class's squared error, i.e. the row's sum / 2
        squared = ((proba[:, 0] - (y == 0)) ** 2 + (proba[:, 1] - (y == 1)) ** 2) / 2  # no (rows, 2) temporaries
    else:
        squared = ((proba - np.eye(n_classes)[y]) ** 2).sum(axis=1)
    metrics["brier"] = lambda w: _ratio(_dots(w, squared), w.total)
    true_share = np.take_along_axis(proba, y[:, None], axis=1)[:, 0] / proba.sum(axis=1)  # normalised rows' truth
    loss = -np.log(np.clip(true_share, EPS, 1.0))
    metrics["log_loss"] = lambda w: _ratio(_dots(w, loss), w.total)
    return metrics


def regression(data: Labelled) -> dict[str, Metric]:
    """RMSE, MAE and R² (undefined when every true value is the same)."""
    y, pred = data.y_true.astype(np.float64, copy=False), data.predicted.astype(np.float64, copy=False)
    err = y - pred
    squared, absolute = err**2, np.abs(err)

    def r2(w: Weights) -> np.ndarray:
        found = np.full(len(w), np.nan)
        for i, (row, n) in enumerate(zip(w.floats, w.total, strict=True)):
            mean = (row @ y) / n
            ss_tot = row @ (y - mean) ** 2
            if ss_tot > 0:
                found[i] = 1 - (row @ squared) / ss_tot
        return found

    return {"rmse": lambda w: np.sqrt(_ratio(_dots(w, squared), w.total)),
            "mae": lambda w: _ratio(_dots(w, absolute), w.total),
            "r2": r2}


def values(metrics: dict[str, Metric], rows: int) -> dict[str, float]:
    """Each metric on the rows as they are; undefined ones are left out."""
    ones = Weights(np.ones((1, rows), dtype=np.int32), rows)
    found = {name: float(metric(ones)[0]) for name, metric in metrics.items()}
    return {k: v for k, v in found.items() if np.isfinite(v)}


def intervals(metrics: dict[str, Metric], rows: int, *, resamples: int = RESAMPLES, seed: int = SEED,
              confidence: float = CONFIDENCE) -> dict[str, list[float]]:
    """Percentile bootstrap intervals: the same seed gives the same intervals.

    Resample i is the counts of `rows` draws of rng.integers, one call per resample as always (one call for a
    block would draw other numbers), so the resamples, and the intervals, are those of one resample at a time.
    """
    if rows < 2:
        return {}
    rng = np.random.default_rng(seed)
    draws = {name: np.empty(resamples) for name in metrics}
    block = max(1, min(resamples, BLOCK_CELLS // rows))
    counts = np.empty((block, rows), dtype=np.int32)
    for first in range(0, resamples, block):
        w = counts[:min(block, resamples - first)]
        for row in w:
            row[:] = np.bincount(rng.integers(0, rows, rows), minlength=rows)
        weights = Weights(w, rows)  # each resample is `rows` draws
        for name, metric in metrics.items():
            draws[name][first:first + len(w)] = metric(weights)
    tail = (1 - confidence) / 2 * 100
    found = {}
    for name, sample in draws.items():
        defined = sample[np.isfinite(sample)]
        if len(defined) >= MIN_DEFINED_SHARE * resamples:
            low, high = np.percentile(defined, [tail, 100 - tail])
            found[name] = [float(low), float(high)]
    return found
