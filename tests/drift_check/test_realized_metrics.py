"""Realized metrics equal scikit-learn's; bootstrap intervals are seeded, hold the value and have the right width."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from drift_check import realized_metrics as rm
from drift_check.realized_metrics import Labelled


def binary_data(n: int = 400, seed: int = 3) -> Labelled:
    rng = np.random.default_rng(seed)
    p1 = np.round(rng.random(n), 2)  # rounded: ties exercise the AUC's tie groups
    y = (rng.random(n) < p1).astype(int)
    return Labelled(y, (p1 >= 0.5).astype(int), np.c_[1 - p1, p1])


def test_binary_metrics_equal_scikit_learn():
    d = binary_data()
    found = rm.values(rm.classification(d, 2), len(d.y_true))
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(d.y_true, d.predicted))
    assert found["f1"] == pytest.approx(skm.f1_score(d.y_true, d.predicted))
    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(d.y_true, d.proba[:, 1]))
    assert found["brier"] == pytest.approx(skm.brier_score_loss(d.y_true, d.proba[:, 1]))
    assert found["log_loss"] == pytest.approx(skm.log_loss(d.y_true, d.proba, labels=[0, 1]))


def test_multiclass_metrics_equal_scikit_learn():
    rng = np.random.default_rng(4)
    proba = rng.dirichlet([1, 1, 1], size=300)
    y = np.array([rng.choice(3, p=p) for p in proba])
    d = Labelled(y, proba.argmax(axis=1), proba)
    found = rm.values(rm.classification(d, 3), len(y))
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(y, d.predicted))
    assert found["f1_macro"] == pytest.approx(skm.f1_score(y, d.predicted, average="macro"))
    assert found["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert found["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert found["brier"] == pytest.approx(np.mean(((proba - np.eye(3)[y]) ** 2).sum(axis=1)))


def test_macro_f1_counts_only_classes_present_like_scikit_learn():
    y, pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])  # class 2 neither true nor predicted
    found = rm.values(rm.classification(Labelled(y, pred), 3), 4)
    assert found["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert "roc_auc_ovr" not in found  # no probabilities given


def test_regression_metrics_equal_scikit_learn():
    rng = np.random.default_rng(5)
    y = rng.normal(100, 10, 200)
    pred = y + rng.normal(0, 3, 200)
    found = rm.values(rm.regression(Labelled(y, pred)), 200)
    assert found["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert found["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert found["r2"] == pytest.approx(skm.r2_score(y, pred))


def test_undefined_metrics_are_left_out():
    d = Labelled(np.array([1, 1, 1]), np.array([1, 0, 1]), np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]]))
    found = rm.values(rm.classification(d, 2), 3)
    assert "roc_auc" not in found and found["accuracy"] == pytest.approx(2 / 3)
    assert rm.values(rm.regression(Labelled(np.ones(3), np.ones(3))), 3).keys() == {"rmse", "mae"}


def test_intervals_hold_the_value_are_seeded_and_as_wide_as_the_normal_approximation():
    d = binary_data(n=1000)
    functions = rm.classification(d, 2)
    value = rm.values(functions, 1000)
    first = rm.intervals(functions, 1000)
    assert first == rm.intervals(functions, 1000)  # same seed, same intervals
    assert first != rm.intervals(functions, 1000, seed=1)
    for name, (low, high) in first.items():
        assert low <= value[name] <= high, name
    acc = value["accuracy"]
    normal = 2 * 1.96 * np.sqrt(acc * (1 - acc) / 1000)
    assert first["accuracy"][1] - first["accuracy"][0] == pytest.approx(normal, rel=0.25)


def test_intervals_need_two_rows_and_mostly_defined_resamples():
    d = Labelled(np.array([1] * 49 + [0]), np.ones(50, dtype=int), np.tile([0.3, 0.7], (50, 1)))
    found = rm.intervals(rm.classification(d, 2), 50)
    assert "accuracy" in found and "roc_auc" not in found  # one negative: most resamples have none
    assert rm.intervals(rm.classification(d, 2), 1) == {}
