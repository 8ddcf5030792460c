"""The OpenAPI document describes the model's exact input and every response; a short fuzz run finds no 5xx."""
from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from inference import firehose_lines
from tests.inference.serving_helpers import load_app, repeats_an_id


@pytest.fixture
def openapi(monkeypatch, mixed_dir):
    module = load_app(monkeypatch, MODEL_DIR=str(mixed_dir), MAX_BATCH="20")
    return TestClient(module.app).get("/openapi.json").json()


def _body_schema(openapi, path):
    return openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def test_predict_body_lists_each_feature_with_its_type_and_nullability(openapi):
    body = _body_schema(openapi, "/predict")
    assert body["required"] == ["features"] and body["additionalProperties"] is False
    features = body["properties"]["features"]
    assert features["required"] == ["size", "color", "count", "code"]
    assert features["additionalProperties"] is False
    props = features["properties"]
    assert props["count"]["type"] == "number"  # training saw no missing counts: no null
    assert {"type": "null"} in props["size"]["anyOf"]  # missing sizes in training: null allowed
    assert props["code"]["type"] == ["string", "integer"]


def test_batch_body_bounds_the_number_of_instances(openapi):
    instances = _body_schema(openapi, "/predict/batch")["properties"]["instances"]
    assert (instances["minItems"], instances["maxItems"]) == (1, 20)
    row, pair = instances["items"]["anyOf"]  # a row, or an {"id", "features"} pair as /predict takes it
    assert row["required"] == ["size", "color", "count", "code"]
    assert pair == _body_schema(openapi, "/predict")


def test_bodies_describe_the_prediction_id(openapi):
    body = _body_schema(openapi, "/predict")
    text, null = body["properties"]["id"]["anyOf"]
    assert (text["type"], text["minLength"], text["maxLength"], null) == ("string", 1, 128, {"type": "null"})
    assert text["not"] == {"pattern": "[\\u0000-\\u001f\\u007f-\\u009f]"}  # no control characters
    schemas = openapi["components"]["schemas"]
    assert "id" in schemas["PredictResponse"]["required"] and "ids" in schemas["BatchResponse"]["required"]


def test_every_status_has_a_documented_body(openapi):
    for path, codes in {"/predict": {"200", "400", "413", "422", "503"}, "/predict/batch": {"200", "400", "413", "422", "503"},
                        "/feedback": {"202", "400", "413", "422", "503"}}.items():
        responses = openapi["paths"][path]["post"]["responses"]
        assert codes <= set(responses)
        assert all("schema" in responses[c]["content"]["application/json"] for c in codes)
    for path in ("/health", "/model-info"):
        assert {"200", "503"} <= set(openapi["paths"][path]["get"]["responses"])
    schemas = openapi["components"]["schemas"]
    assert {"PredictResponse", "BatchResponse", "FeedbackAccepted", "ErrorResponse", "ValidationIssue", "HealthResponse",
            "ModelInfo"} <= set(schemas)


def test_strict_mode_documents_the_categories(monkeypatch, mixed_dir):
    module = load_app(monkeypatch, MODEL_DIR=str(mixed_dir), STRICT_CATEGORIES="1")
    props = _body_schema(TestClient(module.app).get("/openapi.json").json(), "/predict")["properties"]["features"]["properties"]
    assert props["color"]["anyOf"][0] == {"enum": ["blue", "green", "red"]}


class AcceptingFirehose:
    """A labels stream that takes every record: /feedback's answers are the app's own, never a delivery 503."""

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list) -> dict:
        return {"FailedPutCount": 0, "Encrypted": False, "RequestResponses": [{"RecordId": "r"} for _ in Records]}


@pytest.mark.parametrize("model", ["mixed_dir", "breast_cancer_dir", "regression_dir"])
def test_fuzzed_requests_get_documented_answers_and_no_5xx(monkeypatch, request, model):
    """Schema-valid and schema-breaking bodies alike: every answer is documented, none is a server error."""
    monkeypatch.setattr(firehose_lines, "environment_client", AcceptingFirehose)
    module = load_app(monkeypatch, MODEL_DIR=str(request.getfixturevalue(model)), MAX_BATCH="5", LABELS_STREAM="labels",
                      FEEDBACK_MAX_LABELS="5")
    schema = schemathesis.openapi.from_asgi("/openapi.json", module.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/predict/batch", "/feedback", "/health", "/model-info"}
    for operation in operations:
        @given(case=operation.as_strategy().filter(lambda case: not repeats_an_id(case)))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate()

        check()
