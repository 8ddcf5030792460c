"""CBPE: on a well-calibrated model the estimate is close to the realized accuracy and ROC AUC; under concept
drift the realized figures fall and the estimate, which sees only probabilities, does not."""
from __future__ import annotations

import numpy as np
import pytest

from drift_check import realized_metrics as rm
from drift_check.performance_estimate import estimate, expected_roc_auc
from drift_check.realized_metrics import Labelled
from tests.drift_check.quality_helpers import calibrated_scores
from training.calibration import measure


def realized(score: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return rm.values(rm.classification(Labelled(y, (score >= 0.5).astype(int), np.c_[1 - score, score]), 2), len(y))


def test_estimate_is_close_to_realized_on_a_well_calibrated_model():
    score, y = calibrated_scores(5000, seed=1)
    found = estimate(np.c_[1 - score, score], (score >= 0.5).astype(int), None)
    truth = realized(score, y)
    assert found["accuracy"] == pytest.approx(truth["accuracy"], abs=0.02)
    assert found["roc_auc"] == pytest.approx(truth["roc_auc"], abs=0.02)


def test_the_hold_out_calibration_corrects_an_overconfident_model():
    rng = np.random.default_rng(2)
    hold_out, later = rng.random(3000), rng.random(5000)
    # The model says s; the label is positive with probability 0.5 + 0.4 (s - 0.5): it is overconfident.
    def truth_of(s):
        return 0.5 + 0.4 * (s - 0.5)

    cal = measure("binary", ["0", "1"], np.c_[1 - hold_out, hold_out],
                  (rng.random(3000) < truth_of(hold_out)).astype(int).astype(str))
    y = (rng.random(5000) < truth_of(later)).astype(int)
    proba, predicted = np.c_[1 - later, later], (later >= 0.5).astype(int)
    truth = realized(later, y)
    raw, calibrated = estimate(proba, predicted, None), estimate(proba, predicted, cal)
    assert abs(raw["accuracy"] - truth["accuracy"]) > 0.05  # uncalibrated: off
    assert calibrated["accuracy"] == pytest.approx(truth["accuracy"], abs=0.03)
    assert calibrated["roc_auc"] == pytest.approx(truth["roc_auc"], abs=0.03)


def test_concept_drift_lowers_realized_but_not_the_estimate():
    score, _ = calibrated_scores(5000, seed=3)
    flipped = (np.random.default_rng(4).random(5000) < 0.5).astype(int)  # labels no longer follow the features
    found = estimate(np.c_[1 - score, score], (score >= 0.5).astype(int), None)
    truth = realized(score, flipped)
    assert truth["accuracy"] < 0.55 and found["accuracy"] > 0.7


def test_multiclass_estimates_accuracy_and_one_vs_rest_roc_auc():
    rng = np.random.default_rng(5)
    proba = rng.dirichlet([2, 2, 2], size=4000)
    y = np.array([rng.choice(3, p=p) for p in proba])
    found = estimate(proba, proba.argmax(axis=1), None)
    truth = rm.values(rm.classification(Labelled(y, proba.argmax(axis=1), proba), 3), len(y))
    assert found.keys() == {"accuracy", "roc_auc_ovr"}
    assert found["accuracy"] == pytest.approx(truth["accuracy"], abs=0.02)
    assert found["roc_auc_ovr"] == pytest.approx(truth["roc_auc_ovr"], abs=0.02)


def test_multiclass_top_class_calibration_moves_the_one_vs_rest_estimate_towards_the_truth():
    rng = np.random.default_rng(6)
    # The model is overconfident: the true distribution is halfway between its own and uniform.
    def outcome(p):
        return np.array([rng.choice(3, p=(row + 1 / 3) / 2) for row in p])

    hold_out, later = rng.dirichlet([1, 1, 1], size=3000), rng.dirichlet([1, 1, 1], size=4000)
    cal = measure("multiclass", ["a", "b", "c"], hold_out, np.array(["a", "b", "c"])[outcome(hold_out)])
    y = outcome(later)
    truth = rm.values(rm.classification(Labelled(y, later.argmax(axis=1), later), 3), len(y))
    raw, calibrated = estimate(later, later.argmax(axis=1), None), estimate(later, later.argmax(axis=1), cal)
    assert abs(raw["accuracy"] - truth["accuracy"]) > 0.05
    assert calibrated["accuracy"] == pytest.approx(truth["accuracy"], abs=0.03)
    # Only the top class is calibrated: the others keep the model's proportions, so the AUC is corrected in part.
    # Here: raw 0.80, calibrated 0.70, realized 0.65.
    assert abs(calibrated["roc_auc_ovr"] - truth["roc_auc_ovr"]) < abs(raw["roc_auc_ovr"] - truth["roc_auc_ovr"]) / 2


def test_expected_auc_is_undefined_when_every_row_is_certain_of_one_class():
    assert expected_roc_auc(np.array([0.2, 0.4]), np.array([1.0, 1.0])) is None
    assert estimate(np.empty((0, 2)), np.empty(0, dtype=int), None) == {}
