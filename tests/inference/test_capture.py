"""Request capture to Firehose: on (records land in S3 via moto), sampled, off, and failing (counted, never fatal)."""
from __future__ import annotations

import json
import random

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from contracts import metric_names
from contracts.capture_record import parse_line
from inference import capture, firehose_lines
from tests.inference.serving_helpers import VERSIONS, api_event, firehose_into_s3, invoke, load_app

STREAM = "capture-stream"
BUCKET = "capture"


@pytest.fixture
def firehose_to_s3():
    with mock_aws():
        yield firehose_into_s3(STREAM, BUCKET, "capture/breast-cancer/")


def captured_records(s3) -> list:
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix="capture/breast-cancer/").get("Contents", [])
    lines = [line for o in objects for line in s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().splitlines()]
    return [parse_line(line) for line in lines]


def emf_values(text: str, name: str) -> list[float]:
    blobs = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
    return [v for blob in blobs if name in blob for v in blob[name]]


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_lands_in_s3_as_capture_records(firehose_to_s3, monkeypatch, breast_cancer_dir, breast_cancer_rows,
                                              lambda_context, version, capsys):
    served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), CAPTURE_STREAM=STREAM, MODEL_VERSION="4")
    rows = breast_cancer_rows[:10]
    status, body = invoke(served, api_event(version, "POST", "/predict/batch", {"instances": rows}, request_id="r-1"),
                          lambda_context)
    assert status == 200
    records = captured_records(firehose_to_s3)  # delivered before the handler returned
    assert [r.features for r in records] == rows
    assert [r.prediction for r in records] == body["predictions"]
    assert [r.probability for r in records] == body["probabilities"]
    assert {(r.request_id, r.model_name, r.model_version) for r in records} == {("r-1", "breast-cancer", "4")}
    assert [r.id for r in records] == body["ids"] == [f"r-1-{i}" for i in range(10)]
    assert records[0].time.endswith("Z")
    assert emf_values(capsys.readouterr().out, "CaptureRecordsSent") == [10.0]


def test_capture_records_keep_the_prediction_ids(firehose_to_s3, monkeypatch, breast_cancer_dir, breast_cancer_rows,
                                                 lambda_context):
    served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), CAPTURE_STREAM=STREAM)
    rows = breast_cancer_rows[:3]
    single = {"id": "order-9", "features": rows[0]}
    batch = {"instances": [{"id": "order-10", "features": rows[1]}, rows[2]]}
    assert invoke(served, api_event("v2", "POST", "/predict", single, request_id="r-2"), lambda_context)[0] == 200
    assert invoke(served, api_event("v2", "POST", "/predict/batch", batch, request_id="r-3"), lambda_context)[0] == 200
    records = sorted(captured_records(firehose_to_s3), key=lambda r: r.request_id)
    assert [(r.request_id, r.id, r.features) for r in records] == [
        ("r-2", "order-9", rows[0]), ("r-3", "order-10", rows[1]), ("r-3", "r-3-1", rows[2])]


def test_single_predictions_are_captured_one_put_each(firehose_to_s3, monkeypatch, breast_cancer_dir, breast_cancer_rows,
                                                       lambda_context):
    served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), CAPTURE_STREAM=STREAM)
    for i, row in enumerate(breast_cancer_rows[:3]):
        invoke(served, api_event("v1", "POST", "/predict", {"features": row}, request_id=f"r{i}"), lambda_context)
    assert sorted(r.request_id for r in captured_records(firehose_to_s3)) == ["r0", "r1", "r2"]


def test_sample_rate_captures_a_share(firehose_to_s3, monkeypatch, breast_cancer_dir, breast_cancer_rows, lambda_context):
    served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), CAPTURE_STREAM=STREAM, CAPTURE_SAMPLE_RATE="0.3")
    random.seed(7)
    invoke(served, api_event("v2", "POST", "/predict/batch", {"instances": breast_cancer_rows * 8}), lambda_context)
    assert 30 < len(captured_records(firehose_to_s3)) < 90  # 200 rows at 0.3; seeded


@pytest.mark.parametrize("env", [{}, {"CAPTURE_STREAM": STREAM, "CAPTURE_SAMPLE_RATE": "0"}])
def test_capture_off(firehose_to_s3, monkeypatch, breast_cancer_dir, breast_cancer_rows, lambda_context, env):
    served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), **env)
    assert served.state.predictor.capture.enabled is False
    status, _ = invoke(served, api_event("v1", "POST", "/predict", {"features": breast_cancer_rows[0]}), lambda_context)
    assert status == 200
    assert captured_records(firehose_to_s3) == []


def test_delivery_failure_is_counted_and_the_prediction_still_served(firehose_to_s3, monkeypatch, breast_cancer_dir,
                                                                      breast_cancer_rows, lambda_context, capsys, caplog):
    served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), CAPTURE_STREAM="no-such-stream")
    status, body = invoke(served, api_event("v2", "POST", "/predict/batch", {"instances": breast_cancer_rows[:4]}),
                          lambda_context)
    assert status == 200 and body["count"] == 4
    assert emf_values(capsys.readouterr().out, "CaptureRecordsDropped") == [4.0]
    assert any(r.getMessage() == "capture delivery failed" and r.levelname == "WARNING" for r in caplog.records)


@pytest.mark.parametrize(("stream", "metric"), [(STREAM, metric_names.CAPTURE_SENT),
                                                ("no-such-stream", metric_names.CAPTURE_DROPPED)])
def test_capture_counts_carry_the_dimensions_the_alarms_watch(firehose_to_s3, monkeypatch, breast_cancer_dir,
                                                              breast_cancer_rows, lambda_context, capsys, stream, metric):
    """CaptureDropped and CaptureSilent name all three (tests/stacks/test_input_alarms.py): a metric with other
    dimensions would be another metric, and the alarms would never see it."""
    served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), CAPTURE_STREAM=stream, MODEL_VERSION="4")
    invoke(served, api_event("v1", "POST", "/predict/batch", {"instances": breast_cancer_rows[:4]}), lambda_context)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    for name in (metric, metric_names.PREDICTIONS):  # the silence alarm compares the two
        (blob,) = [b for b in blobs if name in b]
        assert blob[name] == [4.0]
        (dimensions,) = blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"]  # one set: no other metric to alarm on
        assert set(dimensions) == {metric_names.DIM_SERVICE, metric_names.DIM_MODEL_NAME, metric_names.DIM_MODEL_VERSION}
        assert (blob[metric_names.DIM_SERVICE], blob[metric_names.DIM_MODEL_NAME], blob[metric_names.DIM_MODEL_VERSION]) == (
            "inference", "breast-cancer", "4")


def test_rejected_records_count_only_their_lines(caplog):
    client = boto3.client("firehose")
    sink = capture.CaptureSink(STREAM, 1.0, client=client)
    lines = [b'{"a":1}\n'] * 3
    with Stubber(client) as stub:
        stub.add_response("put_record_batch", {"FailedPutCount": 1, "RequestResponses": [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"}]},
            {"DeliveryStreamName": STREAM, "Records": [{"Data": b"".join(lines)}]})
        assert sink._put([b"".join(lines)]) == (0, 3)
    assert any(r.getMessage() == "capture records rejected by Firehose" for r in caplog.records)


def test_pack_shares_records_and_respects_firehose_limits():
    small = [b"x" * 99 + b"\n"] * 25
    batches, too_big = firehose_lines.pack(small)
    assert too_big == 0 and len(batches) == 1 and batches[0] == [b"".join(small)]

    line = b"y" * (300 * 1024 - 1) + b"\n"  # three fit in one 1,000 KiB record
    batches, _ = firehose_lines.pack([line] * 50)
    records = [r for batch in batches for r in batch]
    assert all(len(r) <= firehose_lines.MAX_RECORD_BYTES for r in records)
    assert sum(r.count(b"\n") for r in records) == 50
    assert all(sum(map(len, batch)) <= firehose_lines.MAX_BATCH_BYTES and len(batch) <= firehose_lines.MAX_BATCH_RECORDS
               for batch in batches)
    assert len(batches) > 1

    huge = b"z" * (firehose_lines.MAX_RECORD_BYTES + 1)
    batches, too_big = firehose_lines.pack([huge, small[0]])
    assert too_big == 1 and batches == [[small[0]]]


def test_pack_starts_a_new_call_after_500_records(monkeypatch):
    monkeypatch.setattr(firehose_lines, "MAX_RECORD_BYTES", 100)  # one 60-byte line per record
    batches, _ = firehose_lines.pack([b"v" * 59 + b"\n"] * 501)
    assert [len(b) for b in batches] == [500, 1]


def test_pack_starts_a_new_call_before_4_mib():
    line = b"w" * (600 * 1024) + b"\n"  # one per record
    batches, _ = firehose_lines.pack([line] * 6)
    assert [len(b) for b in batches] == [6]  # 3.6 MiB: one call
    batches, _ = firehose_lines.pack([line] * 7)
    assert [len(b) for b in batches] == [6, 1]  # 4.2 MiB would exceed 4 MiB
