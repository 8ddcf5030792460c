"""Realized model metrics on labelled predictions, and their bootstrap confidence intervals.

Every metric takes per-row weights, so one bootstrap resample is a vector of counts over the rows: the
rows are sorted once (ROC AUC) and each of the bounded resamples costs a few numpy passes, not a copy of
the data and a scikit-learn call. With weights of one they equal scikit-learn's metrics (the tests check).
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

Metric = Callable[[np.ndarray], float]  # weights -> value (NaN when undefined)


@dataclass
class Labelled:
    """The matched rows: true labels, predictions and (classifiers) probabilities in class order (NaN: none)."""

    y_true: np.ndarray  # class indices (classifiers) or floats (regression)
    predicted: np.ndarray
    proba: np.ndarray | None = None  # shape (rows, classes)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def _auc_parts(score: np.ndarray, positive: np.ndarray) -> Callable[[np.ndarray], float]:
    """Weighted ROC AUC of one score, the sort and the tie groups prepared once."""
    order = np.argsort(-score, kind="mergesort")
    s, pos = score[order], positive[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # tied scores share one threshold

    def auc(w: np.ndarray) -> float:
        wp = w[order] * pos
        wn = w[order] - wp
        tp = np.r_[0.0, np.cumsum(np.add.reduceat(wp, starts))]
        fp = np.r_[0.0, np.cumsum(np.add.reduceat(wn, starts))]
        if tp[-1] <= 0 or fp[-1] <= 0:
            return float("nan")
        return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))

    return auc


def classification(data: Labelled, n_classes: int) -> dict[str, Metric]:
    """accuracy, F1 (binary: of class 1; else macro over the classes present), ROC AUC, Brier score, log loss."""
    y, pred = data.y_true.astype(int), data.predicted.astype(int)
    correct = (y == pred).astype(np.float64)
    metrics: dict[str, Metric] = {"accuracy": lambda w: _ratio(w @ correct, w.sum())}
    one_hot_true = np.eye(n_classes)[y]
    one_hot_pred = np.eye(n_classes)[pred]

    def f1_per_class(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tp = w @ (one_hot_true * one_hot_pred)
        true_n, pred_n = w @ one_hot_true, w @ one_hot_pred
        denominator = true_n + pred_n  # 2tp + fp + fn
        return np.divide(2 * tp, denominator, out=np.zeros(n_classes), where=denominator > 0), denominator > 0

    if n_classes == 2:
        metrics["f1"] = lambda w: float(f1_per_class(w)[0][1])
    else:
        def f1_macro(w: np.ndarray) -> float:
            f1, present = f1_per_class(w)
            return float(f1[present].mean()) if present.any() else float("nan")
        metrics["f1_macro"] = f1_macro
    proba = data.proba
    if proba is None or np.isnan(proba).any():
        return metrics  # the probability metrics need every row's probabilities
    if n_classes == 2:
        metrics["roc_auc"] = _auc_parts(proba[:, 1], y == 1)
    else:
        per_class = [_auc_parts(proba[:, k], y == k) for k in range(n_classes)]
        metrics["roc_auc_ovr"] = lambda w: float(np.mean([auc(w) for auc in per_class]))
    squared = ((proba - one_hot_true) ** 2).sum(axis=1)
    if n_classes == 2:
        squared = squared / 2  # scikit-learn's binary Brier score: the positive class's squared error only
    metrics["brier"] = lambda w: _ratio(w @ squared, w.sum())
    normalised = proba / proba.sum(axis=1, keepdims=True)
    loss = -np.log(np.clip(normalised[np.arange(len(y)), y], EPS, 1.0))
    metrics["log_loss"] = lambda w: _ratio(w @ loss, w.sum())
    return metrics


def regression(data: Labelled) -> dict[str, Metric]:
    """RMSE, MAE and R² (undefined when every true value is the same)."""
    y, pred = data.y_true.astype(np.float64), data.predicted.astype(np.float64)
    err = y - pred

    def r2(w: np.ndarray) -> float:
        total = w.sum()
        mean = (w @ y) / total
        ss_tot = w @ (y - mean) ** 2
        return float(1 - (w @ err**2) / ss_tot) if ss_tot > 0 else float("nan")

    return {"rmse": lambda w: float(np.sqrt(_ratio(w @ err**2, w.sum()))),
            "mae": lambda w: _ratio(w @ np.abs(err), w.sum()),
            "r2": r2}


def values(metrics: dict[str, Metric], rows: int) -> dict[str, float]:
    """Each metric on the rows as they are; undefined ones are left out."""
    ones = np.ones(rows)
    found = {name: float(metric(ones)) for name, metric in metrics.items()}
    return {k: v for k, v in found.items() if np.isfinite(v)}


def intervals(metrics: dict[str, Metric], rows: int, *, resamples: int = RESAMPLES, seed: int = SEED,
              confidence: float = CONFIDENCE) -> dict[str, list[float]]:
    """Percentile bootstrap intervals: the same seed gives the same intervals."""
    if rows < 2:
        return {}
    rng = np.random.default_rng(seed)
    draws = {name: np.empty(resamples) for name in metrics}
    for i in range(resamples):
        w = np.bincount(rng.integers(0, rows, rows), minlength=rows).astype(np.float64)
        for name, metric in metrics.items():
            draws[name][i] = metric(w)
    tail = (1 - confidence) / 2 * 100
    found = {}
    for name, sample in draws.items():
        defined = sample[np.isfinite(sample)]
        if len(defined) >= MIN_DEFINED_SHARE * resamples:
            low, high = np.percentile(defined, [tail, 100 - tail])
            found[name] = [float(low), float(high)]
    return found
