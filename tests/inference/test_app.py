"""Every endpoint and every input error, through the Lambda handler with real REST (v1) and HTTP API (v2) events."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from contracts import artifact
from tests.inference.serving_helpers import VERSIONS, api_event, invoke, load_app


@pytest.fixture
def served(monkeypatch, breast_cancer_dir):
    return load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), MODEL_VERSION="12",
                    MODEL_PACKAGE_ARN="arn:aws:sagemaker:us-east-1:123456789012:model-package/breast-cancer/12",
                    MAX_BATCH="5")


@pytest.fixture
def row(breast_cancer_rows):
    return dict(breast_cancer_rows[0])


@pytest.mark.parametrize("version", VERSIONS)
def test_predict_returns_class_probabilities_version_and_request_id(served, version, row, lambda_context):
    event = api_event(version, "POST", "/predict", {"features": row}, request_id=f"req-{version}")
    status, body = invoke(served, event, lambda_context)
    assert status == 200
    assert body["prediction"] == "malignant"  # row 0 of the data set is malignant
    assert set(body["probabilities"]) == {"benign", "malignant"}
    assert body["probabilities"]["malignant"] == pytest.approx(1 - body["probabilities"]["benign"])
    assert body["probabilities"]["malignant"] > 0.5
    assert body["model_version"] == "12"
    assert body["request_id"] == f"req-{version}"
    assert "warnings" not in body


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_predicts_every_row(served, version, breast_cancer_rows, lambda_context):
    rows = breast_cancer_rows[:5]
    status, body = invoke(served, api_event(version, "POST", "/predict/batch", {"instances": rows}), lambda_context)
    assert status == 200
    assert body["count"] == 5 and len(body["predictions"]) == 5 and len(body["probabilities"]) == 5
    singles = [invoke(served, api_event(version, "POST", "/predict", {"features": r}), lambda_context)[1] for r in rows]
    assert body["predictions"] == [s["prediction"] for s in singles]
    for batch_p, single in zip(body["probabilities"], singles):
        assert batch_p == pytest.approx(single["probabilities"])


@pytest.mark.parametrize("version", VERSIONS)
def test_health_reports_the_loaded_version(served, version, lambda_context):
    status, body = invoke(served, api_event(version, "GET", "/health"), lambda_context)
    assert (status, body) == (200, {"status": "ok", "model_loaded": True, "model_version": "12", "runtime": "onnxruntime"})


@pytest.mark.parametrize("version", VERSIONS)
def test_model_info_describes_model_registry_entry_and_runtime(served, version, breast_cancer_dir, lambda_context):
    status, body = invoke(served, api_event(version, "GET", "/model-info"), lambda_context)
    meta = artifact.read_metadata(breast_cancer_dir)
    assert status == 200
    assert body["model_version"] == "12"
    assert body["model_package_arn"].endswith("model-package/breast-cancer/12")
    assert body["runtime"] == "onnxruntime"
    assert body["metrics"] == meta.metrics
    assert body["created_at"] == meta.created_at
    assert body["library_versions"]["scikit-learn"] == meta.library_versions["scikit-learn"]
    assert [f["name"] for f in body["feature_schema"]["features"]] == meta.feature_schema.names
    assert body["classes"] == ["benign", "malignant"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_docs_and_openapi_are_served(served, version, path, lambda_context):
    response = served.handler(api_event(version, "GET", path), lambda_context)
    assert response["statusCode"] == 200
    # The REST API's URLs carry its stage (/prod/docs): the docs page must fetch /prod/openapi.json.
    prefix = "/prod" if version == "v1" else ""
    if path == "/openapi.json":
        document = json.loads(response["body"])
        assert "/predict/batch" in document["paths"]
        assert document.get("servers") == ([{"url": "/prod"}] if prefix else None)
    else:
        assert f"url: '{prefix}/openapi.json'" in response["body"]


def _error(served, version, lambda_context, path, body=None, **kwargs):
    status, payload = invoke(served, api_event(version, "POST", path, body, **kwargs), lambda_context)
    return status, payload["detail"]


def _locs(detail):
    return {tuple(issue["loc"]): issue["msg"] for issue in detail}


@pytest.mark.parametrize("version", VERSIONS)
class TestInputErrors:
    def test_missing_feature(self, served, version, row, lambda_context):
        del row["mean_radius"]
        status, detail = _error(served, version, lambda_context, "/predict", {"features": row})
        assert status == 422
        assert _locs(detail)[("body", "features", "mean_radius")].startswith("missing feature")

    def test_unknown_feature(self, served, version, row, lambda_context):
        row["colour"] = 1.0
        status, detail = _error(served, version, lambda_context, "/predict", {"features": row})
        assert status == 422
        assert _locs(detail)[("body", "features", "colour")].startswith("unknown feature")

    @pytest.mark.parametrize("value, expected", [("12.5", "got string"), (True, "got boolean"), ([1], "got array"),
                                                 ({"v": 1}, "got object")])
    def test_wrong_type_for_a_number(self, served, version, row, lambda_context, value, expected):
        row["mean_texture"] = value
        status, detail = _error(served, version, lambda_context, "/predict", {"features": row})
        assert status == 422
        assert _locs(detail)[("body", "features", "mean_texture")] == f"expected a number, {expected}"

    @pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
    def test_nan_and_infinity(self, served, version, row, lambda_context, literal):
        text = json.dumps({"features": row}).replace(json.dumps(row["mean_area"]), literal, 1)
        status, detail = _error(served, version, lambda_context, "/predict", raw=text)
        assert status == 422
        assert "finite number" in _locs(detail)[("body", "features", "mean_area")]

    def test_null_where_training_saw_no_missing_values(self, served, version, row, lambda_context):
        row["mean_area"] = None
        status, detail = _error(served, version, lambda_context, "/predict", {"features": row})
        assert status == 422
        assert _locs(detail)[("body", "features", "mean_area")].startswith("null is not allowed")

    def test_number_beyond_any_feature_scale(self, served, version, row, lambda_context):
        row["mean_area"] = -1e101
        status, detail = _error(served, version, lambda_context, "/predict", {"features": row})
        assert status == 422
        assert _locs(detail)[("body", "features", "mean_area")] == "number out of range: at most 1e+100 in absolute value"

    def test_number_beyond_float_range(self, served, version, row, lambda_context):
        text = json.dumps({"features": row}).replace(json.dumps(row["mean_area"]), "1" + "0" * 400, 1)
        status, detail = _error(served, version, lambda_context, "/predict", raw=text)
        assert status == 422
        assert _locs(detail)[("body", "features", "mean_area")].startswith("number out of range")

    @pytest.mark.parametrize("raw", ["{not json", "", "[1, 2", "\"\\ud800\""])
    def test_body_that_is_not_json(self, served, version, lambda_context, raw):
        status, detail = _error(served, version, lambda_context, "/predict", raw=raw)
        assert status == 400
        assert detail[0]["loc"] == ["body"] and "not valid JSON" in detail[0]["msg"]

    def test_body_that_is_not_utf8(self, served, version, lambda_context):
        status, _ = _error(served, version, lambda_context, "/predict", raw=b"\xff\xfe{}")
        assert status == 400

    @pytest.mark.parametrize("body, loc, msg", [
        ([1, 2], ("body",), "expected an object with 'features', got array"),
        ({}, ("body", "features"), "field required"),
        ({"features": [1, 2]}, ("body", "features"), "expected an object of feature values, got array"),
        ({"features": {}, "extra": 1}, ("body", "extra"), "unexpected field"),
    ])
    def test_wrong_shape(self, served, version, lambda_context, body, loc, msg):
        status, detail = _error(served, version, lambda_context, "/predict", body)
        assert status == 422
        assert _locs(detail)[loc] == msg

    def test_batch_error_names_row_and_field(self, served, version, breast_cancer_rows, lambda_context):
        rows = [dict(r) for r in breast_cancer_rows[:3]]
        rows[2]["worst_area"] = "big"
        rows[1].pop("mean_radius")
        status, detail = _error(served, version, lambda_context, "/predict/batch", {"instances": rows})
        assert status == 422
        locs = _locs(detail)
        assert locs[("body", "instances", 2, "worst_area")] == "expected a number, got string"
        assert locs[("body", "instances", 1, "mean_radius")].startswith("missing feature")
        assert len(locs) == 2

    def test_batch_row_that_is_not_an_object(self, served, version, row, lambda_context):
        status, detail = _error(served, version, lambda_context, "/predict/batch", {"instances": [row, 3]})
        assert status == 422
        assert _locs(detail)[("body", "instances", 1)] == "expected an object of feature values, got integer"

    def test_empty_batch(self, served, version, lambda_context):
        status, detail = _error(served, version, lambda_context, "/predict/batch", {"instances": []})
        assert status == 422
        assert _locs(detail)[("body", "instances")] == "at least one instance is required"

    def test_oversized_batch(self, served, version, row, lambda_context):
        status, detail = _error(served, version, lambda_context, "/predict/batch", {"instances": [row] * 6})
        assert status == 413
        assert "6 instances exceed the limit of 5" in _locs(detail)[("body", "instances")]

    def test_instances_not_a_list(self, served, version, row, lambda_context):
        status, detail = _error(served, version, lambda_context, "/predict/batch", {"instances": row})
        assert status == 422
        assert _locs(detail)[("body", "instances")] == "expected an array of feature objects, got object"

    def test_base64_encoded_body_is_read(self, served, version, row, lambda_context):
        status, body = invoke(served, api_event(version, "POST", "/predict", {"features": row}, base64_body=True),
                              lambda_context)
        assert status == 200 and body["prediction"] == "malignant"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_row_the_model_cannot_score_is_a_422_not_a_nan(served, version, breast_cancer_rows, lambda_context, monkeypatch):
    model = served.state.predictor.model
    real_run = model.run

    def nan_for_row_1(X):
        out = real_run(X)
        out.proba[1] = np.nan
        return out

    monkeypatch.setattr(model, "run", nan_for_row_1)
    status, detail = _error(served, version, lambda_context, "/predict/batch", {"instances": breast_cancer_rows[:3]})
    assert status == 422
    assert list(_locs(detail)) == [("body", "instances", 1)]
    assert "not a finite number" in detail[0]["msg"]


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_route_and_wrong_method_are_4xx(served, version, lambda_context):
    assert served.handler(api_event(version, "GET", "/nope"), lambda_context)["statusCode"] == 404
    assert served.handler(api_event(version, "GET", "/predict"), lambda_context)["statusCode"] == 405


@pytest.mark.parametrize("version", VERSIONS)
def test_metrics_in_emf(served, version, row, lambda_context, capsys):
    capsys.readouterr()
    invoke(served, api_event(version, "POST", "/predict", {"features": row}), lambda_context)
    invoke(served, api_event(version, "POST", "/predict", {"features": {}}), lambda_context)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"]: blob for blob in blobs for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert names["PredictionsByClass"]["Class"] == "malignant"
    assert names["PredictionsByClass"]["ModelVersion"] == "12"
    assert names["PredictionErrors"]["ErrorKind"] == "validation"
    assert names["PredictionLatency"]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ServerlessMLOps"
    assert names["Predictions"]["Predictions"] == [1.0]


@pytest.mark.parametrize("version", VERSIONS)
def test_logs_carry_the_api_gateway_request_id(served, version, lambda_context):
    event = api_event(version, "POST", "/predict", {"features": {}}, request_id=f"corr-{version}")
    stream = io.StringIO()
    previous = served.logger.registered_handler.setStream(stream)  # the handler holds the stdout of its creation
    try:
        served.handler(event, lambda_context)
        served.logger.info("probe")
    finally:
        served.logger.registered_handler.setStream(previous)
    probe = json.loads(stream.getvalue().splitlines()[-1])
    assert probe["message"] == "probe" and probe["correlation_id"] == f"corr-{version}"
