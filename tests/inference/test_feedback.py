"""POST /feedback through the real app: labels checked against the served model, delivered to the labels stream
(moto Firehose → S3) before the 202, every 4xx naming the field and the row, 503 when nothing can be promised."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from contracts import metric_names, names
from contracts.ground_truth import GroundTruth, arrival, parse_object
from inference import feedback, firehose_lines
from inference.feedback import Feedback
from inference.firehose_lines import LineStream
from tests.inference.serving_helpers import VERSIONS, api_event, firehose_into_s3, invoke, load_app
from tests.training.training_helpers import multiclass_rows, write_csv
from training.train import TrainConfig, train

STREAM = "labels-stream"
BUCKET = "capture"
MODEL = "breast-cancer"


@pytest.fixture
def labels_to_s3():
    """The labels stream as demo/local_aws.py makes it: Firehose into the capture bucket under labels/<model>/feedback/."""
    with mock_aws():
        yield firehose_into_s3(STREAM, BUCKET, names.feedback_prefix(MODEL))


def delivered(s3, model: str = MODEL) -> list[GroundTruth]:
    """Every label in the labels stream's objects, read as the model-quality check reads them."""
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=names.feedback_prefix(model)).get("Contents", [])
    for o in objects:  # Firehose's hourly partition under labels/<model>/feedback/
        assert re.fullmatch(re.escape(names.feedback_prefix(model)) + r"\d{4}/\d\d/\d\d/\d\d/.+", o["Key"]), o["Key"]
    return [r for o in objects for r in parse_object(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()).records]


def emf_values(text: str, name: str) -> list[float]:
    blobs = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
    return [v for blob in blobs if name in blob for v in blob[name]]


def error_kinds(text: str) -> list[str]:
    blobs = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
    return [blob[metric_names.DIM_ERROR_KIND] for blob in blobs if metric_names.PREDICTION_ERRORS in blob]


@pytest.fixture
def served(labels_to_s3, monkeypatch, breast_cancer_dir):
    """The demo model (binary, classes "benign" and "malignant") with the labels stream on."""
    return load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), LABELS_STREAM=STREAM, MODEL_VERSION="4")


def post(module: Any, body: Any = None, *, raw: str | None = None, request_id: str = "r-1", version: str = "v2",
         context: Any = None) -> tuple[int, Any]:
    return invoke(module, api_event(version, "POST", "/feedback", body, raw=raw, request_id=request_id), context)


def issues(body: dict) -> list[tuple[list, str]]:
    return [(i["loc"], i["msg"]) for i in body["detail"]]


# ------------------------------------------------------------------ accepted and delivered


@pytest.mark.parametrize("version", VERSIONS)
def test_one_label_is_delivered_before_the_202(served, labels_to_s3, lambda_context, version, capsys):
    before = datetime.now(UTC) - timedelta(seconds=1)
    status, body = post(served, {"id": "order-1", "label": "malignant"}, version=version, context=lambda_context)
    assert status == 202, body
    assert body == {"accepted": 1, "ids": ["order-1"], "request_id": "r-1"}
    (record,) = delivered(labels_to_s3)  # in S3 already: delivered within the request
    assert (record.id, record.label) == ("order-1", "malignant")
    assert record.time.endswith("Z") and len(record.time) == len("2026-12-01T10:00:00.000Z")
    assert before <= arrival(record) <= datetime.now(UTC)
    assert emf_values(capsys.readouterr().out, metric_names.FEEDBACK_LABELS) == [1.0]


@pytest.fixture(scope="module")
def coded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Multiclass with classes "0", "1", "2": the class names a client may send as integers."""
    root = tmp_path_factory.mktemp("coded")
    csv = write_csv(root / "data.csv", *multiclass_rows())
    return train(csv, root / "model", TrainConfig(target="kind", model_name=MODEL, categorical=["shape"])).model_dir


def test_an_array_of_labels_takes_class_names_and_integer_codes(labels_to_s3, monkeypatch, coded_dir, lambda_context,
                                                                 capsys):
    module = load_app(monkeypatch, MODEL_DIR=str(coded_dir), LABELS_STREAM=STREAM)
    labels = [{"id": "a", "label": "0"}, {"id": "b", "label": 1}, {"id": "c", "label": 1.0}, {"label": "2", "id": "d"}]
    status, body = post(module, labels, request_id="r-9", context=lambda_context)
    assert status == 202, body
    assert body == {"accepted": 4, "ids": ["a", "b", "c", "d"], "request_id": "r-9"}
    records = delivered(labels_to_s3)
    # Stored as the class name, whichever form was sent: what the quality check compares with predictions.
    assert [(r.id, r.label) for r in records] == [("a", "0"), ("b", "1"), ("c", "1"), ("d", "2")]
    assert len({r.time for r in records}) == 1  # one arrival per request
    out = capsys.readouterr().out
    assert emf_values(out, metric_names.FEEDBACK_LABELS) == [4.0]
    assert emf_values(out, metric_names.FEEDBACK_DROPPED) == []

    status, body = post(module, [{"id": "e", "label": True}, {"id": "f", "label": 1.5}, {"id": "g", "label": 3},
                                 {"id": "h", "label": "01"}], context=lambda_context)
    assert status == 422
    assert issues(body) == [
        (["body", 0, "label"], "expected one of the model's classes ('0', '1', '2'), got boolean"),
        (["body", 1, "label"], "expected one of the model's classes ('0', '1', '2'), got number"),
        (["body", 2, "label"], "'3' is not one of the model's classes: '0', '1', '2'"),
        (["body", 3, "label"], "'01' is not one of the model's classes: '0', '1', '2'"),
    ]


def test_feedback_counts_carry_the_model_dimensions(served, lambda_context, capsys):
    post(served, [{"id": "a", "label": "benign"}, {"id": "b", "label": "malignant"}], context=lambda_context)
    (blob,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith('{"_aws"') and metric_names.FEEDBACK_LABELS in line]
    assert (blob[metric_names.DIM_MODEL_NAME], blob[metric_names.DIM_MODEL_VERSION], blob[metric_names.DIM_SERVICE]) == (
        MODEL, "4", "inference")


def test_multiclass_labels_are_class_names(labels_to_s3, monkeypatch, mixed_dir, lambda_context):
    module = load_app(monkeypatch, MODEL_DIR=str(mixed_dir), LABELS_STREAM=STREAM)
    status, body = post(module, [{"id": "p-1", "label": "warm"}, {"id": "p-2", "label": "big"}], context=lambda_context)
    assert status == 202, body
    status, body = post(module, {"id": "p-3", "label": "hot"}, context=lambda_context)
    assert status == 422
    assert issues(body) == [(["body", "label"], "'hot' is not one of the model's classes: 'big', 'other', 'warm'")]
    assert body["detail"][0]["type"] == "value_error.class"


def test_regression_labels_are_finite_numbers(labels_to_s3, monkeypatch, regression_dir, lambda_context):
    module = load_app(monkeypatch, MODEL_DIR=str(regression_dir), LABELS_STREAM=STREAM)
    status, body = post(module, [{"id": "x", "label": 2.5}, {"id": "y", "label": -3}, {"id": "z", "label": 0}],
                        context=lambda_context)
    assert status == 202, body
    records = delivered(labels_to_s3, MODEL)
    assert [(r.id, r.label) for r in records] == [("x", 2.5), ("y", -3), ("z", 0)]  # the numbers as sent

    raw = ('[{"id": "a", "label": "2.5"}, {"id": "b", "label": true}, {"id": "c", "label": NaN}, '
           '{"id": "d", "label": 1e400}, {"id": "e", "label": ' + "9" * 400 + '}, {"id": "f", "label": null}]')
    status, body = post(module, raw=raw, context=lambda_context)
    assert status == 422
    assert issues(body) == [
        (["body", 0, "label"], "expected a number (the model is a regressor), got string"),
        (["body", 1, "label"], "expected a number (the model is a regressor), got boolean"),
        (["body", 2, "label"], "expected a finite number: NaN and infinity are not allowed (got NaN)"),
        (["body", 3, "label"], "expected a finite number: NaN and infinity are not allowed"),
        (["body", 4, "label"], "number out of range: at most 1e+100 in absolute value"),
        (["body", 5, "label"], "expected a number (the model is a regressor), got null"),
    ]
    assert len(delivered(labels_to_s3, MODEL)) == 3  # nothing of the refused request


# ------------------------------------------------------------------ 4xx: each naming the field and the row


def test_a_body_that_is_not_json_is_a_400(served, lambda_context):
    status, body = post(served, raw='{"id": "a", "label": ', context=lambda_context)
    assert status == 400
    assert body["detail"][0]["loc"] == ["body"] and body["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(("doc", "message"), [
    ("order-1", 'expected an object {"id": …, "label": …} or an array of them, got string'),
    (7, 'expected an object {"id": …, "label": …} or an array of them, got integer'),
    ([], "at least one label is required"),
])
def test_a_body_of_the_wrong_shape_is_a_422(served, lambda_context, doc, message):
    status, body = post(served, doc, context=lambda_context)
    assert status == 422
    assert issues(body) == [(["body"], message)]


def test_missing_and_unexpected_fields_of_one_label(served, lambda_context):
    status, body = post(served, {"id": "a", "lable": "1"}, context=lambda_context)
    assert status == 422
    assert issues(body) == [(["body", "lable"], "unexpected field"), (["body", "label"], "field required")]


def test_every_problem_of_an_array_is_named_with_its_row(served, labels_to_s3, lambda_context):
    labels = [{"id": "ok", "label": "malignant"}, "order-2", {"label": "benign"}, {"id": "d", "label": 2},
              {"id": "e", "label": True}, {"id": 17, "label": "malignant", "prediction": "1"}]
    status, body = post(served, labels, context=lambda_context)
    assert status == 422
    assert issues(body) == [
        (["body", 1], 'expected an object {"id": …, "label": …}, got string'),
        (["body", 2, "id"], "field required"),
        (["body", 3, "label"], "'2' is not one of the model's classes: 'benign', 'malignant'"),
        (["body", 4, "label"], "expected one of the model's classes ('benign', 'malignant'), got boolean"),
        (["body", 5, "prediction"], "unexpected field"),
        (["body", 5, "id"], 'expected a string, got integer: send it as a string, e.g. "17"'),
    ]
    assert delivered(labels_to_s3) == []  # a request is delivered whole or not at all


@pytest.mark.parametrize(("pid", "message"), [
    ("", "an id must not be empty: send the id the prediction answered with"),
    (None, "expected a string, got null: a label names its prediction by the id the prediction answered with"),
    ("x" * 129, "an id is at most 128 characters, got 129"),
    ("a\nb", "an id must not contain control characters (newline, tab, …)"),
])
def test_ids_follow_the_prediction_id_rules(served, lambda_context, pid, message):
    status, body = post(served, [{"id": "fine", "label": "malignant"}, {"id": pid, "label": "benign"}], context=lambda_context)
    assert status == 422
    assert issues(body) == [(["body", 1, "id"], message)]


def test_the_longest_id_is_accepted(served, labels_to_s3, lambda_context):
    assert post(served, {"id": "x" * 128, "label": "benign"}, context=lambda_context)[0] == 202
    assert [r.id for r in delivered(labels_to_s3)] == ["x" * 128]


def test_the_same_id_twice_is_refused_at_the_second(served, labels_to_s3, lambda_context):
    labels = [{"id": "a", "label": "malignant"}, {"id": "b", "label": "benign"}, {"id": "a", "label": "benign"}]
    status, body = post(served, labels, context=lambda_context)
    assert status == 422
    assert issues(body) == [(["body", 2, "id"], "duplicate id 'a': rows 0 and 2 both have it; the ids of a request "
                                                "must be distinct")]
    assert delivered(labels_to_s3) == []


def test_more_labels_than_the_limit_is_a_413(labels_to_s3, monkeypatch, breast_cancer_dir, lambda_context, capsys):
    module = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), LABELS_STREAM=STREAM, FEEDBACK_MAX_LABELS="3")
    labels = [{"id": f"p{i}", "label": "malignant"} for i in range(4)]
    status, body = post(module, labels, context=lambda_context)
    assert status == 413
    assert issues(body) == [(["body"], "4 labels exceed the limit of 3 (FEEDBACK_MAX_LABELS): split them into "
                                       "several requests")]
    assert error_kinds(capsys.readouterr().out) == ["too_large"]
    assert post(module, labels[:3], context=lambda_context)[0] == 202


def test_issues_are_capped_like_validations(served, lambda_context):
    status, body = post(served, [{"id": f"p{i}", "label": "7"} for i in range(80)], context=lambda_context)
    assert status == 422 and len(body["detail"]) == 50


def test_a_long_class_list_is_cut_short_in_messages():
    classes = [f"c{i}" for i in range(30)]
    with pytest.raises(feedback.RequestError) as refused:
        Feedback(classes, LineStream("s", None, what="label"), 10).read(b'{"id": "a", "label": "nope"}')
    (issue,) = refused.value.issues
    assert issue.msg.startswith("'nope' is not one of the model's classes: 'c0', 'c1',")
    assert issue.msg.endswith("'c19' and 10 more (GET /model-info lists them all)")


# ------------------------------------------------------------------ 503: nothing promised


def test_no_labels_stream_means_feedback_is_off(monkeypatch, breast_cancer_dir, lambda_context, capsys):
    module = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir))
    status, body = post(module, {"id": "a", "label": "malignant"}, context=lambda_context)
    assert status == 503
    assert body["detail"].startswith("feedback is off: this deployment has no labels stream (LABELS_STREAM is empty)")
    assert error_kinds(capsys.readouterr().out) == ["feedback_off"]


def test_the_settings_read_the_stream_and_the_limit():
    from inference.settings import Settings, SettingsError

    settings = Settings.from_env({"LABELS_STREAM": " labels ", "FEEDBACK_MAX_LABELS": "250"})
    assert (settings.labels_stream, settings.feedback_max_labels) == ("labels", 250)
    assert (Settings.from_env({}).labels_stream, Settings.from_env({}).feedback_max_labels) == ("", 1000)
    with pytest.raises(SettingsError, match="FEEDBACK_MAX_LABELS"):
        Settings.from_env({"FEEDBACK_MAX_LABELS": "0"})


def test_no_model_means_labels_cannot_be_checked(monkeypatch, tmp_path, lambda_context):
    module = load_app(monkeypatch, MODEL_DIR=str(tmp_path / "missing"), LABELS_STREAM=STREAM)
    reason = module.state.reason
    status, body = post(module, {"id": "a", "label": "malignant"}, context=lambda_context)
    assert status == 503
    assert body["detail"] == f"labels cannot be checked without a model: {reason}"


def test_firehose_failing_is_a_503_and_nothing_is_reported_accepted(labels_to_s3, monkeypatch, breast_cancer_dir,
                                                                   lambda_context, capsys, caplog):
    module = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), LABELS_STREAM="no-such-stream")
    status, body = post(module, [{"id": "a", "label": "malignant"}, {"id": "b", "label": "benign"}], context=lambda_context)
    assert status == 503
    assert body["detail"] == ("2 of 2 labels could not be delivered to the labels stream; resend the whole request: "
                              "nothing is lost by resending, a later label for the same id replaces the earlier one")
    out = capsys.readouterr().out
    assert emf_values(out, metric_names.FEEDBACK_DROPPED) == [2.0]
    assert emf_values(out, metric_names.FEEDBACK_LABELS) == []
    assert error_kinds(out) == ["feedback_undelivered"]
    assert any(r.getMessage() == "label delivery failed" for r in caplog.records)
    assert any(r.getMessage() == "labels not delivered" and r.levelname == "ERROR" for r in caplog.records)


class RejectingFirehose:
    """Rejects the odd records of the first `rejecting` calls (as a throttled stream does), delivers the rest to moto."""

    def __init__(self, rejecting: int) -> None:
        self.client = boto3.client("firehose")
        self.rejecting = rejecting
        self.calls: list[list[bytes]] = []

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        data = [r["Data"] for r in Records]
        self.calls.append(data)
        reject = len(self.calls) <= self.rejecting
        failed = [reject and i % 2 == 1 for i in range(len(data))]
        kept = [d for d, f in zip(data, failed) if not f]
        self.client.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=[{"Data": d} for d in kept])
        return {"FailedPutCount": sum(failed), "Encrypted": False, "RequestResponses": [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."} if f else {"RecordId": "r"}
            for f in failed]}


def one_line_per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firehose_lines, "MAX_RECORD_BYTES", 90)  # one label line per Firehose record


def test_rejected_records_are_sent_once_more(served, labels_to_s3, monkeypatch, lambda_context, capsys):
    one_line_per_record(monkeypatch)
    firehose = RejectingFirehose(rejecting=1)
    monkeypatch.setattr(firehose_lines, "environment_client", lambda: firehose)
    labels = [{"id": f"p{i}", "label": "malignant"} for i in range(5)]
    status, body = post(served, labels, context=lambda_context)
    assert status == 202, body
    assert [len(call) for call in firehose.calls] == [5, 2]  # the two rejected records, once more
    assert sorted(r.id for r in delivered(labels_to_s3)) == [f"p{i}" for i in range(5)]  # each exactly once
    assert emf_values(capsys.readouterr().out, metric_names.FEEDBACK_LABELS) == [5.0]


def test_records_rejected_twice_are_a_503(served, labels_to_s3, monkeypatch, lambda_context, capsys):
    one_line_per_record(monkeypatch)
    firehose = RejectingFirehose(rejecting=2)
    monkeypatch.setattr(firehose_lines, "environment_client", lambda: firehose)
    status, body = post(served, [{"id": f"p{i}", "label": "benign"} for i in range(5)], context=lambda_context)
    assert status == 503
    assert body["detail"].startswith("1 of 5 labels could not be delivered")
    assert [len(call) for call in firehose.calls] == [5, 2]  # retried once, no more
    out = capsys.readouterr().out
    assert emf_values(out, metric_names.FEEDBACK_DROPPED) == [1.0]
    assert emf_values(out, metric_names.FEEDBACK_LABELS) == [4.0]  # those that did land (resending repeats them)


# ------------------------------------------------------------------ the document and the cold start


def test_the_openapi_document_describes_feedback(monkeypatch, mixed_dir, regression_dir):
    module = load_app(monkeypatch, MODEL_DIR=str(mixed_dir), FEEDBACK_MAX_LABELS="30")
    route = TestClient(module.app).get("/openapi.json").json()["paths"]["/feedback"]["post"]
    one, many = route["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert one["required"] == ["id", "label"] and one["additionalProperties"] is False
    assert one["properties"]["label"]["enum"] == ["big", "other", "warm"]
    assert one["properties"]["id"]["maxLength"] == 128
    assert (many["items"], many["minItems"], many["maxItems"]) == (one, 1, 30)
    assert set(route["responses"]) == {"202", "400", "413", "422", "503"}
    module = load_app(monkeypatch, MODEL_DIR=str(regression_dir))
    route = TestClient(module.app).get("/openapi.json").json()["paths"]["/feedback"]["post"]
    label = route["requestBody"]["content"]["application/json"]["schema"]["anyOf"][0]["properties"]["label"]
    assert label["type"] == "number"


def test_predict_cold_start_imports_nothing_of_feedback():
    code = ("import sys, inference.app; "
            "print(sorted(m for m in ('inference.feedback', 'contracts.ground_truth', 'inference.api_models') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent, env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}).stdout
    assert out.strip().splitlines()[-1] == "[]"  # (the log line before it: no model configured)


# ------------------------------------------------------------------ the local demo's plumbing


def test_the_local_deployment_has_a_labels_stream_into_labels_feedback(monkeypatch, breast_cancer_dir, lambda_context):
    from types import SimpleNamespace

    from demo.local_aws import LocalDeployment

    with mock_aws():
        deployment = LocalDeployment(MODEL)
        deployment.create()
        live = SimpleNamespace(version=4, arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/bc/4",
                               model_data_url="", sha256="")
        env = deployment.serving_env(live)
        assert env["LABELS_STREAM"] == deployment.labels_stream
        module = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), LABELS_STREAM=env["LABELS_STREAM"])
        assert post(module, {"id": "p-1", "label": "benign"}, context=lambda_context)[0] == 202
        s3 = boto3.client("s3")
        (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=deployment.capture_bucket)["Contents"]]
        assert re.fullmatch(r"labels/breast-cancer/feedback/\d{4}/\d\d/\d\d/\d\d/[^/]+", key), key
        (record,) = parse_object(s3.get_object(Bucket=deployment.capture_bucket, Key=key)["Body"].read()).records
        assert (record.id, record.label) == ("p-1", "benign")
