"""Measure a classifier's probability calibration on the hold-out rows (stored in the artifact's metadata)."""
from __future__ import annotations

import numpy as np

from contracts.calibration import Calibration
from contracts.schema import Task

# Isotonic regression has one knot per block of its fit; more than this are thinned evenly, which keeps
# metadata.json small on a large hold-out and moves the curve by less than a block's width.
MAX_KNOTS = 100
MIN_ROWS = 2


def score_and_outcome(task: Task, classes: list[str], proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score, 0/1 outcome) per row: P(classes[1]) and whether it is, or the top probability and whether it was right."""
    y = np.asarray(y).astype(str)
    if task == "binary":
        return proba[:, 1], (y == classes[1]).astype(np.float64)
    top = proba.argmax(axis=1)
    return proba[np.arange(len(top)), top], (np.asarray(classes)[top] == y).astype(np.float64)


def measure(task: Task, classes: list[str] | None, proba: np.ndarray, y: np.ndarray) -> Calibration | None:
    """Isotonic reliability of the hold-out probabilities; None for regression or too few rows."""
    from sklearn.isotonic import IsotonicRegression

    if task == "regression" or not classes or len(y) < MIN_ROWS:
        return None
    scores, outcomes = score_and_outcome(task, classes, proba, y)
    fit = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, outcomes)
    knots_x, knots_y = fit.X_thresholds_, fit.y_thresholds_
    if len(knots_x) > MAX_KNOTS:
        keep = np.unique(np.linspace(0, len(knots_x) - 1, MAX_KNOTS).round().astype(int))
        knots_x, knots_y = knots_x[keep], knots_y[keep]
    return Calibration(kind="positive_class" if task == "binary" else "top_class", rows=len(y),
                       scores=[round(float(v), 6) for v in knots_x], outcomes=[round(float(v), 6) for v in knots_y])
