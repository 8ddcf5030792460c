"""A retraining run played end to end on moto (demo.local_pipeline): labelled production rows join the data,
the most recent are kept for the gate, and the gate compares with the promoted (live) version."""
from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from contracts import names
from contracts.capture_record import record_line
from contracts.promotions import record_promotion
from demo.local_pipeline import PIPELINE_ENV, build_env, run_pipeline
from tests.training.training_helpers import binary_rows, write_csv
from training import registry

MODEL = "tiny-binary"
DATA, ARTIFACTS, REPORTS, CAPTURE = (f"mlops-retrain-{b}" for b in ("data", "artifacts", "reports", "capture"))


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in (*PIPELINE_ENV, "CAPTURE_BUCKET", "PRODUCTION_LABELS", "RECENT_SHARE", "MODEL_QUALITY_HORIZON_DAYS"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (DATA, ARTIFACTS, REPORTS, CAPTURE):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=DATA, Key=names.training_data_key(MODEL),
                      Body=write_csv(tmp_path / "data.csv", *binary_rows(160)).read_bytes())
        # run_pipeline sets them in os.environ: monkeypatch restores them afterwards
        for name, value in {"DATA_BUCKET": DATA, "ARTIFACTS_BUCKET": ARTIFACTS, "REPORTS_BUCKET": REPORTS}.items():
            monkeypatch.setenv(name, value)
        yield s3


def _production_traffic(s3, n: int = 60) -> None:
    """n predictions captured over the last hours, and their labels (POST /feedback's Firehose objects)."""
    now = datetime.now(UTC)
    _, rows = binary_rows(n, seed=9)
    lines, labels = [], []
    for i, (a, b, color, label) in enumerate(rows):
        moment = now - timedelta(minutes=5 * (n - i))
        lines.append(record_line(time=moment.isoformat(), request_id=f"r{i}", model_name=MODEL, model_version="1",
                                 features={"a": a, "b": None if b == "" else b, "color": color}, prediction=label,
                                 id=f"p{i}"))
        labels.append(json.dumps({"id": f"p{i}", "label": label}) + "\n")
    s3.put_object(Bucket=CAPTURE, Key=f"{names.capture_prefix(MODEL)}{now:%Y/%m/%d/%H}/capture-1.gz",
                  Body=gzip.compress(b"".join(lines)))
    s3.put_object(Bucket=CAPTURE, Key=f"{names.feedback_prefix(MODEL)}{now:%Y/%m/%d/%H}/labels-1.gz",
                  Body=gzip.compress("".join(labels).encode()))


def test_a_retraining_run_learns_from_production_rows_and_is_gated_against_live(deployment, tmp_path):
    s3 = deployment
    data_uri = f"s3://{DATA}/{names.training_data_key(MODEL)}"
    environment = build_env(CAPTURE, recent_share=0.2)
    first = run_pipeline(model_name=MODEL, run_id="run-1", data_uri=data_uri, target="label", workdir=tmp_path,
                         categorical=["color"], environment=environment)
    assert first.dataset["data_uri"] == data_uri and first.dataset["recent_uri"] is None  # no labels yet
    assert first.evaluation["production_source"] == "none" and first.registered
    live = registry.approve(None, MODEL, first.registration["model_package_version"])
    record_promotion(s3, MODEL, live)  # what `mlops promote` records after its deploy
    registry.approve(None, MODEL, registry.register(  # a higher Approved version that was never promoted
        None, model_name=MODEL, model_data_url=live.model_data_url, sha256=live.sha256, metrics={},
        run_id="other").version)

    _production_traffic(s3)
    second = run_pipeline(model_name=MODEL, run_id="run-2", data_uri=data_uri, target="label", workdir=tmp_path,
                          categorical=["color"], environment=environment)
    dataset = second.dataset
    assert dataset["data_uri"] == f"s3://{DATA}/datasets/{MODEL}/versions/run-2/train.csv"
    assert (dataset["lineage"]["production_rows"], dataset["lineage"]["recent_rows"], dataset["lineage"]["rows"]) == (
        48, 12, 208)
    assert second.validation["rows"] == 208  # validated and split: the configured rows and the older production rows
    evaluation = second.evaluation
    assert (evaluation["production_source"], evaluation["production_model_package_version"]) == ("live", 1)
    assert evaluation["recent"]["rows"] == 12 and evaluation["recent"]["production"] is not None
    record = json.loads(s3.get_object(Bucket=REPORTS, Key=names.run_record_key(MODEL, "run-2"))["Body"].read())
    assert record["data"]["uri"] == dataset["data_uri"]
    assert record["data"]["lineage"]["data_sha256"] == dataset["lineage"]["data_sha256"]
    assert second.registered, evaluation["reason"]
    version = registry.resolve(None, MODEL, second.registration["model_package_version"])
    assert version.dataset["production_rows"] == "48" and version.dataset["sha256"] == dataset["lineage"]["data_sha256"]
