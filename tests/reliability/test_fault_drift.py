"""The whole loop, interrupted: predictions captured by the real service, then a drift check stopped halfway and run
again, in several ways; the final totals equal one uninterrupted read of the same files, with every served row.

Covered elsewhere (tests/drift_check/test_handler.py, on synthetic capture lines): one stop for time and one
exception while counting, each then resumed. Here: stopped after every file, S3 failing to read a
capture file between checkpoints, and S3 failing to write a checkpoint, on what the service captured.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from contracts import names
from tests.drift_check.drift_helpers import FakeContext
from tests.inference.serving_helpers import api_event, invoke, load_app
from tests.reliability.reliability_helpers import CAPTURE_BUCKET, MODEL_NAME, STREAM, client_error, firehose_to_s3

EVENT = json.loads((Path(__file__).resolve().parent.parent / "events" / "drift_scheduled_event.json").read_text())
REPORTS, ARTIFACTS = "reports", "artifacts"
MODEL_KEY = f"models/{MODEL_NAME}/run-1/output/model.tar.gz"
CHECKPOINT_KEY = names.drift_checkpoint_key(MODEL_NAME)
FILES, ROWS_PER_FILE = 6, 100
MAX_RUNS = FILES + 2  # bounded: a check that never finishes fails instead of looping


@pytest.fixture
def loop(breast_cancer_dir, bc_rows, bc_tarball, monkeypatch, lambda_context):
    """Six batches served with capture on (six capture files in S3), and the drift check set up for the model."""
    tarball, sha = bc_tarball
    with mock_aws():
        s3 = boto3.client("s3")
        firehose_to_s3(s3, boto3.client("firehose"))
        for bucket in (REPORTS, ARTIFACTS):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=ARTIFACTS, Key=MODEL_KEY, Body=tarball)
        served = load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), CAPTURE_STREAM=STREAM)
        for i in range(FILES):
            rows = [bc_rows[(i * ROWS_PER_FILE + k) % len(bc_rows)] for k in range(ROWS_PER_FILE)]
            status, body = invoke(served, api_event("v2", "POST", "/predict/batch", {"instances": rows}), lambda_context)
            assert status == 200 and body["count"] == ROWS_PER_FILE
        for name, value in {"CAPTURE_BUCKET": CAPTURE_BUCKET, "REPORTS_BUCKET": REPORTS, "MODEL_NAME": MODEL_NAME,
                            "MODEL_DATA_URL": f"s3://{ARTIFACTS}/{MODEL_KEY}", "MODEL_SHA256": sha,
                            "MIN_ROWS": "100", "DRIFT_WORKERS": "1", "CHECKPOINT_EVERY_FILES": "1"}.items():
            monkeypatch.setenv(name, value)
        from drift_check import app, model_source

        drift_s3 = boto3.client("s3")  # the handler's client, where the tests inject S3 faults
        monkeypatch.setattr(app, "s3", drift_s3)
        model_source._CACHE.clear()
        yield SimpleNamespace(app=app, s3=drift_s3)


def totals(s3: Any, result: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on how the window was read: row counts and every histogram."""
    report = json.loads(s3.get_object(Bucket=REPORTS, Key=result["report_uri"].removeprefix(f"s3://{REPORTS}/"))["Body"].read())
    return {"files": report["window"]["files"], "rows": (report["rows_checked"], report["rows_rejected"]),
            "bins": {name: f["histogram"] for name, f in report["features"].items()},
            "prediction": report["prediction"]["histogram"]}


def uninterrupted(loop: SimpleNamespace) -> dict[str, Any]:
    """The same files read in one run from a fresh checkpoint."""
    loop.s3.delete_object(Bucket=REPORTS, Key=CHECKPOINT_KEY)
    return totals(loop.s3, loop.app.handler(EVENT, FakeContext()))


def fail_once(s3: Any, operation: str, *, bucket: str, nth: int, error: Exception, key: str | None = None) -> None:
    """The nth call of an operation on the bucket (and key) raises, once; other calls go through."""
    seen = [0]

    def maybe_fail(params: dict[str, Any], **_: Any) -> None:
        if params.get("Bucket") == bucket and (key is None or params.get("Key") == key):
            seen[0] += 1
            if seen[0] == nth:
                raise error

    s3.meta.events.register(f"provide-client-params.s3.{operation}", maybe_fail)


def run_until_done(loop: SimpleNamespace, context: FakeContext) -> tuple[dict[str, Any], list[str]]:
    """Run the check as the schedule would until it finishes; the status of each run."""
    outcomes = []
    for _ in range(MAX_RUNS):
        result = loop.app.handler(EVENT, context)
        outcomes.append(result["status"])
        if result["status"] != "partial":
            return result, outcomes
    raise AssertionError(f"no complete run in {MAX_RUNS}: {outcomes}")


def test_stopped_for_time_after_every_file(loop):
    result, outcomes = run_until_done(loop, FakeContext(remaining_ms=1_000))  # always under the stop margin
    assert outcomes == ["partial"] * (FILES - 1) + [result["status"]]
    assert totals(loop.s3, result) == uninterrupted(loop)
    assert result["rows_checked"] == FILES * ROWS_PER_FILE  # every served row, once


def checkpointed_files(s3: Any) -> int:
    """How many files the partial window saved in the checkpoint holds."""
    checkpoint = json.loads(s3.get_object(Bucket=REPORTS, Key=CHECKPOINT_KEY)["Body"].read())
    return checkpoint["partial"]["files"]


def test_capture_file_unreadable_between_checkpoints(loop, monkeypatch):
    monkeypatch.setenv("CHECKPOINT_EVERY_FILES", "2")
    fail_once(loop.s3, "GetObject", bucket=CAPTURE_BUCKET, nth=4,
              error=EndpointConnectionError(endpoint_url="https://s3.us-east-1.amazonaws.com"))
    with pytest.raises(EndpointConnectionError):
        loop.app.handler(EVENT, FakeContext())
    assert checkpointed_files(loop.s3) == 2  # file 3 was counted too, in memory only: it must be read again
    result, outcomes = run_until_done(loop, FakeContext())
    assert outcomes == [result["status"]]
    assert totals(loop.s3, result) == uninterrupted(loop)
    assert result["rows_checked"] == FILES * ROWS_PER_FILE


def test_checkpoint_write_failing_halfway(loop):
    fail_once(loop.s3, "PutObject", bucket=REPORTS, key=CHECKPOINT_KEY, nth=3,
              error=client_error("PutObject", "SlowDown", "Please reduce your request rate."))
    with pytest.raises(ClientError, match="SlowDown"):
        loop.app.handler(EVENT, FakeContext())
    assert checkpointed_files(loop.s3) == 2  # the third file's checkpoint was never written
    result, outcomes = run_until_done(loop, FakeContext())
    assert outcomes == [result["status"]]
    assert totals(loop.s3, result) == uninterrupted(loop)
    assert result["rows_checked"] == FILES * ROWS_PER_FILE
