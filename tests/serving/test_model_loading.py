"""Loading the model at import: from S3 (moto) with the registry's sha256, and every way it is refused (503, no crash)."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from serving_helpers import VERSIONS, api_event, copy_artifact, invoke, load_app

from training import artifact

BUCKET = "artifacts"
KEY = "models/breast-cancer/run-1/output/model.tar.gz"
URL = f"s3://{BUCKET}/{KEY}"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def upload(s3, model_dir: Path, tmp_path: Path) -> str:
    """Pack the directory as SageMaker does, upload it, return the tarball's sha256."""
    sha = artifact.pack(model_dir, tmp_path / "upload" / "model.tar.gz")
    s3.upload_file(str(tmp_path / "upload" / "model.tar.gz"), BUCKET, KEY)
    return sha


def unavailable(module, lambda_context, version="v1"):
    """The 503 answers of predict, health and model-info; returns the reason."""
    status, body = invoke(module, api_event(version, "POST", "/predict", {"features": {}}), lambda_context)
    assert status == 503
    h_status, health = invoke(module, api_event(version, "GET", "/health"), lambda_context)
    assert h_status == 503 and health["model_loaded"] is False and health["reason"] == body["detail"]
    assert invoke(module, api_event(version, "GET", "/model-info"), lambda_context)[0] == 503
    return body["detail"]


@pytest.mark.parametrize("version", VERSIONS)
def test_loads_from_s3_after_checking_the_registry_hash(s3, monkeypatch, breast_cancer_dir, breast_cancer_rows,
                                                        tmp_path, lambda_context, version):
    sha = upload(s3, breast_cancer_dir, tmp_path)
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256=sha, MODEL_VERSION="3")
    status, body = invoke(served, api_event(version, "POST", "/predict", {"features": breast_cancer_rows[0]}), lambda_context)
    assert status == 200 and body["model_version"] == "3"
    info = invoke(served, api_event(version, "GET", "/model-info"), lambda_context)[1]
    assert info["source"] == f"s3: {URL}"
    assert not list(tmp_path.glob("*.tar.gz")), "the downloaded tarball is removed once extracted"


def test_no_model_configured(monkeypatch, lambda_context):
    served = load_app(monkeypatch)
    assert unavailable(served, lambda_context).startswith("no model has been promoted")


def test_tarball_hash_differs_from_the_registry(s3, monkeypatch, breast_cancer_dir, tmp_path, lambda_context, caplog):
    upload(s3, breast_cancer_dir, tmp_path)
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256="0" * 64)
    reason = unavailable(served, lambda_context, "v2")
    assert "the registry entry says 000000000000" in reason and "refusing" in reason
    refused = [r for r in caplog.records if r.getMessage() == "model refused"]
    assert refused and refused[0].levelname == "ERROR" and refused[0].reason == reason


def test_file_modified_inside_the_tarball(s3, monkeypatch, breast_cancer_dir, tmp_path, lambda_context):
    tampered = copy_artifact(breast_cancer_dir, tmp_path / "tampered")
    with open(tampered / artifact.MODEL_ONNX, "ab") as fh:
        fh.write(b"\0")  # after the manifest was written: the manifest no longer matches
    sha = upload(s3, tampered, tmp_path)
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256=sha)
    assert "model.onnx has sha256" in unavailable(served, lambda_context) and "modified" in unavailable(served, lambda_context)


def test_incomplete_tarball(s3, monkeypatch, breast_cancer_dir, tmp_path, lambda_context):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(breast_cancer_dir / artifact.MODEL_JOBLIB, arcname=artifact.MODEL_JOBLIB)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=buffer.getvalue())
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256=artifact.sha256_bytes(buffer.getvalue()))
    assert "manifest.json is missing" in unavailable(served, lambda_context)


def test_missing_object(s3, monkeypatch, lambda_context):
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256="a" * 64)
    assert unavailable(served, lambda_context) == f"cannot read {URL}: NoSuchKey"


@pytest.mark.parametrize("env, expected", [
    ({"MODEL_DATA_URL": URL}, "MODEL_SHA256 is not set"),
    ({"MODEL_DATA_URL": "https://example.com/model.tar.gz", "MODEL_SHA256": "a" * 64}, "expected s3://bucket/key"),
    ({"MODEL_DIR": "/nonexistent/model"}, "is not a directory"),
    ({"MAX_BATCH": "0"}, "MAX_BATCH='0': expected a positive integer"),
    ({"CAPTURE_SAMPLE_RATE": "2"}, "CAPTURE_SAMPLE_RATE='2'"),
    ({"SERVING_RUNTIME": "tensorflow"}, "SERVING_RUNTIME='tensorflow'"),
])
def test_bad_configuration_is_a_reason_not_a_crash(monkeypatch, lambda_context, env, expected):
    served = load_app(monkeypatch, **env)
    assert expected in unavailable(served, lambda_context)


def test_library_mismatch_refuses_the_pickle(monkeypatch, breast_cancer_dir, tmp_path, lambda_context):
    other = copy_artifact(breast_cancer_dir, tmp_path / "old", drop_onnx=True, library_versions={"scikit-learn": "0.24.2"})
    served = load_app(monkeypatch, MODEL_DIR=str(other))
    reason = unavailable(served, lambda_context)
    assert "scikit-learn 0.24.2 (trained)" in reason and "Retrain it" in reason


def test_library_mismatch_does_not_matter_to_onnx(monkeypatch, breast_cancer_dir, tmp_path, lambda_context):
    """No pickle is loaded on the ONNX path, so the versions that wrote it do not matter."""
    other = copy_artifact(breast_cancer_dir, tmp_path / "old", library_versions={"scikit-learn": "0.24.2"})
    served = load_app(monkeypatch, MODEL_DIR=str(other))
    assert invoke(served, api_event("v1", "GET", "/health"), lambda_context)[0] == 200


def test_onnx_runtime_asked_for_but_absent(monkeypatch, joblib_only_dir, lambda_context):
    served = load_app(monkeypatch, MODEL_DIR=str(joblib_only_dir), SERVING_RUNTIME="onnxruntime")
    assert "has no model.onnx" in unavailable(served, lambda_context)


def test_load_failure_is_counted(monkeypatch, lambda_context, capsys):
    served = load_app(monkeypatch, MODEL_DIR="/nonexistent/model")
    capsys.readouterr()
    served.handler(api_event("v1", "GET", "/health"), lambda_context)
    assert '"ModelLoadFailures":[1.0]' in capsys.readouterr().out
