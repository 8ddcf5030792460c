"""ONNX export: the input layout, and models left out with the reason when conversion fails or disagrees."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline

from contracts.schema import Feature, FeatureSchema, FeatureType
from training import onnx_export
from training.onnx_export import INPUT_PREFIX, input_runs, onnx_feed, to_onnx
from training.pipeline_model import build_pipeline, preprocessor

NUM, CAT = FeatureType.NUMERIC, FeatureType.CATEGORICAL


def _schema(*types: FeatureType) -> FeatureSchema:
    return FeatureSchema(target="y", features=[Feature(name=f"f{i}", type=t) for i, t in enumerate(types)])


def _mixed_data(n: int = 80) -> tuple[FeatureSchema, np.ndarray, np.ndarray]:
    """num, cat, num, num, cat: three input runs, with missing values of both kinds."""
    rng = np.random.default_rng(4)
    schema = _schema(NUM, CAT, NUM, NUM, CAT)
    X = np.empty((n, 5), dtype=object)
    X[:, 0] = rng.normal(size=n)
    X[:, 1] = rng.choice(["a", "b", "__missing__"], n)
    X[:, 2] = np.where(np.arange(n) % 6 == 0, np.nan, rng.normal(size=n))
    X[:, 3] = rng.normal(size=n) * 1000
    X[:, 4] = rng.choice(["u", "v"], n)
    y = np.where(X[:, 0].astype(float) + (X[:, 1] == "a") > 0.5, "hi", "lo").astype(object)
    return schema, X, y


def test_runs_group_adjacent_columns_of_one_type():
    assert input_runs(_schema(NUM, NUM, NUM)) == [(NUM, 0, 3)]
    assert input_runs(_schema(NUM, CAT, NUM, NUM, CAT)) == [(NUM, 0, 1), (CAT, 1, 2), (NUM, 2, 4), (CAT, 4, 5)]


def test_feed_for_numeric_schema_is_one_float64_tensor():
    X = np.arange(6, dtype=np.float64).reshape(2, 3)
    feed = onnx_feed(_schema(NUM, NUM, NUM), X)
    assert list(feed) == [f"{INPUT_PREFIX}0"] and feed[f"{INPUT_PREFIX}0"].dtype == np.float64


def test_feed_for_mixed_schema_splits_by_type():
    schema, X, _ = _mixed_data(4)
    feed = onnx_feed(schema, X)
    assert [(v.dtype, v.shape) for v in feed.values()] == [
        (np.float64, (4, 1)), (object, (4, 1)), (np.float64, (4, 2)), (object, (4, 1))]


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_mixed_schema_converts_and_agrees(task):
    schema, X, y = _mixed_data()
    if task == "regression":
        y = X[:, 3].astype(float) * 3 + 7
    pipeline = build_pipeline(schema, task).fit(X, y)
    model, status = to_onnx(pipeline, schema, X, task)
    assert model is not None and status.included, status.reason
    assert status.max_abs_diff <= onnx_export.TOLERANCE


def test_disagreement_leaves_the_model_out(monkeypatch):
    schema, X, y = _mixed_data()
    pipeline = build_pipeline(schema, "binary").fit(X, y)
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)
    model, status = to_onnx(pipeline, schema, X, "binary")
    assert model is None and not status.included
    assert "differ from scikit-learn by up to" in status.reason


class _Opaque(ClassifierMixin, BaseEstimator):
    """An estimator skl2onnx has no converter for."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_conversion_failure_is_recorded_not_raised():
    schema, X, y = _mixed_data()
    pipeline = Pipeline([("preprocess", preprocessor(schema)), ("model", _Opaque())]).fit(X, y)
    model, status = to_onnx(pipeline, schema, X, "binary")
    assert model is None and status.reason.startswith("conversion failed: ")
