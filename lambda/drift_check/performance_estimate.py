"""Confidence-based performance estimation (CBPE): a classifier's expected accuracy and ROC AUC before labels
arrive, from the calibrated probabilities of its captured predictions.

A calibrated probability is the chance the label turns out one way, so each prediction is an expected
fraction of a right answer (accuracy) and of a positive (binary ROC AUC: at each threshold of the model's
score the expected true and false positives, as NannyML's CBPE does). For multiclass models the calibration
is of the top class; the rest of each row's probability is shared among the other classes as the model
shares it, and the one-vs-rest ROC AUC of each class is estimated as the binary one (macro average). The estimate holds while the link
between features and labels is the one training saw: it follows covariate shift, not concept drift.
"""
from __future__ import annotations

import numpy as np

from contracts.calibration import Calibration


def calibrated(proba: np.ndarray, calibration: Calibration | None, binary: bool) -> np.ndarray:
    """Per row: P(class 1) for binary, P(the top class is right) otherwise; raw probabilities without a calibration."""
    score = proba[:, 1] if binary else proba.max(axis=1)
    return calibration.apply(score) if calibration is not None else score


def expected_roc_auc(score: np.ndarray, p_positive: np.ndarray) -> float | None:
    """Expected ROC AUC: thresholds over the model's score, each row counting p as a positive and 1 - p as a negative."""
    order = np.argsort(-score, kind="mergesort")
    s, p = score[order], p_positive[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # tied scores share one threshold
    tp = np.r_[0.0, np.cumsum(np.add.reduceat(p, starts))]
    fp = np.r_[0.0, np.cumsum(np.add.reduceat(1 - p, starts))]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return None
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def class_probabilities(proba: np.ndarray, top_right: np.ndarray) -> np.ndarray:
    """Each row's distribution over the classes with its top class at the calibrated chance of being right and
    the rest shared in the model's own proportions."""
    rows = np.arange(len(proba))
    top = proba.argmax(axis=1)
    rest = 1.0 - proba[rows, top]
    share = np.divide(proba, rest[:, None], out=np.zeros_like(proba), where=rest[:, None] > 0)
    q = share * (1.0 - top_right)[:, None]
    q[rows, top] = top_right
    return q


def expected_roc_auc_ovr(proba: np.ndarray, q: np.ndarray) -> float | None:
    """Macro average of each class's expected one-vs-rest ROC AUC (classes never expected are left out)."""
    per_class = [expected_roc_auc(proba[:, k], q[:, k]) for k in range(proba.shape[1])]
    defined = [auc for auc in per_class if auc is not None]
    return float(np.mean(defined)) if defined else None


def estimate(proba: np.ndarray, predicted: np.ndarray, calibration: Calibration | None) -> dict[str, float]:
    """Expected accuracy and ROC AUC (one-vs-rest for multiclass) of predictions whose probabilities are the rows
    of `proba`.

    predicted holds class indices; rows with a missing probability must be left out by the caller.
    """
    if len(proba) == 0:
        return {}
    binary = proba.shape[1] == 2
    p = calibrated(proba, calibration, binary)
    if not binary:
        found = {"accuracy": float(p.mean())}
        auc = expected_roc_auc_ovr(proba, class_probabilities(proba, p))
        if auc is not None:
            found["roc_auc_ovr"] = auc
        return found
    right = np.where(predicted == 1, p, 1 - p)
    found = {"accuracy": float(right.mean())}
    auc = expected_roc_auc(proba[:, 1], p)
    if auc is not None:
        found["roc_auc"] = auc
    return found

