"""Categorical features, missing values, unseen categories and regression, through the FastAPI app (TestClient)."""
from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from contracts import artifact
from tests.inference.serving_helpers import load_app


@pytest.fixture
def mixed(monkeypatch, mixed_dir):
    return TestClient(load_app(monkeypatch, MODEL_DIR=str(mixed_dir)).app)


@pytest.fixture
def strict(monkeypatch, mixed_dir):
    return TestClient(load_app(monkeypatch, MODEL_DIR=str(mixed_dir), STRICT_CATEGORIES="true").app)


ROW = {"size": 12.5, "color": "red", "count": 3, "code": "1"}


def _detail(response):
    return {tuple(i["loc"]): i["msg"] for i in response.json()["detail"]}


def test_mixed_schema_predicts_with_probabilities_for_three_classes(mixed, mixed_dir):
    response = mixed.post("/predict", json={"features": ROW}, headers={"x-request-id": "abc"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["probabilities"]) == set(artifact.read_metadata(mixed_dir).classes)
    assert math.isclose(sum(body["probabilities"].values()), 1.0, rel_tol=1e-9)
    assert body["request_id"] == "abc"


def test_null_allowed_where_training_saw_missing_values(mixed):
    response = mixed.post("/predict", json={"features": ROW | {"size": None, "color": None}})
    assert response.status_code == 200, response.text


def test_null_refused_where_training_saw_none(mixed):
    response = mixed.post("/predict", json={"features": ROW | {"count": None}})
    assert response.status_code == 422
    assert _detail(response)[("body", "features", "count")].startswith("null is not allowed")


@pytest.mark.parametrize("code", [1, 1.0])
def test_integer_category_code_is_read_as_its_string(mixed, code):
    as_int = mixed.post("/predict", json={"features": ROW | {"code": code}}).json()
    as_str = mixed.post("/predict", json={"features": ROW}).json()
    assert as_int["probabilities"] == as_str["probabilities"]
    assert "warnings" not in as_int


@pytest.mark.parametrize("value, expected", [(1.5, "got number"), (True, "got boolean"), (["red"], "got array")])
def test_categorical_refuses_other_types(mixed, value, expected):
    response = mixed.post("/predict", json={"features": ROW | {"color": value}})
    assert response.status_code == 422
    assert _detail(response)[("body", "features", "color")] == f"expected a string (a category), {expected}"


def test_unseen_category_is_accepted_with_a_warning(mixed, caplog):
    response = mixed.post("/predict/batch", json={"instances": [ROW, ROW | {"color": "mauve"}]})
    assert response.status_code == 200
    assert response.json()["warnings"] == ["row 1, color: category 'mauve' was not seen in training; the model ignores it"]
    assert [r.count for r in caplog.records if r.getMessage() == "unseen categories accepted"] == [1]


def test_unseen_category_is_refused_in_strict_mode(strict):
    response = strict.post("/predict/batch", json={"instances": [ROW, ROW | {"color": "mauve"}]})
    assert response.status_code == 422
    assert _detail(response)[("body", "instances", 1, "color")] == "unknown category 'mauve': not seen in training"


def test_infinity_in_a_mixed_row_names_the_field(mixed):
    response = mixed.post("/predict/batch", content=b'{"instances": [{"size": 1e999, "color": "red", "count": 1, "code": "2"}]}',
                          headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "finite number" in _detail(response)[("body", "instances", 0, "size")]


def test_regression_returns_a_value_and_no_probabilities(monkeypatch, regression_dir):
    client = TestClient(load_app(monkeypatch, MODEL_DIR=str(regression_dir)).app)
    body = client.post("/predict", json={"features": {"a": 1.0, "b": -1.0}}).json()
    assert body["prediction"] == pytest.approx(5.0, abs=0.5)  # y = 3a - 2b + noise
    assert "probabilities" not in body
    batch = client.post("/predict/batch", json={"instances": [{"a": 0, "b": 0}, {"a": 1, "b": 0}]}).json()
    assert batch["predictions"][1] - batch["predictions"][0] == pytest.approx(3.0, abs=0.3)
    assert "probabilities" not in batch
