"""Fixtures for the drift tests: the service name, the baseline, a tiny model artifact, events."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import boto3
import numpy as np
import pytest
from moto import mock_aws
from sklearn.dummy import DummyClassifier

from contracts import artifact
from contracts.baseline import Baseline, baseline_json
from drift_check.stats import build_baseline
from tests.drift_check.drift_helpers import SCHEMA, make_columns

EVENTS = Path(__file__).resolve().parents[1] / "events"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """The drift check's service name (fake credentials: tests/conftest.py)."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "drift-check")


@pytest.fixture(scope="session")
def baseline() -> Baseline:
    """Read back from its JSON, as the drift check gets it from baseline.json."""
    rng = np.random.default_rng(7)
    columns = make_columns(rng, 5000)
    predictions = np.where(columns["x"] > 0, "yes", "no").astype(object)
    return Baseline.from_json(baseline_json(build_baseline(SCHEMA, columns, task="binary", classes=["no", "yes"],
                                                           predictions=predictions)))


@dataclass(frozen=True)
class ModelArtifact:
    tarball: bytes
    sha256: str


def make_artifact(tmp: Path, baseline: Baseline, version: str) -> ModelArtifact:
    """A real artifact (write_model_dir + pack) around a trivial estimator and the baseline."""
    estimator = DummyClassifier(strategy="prior").fit(np.zeros((4, 3)), ["no", "yes", "no", "yes"])
    metadata = artifact.Metadata(
        model_name="churn", model_version=version, task="binary", feature_schema=SCHEMA, classes=["no", "yes"],
        metrics={"accuracy": 0.5}, hyperparameters={}, training_data_sha256="0" * 64,
        library_versions=artifact.library_versions(), created_at=artifact.utc_now(),
        onnx=artifact.OnnxStatus(included=False, reason="test"),
    )
    model_dir = artifact.write_model_dir(tmp / "model", estimator=estimator, metadata=metadata, baseline=baseline, onnx_model=None)
    sha = artifact.pack(model_dir, tmp / artifact.TARBALL)
    return ModelArtifact((tmp / artifact.TARBALL).read_bytes(), sha)


@pytest.fixture(scope="session")
def model_artifact(baseline, tmp_path_factory) -> ModelArtifact:
    return make_artifact(tmp_path_factory.mktemp("artifact"), baseline, "3")


@pytest.fixture(scope="session")
def next_model_artifact(baseline, tmp_path_factory) -> ModelArtifact:
    """The model promoted after model_artifact (same baseline, another version and hash)."""
    return make_artifact(tmp_path_factory.mktemp("artifact4"), baseline, "4")


@pytest.fixture
def scheduled_event() -> dict:
    return json.loads((EVENTS / "drift_scheduled_event.json").read_text())


@pytest.fixture
def aws(monkeypatch, model_artifact):
    """Buckets, the packed model, the function's environment; the handler module bound to this mock."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("capture", "reports", "artifacts"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="artifacts", Key="churn/3/model.tar.gz", Body=model_artifact.tarball)
        for name, value in {
            "CAPTURE_BUCKET": "capture", "REPORTS_BUCKET": "reports", "MODEL_NAME": "churn",
            "MODEL_DATA_URL": "s3://artifacts/churn/3/model.tar.gz", "MODEL_SHA256": model_artifact.sha256,
            "MIN_ROWS": "500", "DRIFT_WORKERS": "1", "CHECKPOINT_EVERY_FILES": "1",
        }.items():
            monkeypatch.setenv(name, value)
        from drift_check import app, model_source

        monkeypatch.setattr(app, "s3", s3)
        model_source._CACHE.clear()
        yield SimpleNamespace(s3=s3, app=app)
