"""The capture stream failing: predictions still answer 200, and every lost line is counted in CaptureRecordsDropped.

Covered elsewhere (tests/inference/test_capture.py): a stream that does not exist (the call raises), and
FailedPutCount at the level of CaptureSink._put. Here: Firehose unreachable, and a partial rejection
through the whole handler, checked against what landed in S3 (nothing lost uncounted, nothing twice).
"""
from __future__ import annotations

import json
from typing import Any

import boto3
from moto import mock_aws

from contracts import metric_names
from demo.local_server import free_port
from inference import firehose_lines
from tests.inference.serving_helpers import api_event, invoke, load_app
from tests.reliability.reliability_helpers import STREAM, captured_lines, emf_values, firehose_to_s3


def predict_some(served: Any, rows: list[dict[str, float]], lambda_context: Any) -> list[tuple[int, Any]]:
    """A batch of 7 rows and 3 single rows, through both API Gateway payload versions."""
    answers = [invoke(served, api_event("v2", "POST", "/predict/batch", {"instances": rows[:7]}, request_id="batch-1"),
                      lambda_context)]
    answers += [invoke(served, api_event(version, "POST", "/predict", {"features": row}, request_id=f"one-{i}"),
                       lambda_context) for i, (version, row) in enumerate(zip(("v1", "v2", "v1"), rows[7:10]))]
    return answers


def assert_predicted(answers: list[tuple[int, Any]]) -> None:
    assert [status for status, _ in answers] == [200] * 4
    assert answers[0][1]["count"] == 7 and all("prediction" in body for _, body in answers[1:])


def test_unreachable_firehose_drops_and_counts_every_line(breast_cancer_dir, bc_rows, monkeypatch, lambda_context, capsys):
    served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), CAPTURE_STREAM=STREAM,
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    capsys.readouterr()
    answers = predict_some(served, bc_rows, lambda_context)
    assert_predicted(answers)
    out = capsys.readouterr().out
    assert sum(emf_values(out, metric_names.CAPTURE_DROPPED)) == 10
    assert emf_values(out, metric_names.CAPTURE_SENT) == []
    assert sum(emf_values(out, metric_names.PREDICTIONS)) == 10


class RejectingFirehose:
    """A moto-backed Firehose client that rejects every other record of a PutRecordBatch, as a throttled stream does."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.rejected_lines = 0

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        kept = Records[0::2]
        self.client.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=kept)
        responses = []
        for i, record in enumerate(Records):
            if i % 2:
                self.rejected_lines += record["Data"].count(b"\n")
                responses.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
            else:
                responses.append({"RecordId": f"record-{i}"})
        return {"FailedPutCount": len(Records) - len(kept), "Encrypted": False, "RequestResponses": responses}


def test_partly_rejected_batch_counts_exactly_the_lines_lost(breast_cancer_dir, bc_rows, monkeypatch, lambda_context, capsys):
    # A few lines per Firehose record, so one call carries several records to accept or reject.
    monkeypatch.setattr(firehose_lines, "MAX_RECORD_BYTES", 3 * len(json.dumps({"features": bc_rows[0]})))
    with mock_aws():
        s3 = boto3.client("s3")
        firehose_to_s3(s3, boto3.client("firehose"))
        served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), CAPTURE_STREAM=STREAM)
        sink = served.state.predictor.capture
        rejecting = RejectingFirehose(sink._client)
        monkeypatch.setattr(sink, "_client", rejecting)
        capsys.readouterr()
        answers = predict_some(served, bc_rows, lambda_context)
        lines = captured_lines(s3)
    assert_predicted(answers)
    out = capsys.readouterr().out
    sent, dropped = sum(emf_values(out, metric_names.CAPTURE_SENT)), sum(emf_values(out, metric_names.CAPTURE_DROPPED))
    assert rejecting.rejected_lines > 0, "the batch fitted one record: nothing was put to the test"
    assert dropped == rejecting.rejected_lines
    assert sent == len(lines) and sent + dropped == 10
    landed = [(line["request_id"], json.dumps(line["features"], sort_keys=True)) for line in lines]
    assert len(set(landed)) == len(landed), "a capture line landed twice"
    sent_rows = {("batch-1", json.dumps(row, sort_keys=True)) for row in bc_rows[:7]} | {
        (f"one-{i}", json.dumps(row, sort_keys=True)) for i, row in enumerate(bc_rows[7:10])}
    assert set(landed) <= sent_rows

