"""Training measures the hold-out's probability calibration and stores it; artifacts from before it still load."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from contracts import artifact
from training.calibration import MAX_KNOTS, measure


def test_binary_calibration_maps_scores_to_the_observed_frequency():
    rng = np.random.default_rng(0)
    score = rng.random(4000)
    y = np.where(rng.random(4000) < score**2, "yes", "no")  # overconfident: the truth is score squared
    cal = measure("binary", ["no", "yes"], np.c_[1 - score, score], y)
    assert cal.kind == "positive_class" and cal.rows == 4000
    assert cal.scores == sorted(cal.scores) and len(cal.scores) <= MAX_KNOTS
    assert np.all(np.diff(cal.outcomes) >= 0) and min(cal.outcomes) >= 0 and max(cal.outcomes) <= 1
    assert cal.apply(np.array([0.5, 0.9])) == pytest.approx([0.25, 0.81], abs=0.07)


def test_multiclass_calibration_is_of_the_top_class_being_right():
    proba = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    cal = measure("multiclass", ["a", "b", "c"], proba, np.array(["a", "b", "b", "c"]))
    assert cal.kind == "top_class"
    assert cal.apply(np.array([0.9]))[0] == 1.0  # the 0.9 row was right


def test_no_calibration_for_regression_or_too_few_rows():
    assert measure("regression", None, np.empty((3, 0)), np.zeros(3)) is None
    assert measure("binary", ["no", "yes"], np.array([[0.4, 0.6]]), np.array(["yes"])) is None


def test_trained_classifiers_store_their_calibration_regressors_none(trained):
    for name in ("binary", "multiclass", "breast_cancer"):
        meta = artifact.open_artifact(trained[name].model_dir).metadata
        assert meta.calibration is not None and meta.calibration.rows == meta.rows["test"], name
    assert trained["breast_cancer"].metadata.calibration.kind == "positive_class"
    assert trained["multiclass"].metadata.calibration.kind == "top_class"
    assert artifact.open_artifact(trained["regression"].model_dir).metadata.calibration is None


def test_an_artifact_from_before_calibration_still_loads(trained, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(trained["binary"].model_dir, old)
    body = json.loads((old / artifact.METADATA).read_text())
    del body["calibration"]
    (old / artifact.METADATA).write_text(json.dumps(body))
    artifact.write_manifest(old)
    assert artifact.open_artifact(old).metadata.calibration is None
