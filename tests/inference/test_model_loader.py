"""Loading the model at import: from S3 (moto) with the registry's sha256, and every way it is refused (503, no crash).

S3 is moto in server mode on loopback (AWS_ENDPOINT_URL), not mock_aws: the download is a signed HTTP GET
of its own, which mock_aws (it patches botocore) would not see.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from contracts import artifact
from demo.emulator import embedded_aws
from inference.model_loader import begin
from inference.s3_get import FetchError
from inference.settings import Settings
from tests.inference.serving_helpers import VERSIONS, api_event, copy_artifact, invoke, load_app

BUCKET = "artifacts"
KEY = "models/breast-cancer/run-1/output/model.tar.gz"
URL = f"s3://{BUCKET}/{KEY}"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    with embedded_aws() as url:
        yield url


@pytest.fixture
def s3(moto_server, monkeypatch):
    """An empty bucket on the moto server, which boto3 and the signed GET reach through AWS_ENDPOINT_URL."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


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


def loaded_log(caplog) -> dict:
    """The last "model loaded" log record (load_app may import the module once before reloading it)."""
    return [r for r in caplog.records if r.getMessage() == "model loaded"][-1].__dict__


@pytest.mark.parametrize("version", VERSIONS)
def test_loads_from_s3_after_checking_the_registry_hash(s3, monkeypatch, breast_cancer_dir, breast_cancer_rows,
                                                        tmp_path, lambda_context, version, caplog):
    sha = upload(s3, breast_cancer_dir, tmp_path)
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256=sha, MODEL_VERSION="3")
    status, body = invoke(served, api_event(version, "POST", "/predict", {"features": breast_cancer_rows[0]}), lambda_context)
    assert status == 200 and body["model_version"] == "3"
    info = invoke(served, api_event(version, "GET", "/model-info"), lambda_context)[1]
    assert info["source"] == f"s3: {URL}"
    assert loaded_log(caplog)["download"] == "signed GET", "credentials in the environment: no boto3 client"
    assert not list(tmp_path.glob("*.tar.gz")), "the downloaded tarball is removed once extracted"


def test_credentials_from_a_profile_go_through_boto3(s3, monkeypatch, breast_cancer_dir, tmp_path, lambda_context, caplog):
    sha = upload(s3, breast_cancer_dir, tmp_path)
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256=sha)
    assert invoke(served, api_event("v2", "GET", "/health"), lambda_context)[0] == 200
    assert loaded_log(caplog)["download"] == "boto3: no credentials in the environment"


def test_a_download_begun_for_other_settings_is_not_used(s3, breast_cancer_dir, tmp_path):
    from inference.app import load_state

    sha = upload(s3, breast_cancer_dir, tmp_path)
    env = {"MODEL_DATA_URL": URL, "MODEL_SHA256": sha, "MODEL_WORK_DIR": str(tmp_path)}
    missing = begin(Settings.from_env(env | {"MODEL_DATA_URL": f"s3://{BUCKET}/other/model.tar.gz"}))
    with pytest.raises(FetchError, match="NoSuchKey"):  # over before ours starts: both write the same file
        missing.download.wait()
    state = load_state(env, missing)
    assert state.predictor is not None, state.reason


def test_a_failure_in_the_background_download_is_a_reason(s3, monkeypatch, breast_cancer_dir, tmp_path, lambda_context):
    """The download thread cannot write its file: the error crosses over to the import, which serves 503 with it."""
    sha = upload(s3, breast_cancer_dir, tmp_path)
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256=sha, MODEL_WORK_DIR=str(tmp_path / "gone"))
    reason = unavailable(served, lambda_context)
    assert reason.startswith("the model cannot be loaded: FileNotFoundError") and str(tmp_path / "gone") in reason


def test_the_cold_path_imports_no_aws_sdk(s3, breast_cancer_dir, tmp_path):
    """A fresh interpreter: the loader starts the download before anything heavy is imported, and boto3 never is."""
    sha = upload(s3, breast_cancer_dir, tmp_path)
    code = ("import json, sys\nimport inference.model_loader\n"
            "early = sorted(m for m in ('boto3', 'botocore', 'fastapi', 'numpy', 'pydantic') if m in sys.modules)\n"
            "import inference.app\n"
            "sdk = sorted(m for m in ('boto3', 'botocore.client', 's3transfer') if m in sys.modules)\n"
            "print(json.dumps({'early': early, 'sdk': sdk, 'loaded': inference.app.state.reason}))")
    env = os.environ | {"MODEL_DATA_URL": URL, "MODEL_SHA256": sha, "MODEL_WORK_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert json.loads(out.stdout.splitlines()[-1]) == {"early": [], "sdk": [], "loaded": None}


def test_no_model_configured_names_the_next_command(monkeypatch, lambda_context, caplog):
    """The state of every first deploy: the 503 says what to run, with the deployment's model name filled in."""
    served = load_app(monkeypatch, MODEL_NAME="churn")
    reason = unavailable(served, lambda_context)
    assert reason.startswith("no model has been promoted yet")
    assert "`mlops promote --model-name churn --version <N>`" in reason
    assert "`mlops registry list --model-name churn`" in reason
    assert [r.levelname for r in caplog.records if r.getMessage() == "no model configured"] == ["WARNING"]
    assert not [r for r in caplog.records if r.getMessage() == "model refused"]  # not an error, not counted


def test_no_model_without_a_model_name_shows_a_placeholder(monkeypatch, lambda_context):
    assert "mlops promote --model-name <model-name> --version <N>" in unavailable(load_app(monkeypatch), lambda_context)


def test_tarball_hash_differs_from_the_registry(s3, monkeypatch, breast_cancer_dir, tmp_path, lambda_context, caplog):
    upload(s3, breast_cancer_dir, tmp_path)
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256="0" * 64, MODEL_NAME="breast-cancer")
    reason = unavailable(served, lambda_context, "v2")
    assert "the registry entry says 000000000000" in reason and "refusing" in reason
    assert reason.endswith("roll back with `mlops rollback --model-name breast-cancer`")
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
    assert unavailable(served, lambda_context) == (
        f"cannot read {URL}: NoSuchKey; next: promote another approved version, or roll back with "
        "`mlops rollback --model-name <model-name>`")


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


# ------------------------------------------------------------------ healing after a passing S3 failure


class FlakyFetch:
    """s3_get.fetch failing `failures` times with a passing fault (S3's SlowDown), then the real download."""

    def __init__(self, failures: int) -> None:
        from inference import s3_get

        self.real, self.failures, self.calls = s3_get.fetch, failures, 0

    def __call__(self, bucket: str, key: str, dest: Path, env=None) -> str:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise FetchError("SlowDown", transient=True)
        return self.real(bucket, key, dest, env)


def test_a_request_loads_the_model_again_once_the_interval_has_passed(s3, monkeypatch, breast_cancer_dir,
                                                                      breast_cancer_rows, tmp_path, lambda_context):
    import dataclasses

    from inference import s3_get

    sha = upload(s3, breast_cancer_dir, tmp_path)
    flaky = FlakyFetch(failures=10_000)
    monkeypatch.setattr(s3_get, "fetch", flaky)
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256=sha, MODEL_RETRY_SECONDS="45")
    reason = unavailable(served, lambda_context)
    assert "SlowDown" in reason and "a passing fault: loading is tried again at most every 45 s; retry then" in reason
    assert "rollback" not in reason  # nothing to change: the fault passes
    calls = flaky.calls
    unavailable(served, lambda_context)  # within the interval: answered from the state, S3 left alone
    assert flaky.calls == calls
    flaky.failures = 0  # S3 is back
    served.service.state = dataclasses.replace(served.service.state, retry_at=0.0)  # the interval has passed
    status, body = invoke(served, api_event("v1", "POST", "/predict", {"features": breast_cancer_rows[0]}), lambda_context)
    assert status == 200 and flaky.calls == calls + 1
    assert invoke(served, api_event("v1", "GET", "/health"), lambda_context)[1]["model_loaded"] is True


def test_a_refused_artifact_is_never_loaded_again(s3, monkeypatch, breast_cancer_dir, tmp_path, lambda_context):
    import dataclasses

    from inference import s3_get

    upload(s3, breast_cancer_dir, tmp_path)
    flaky = FlakyFetch(failures=0)
    monkeypatch.setattr(s3_get, "fetch", flaky)
    served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256="0" * 64)
    assert "sha256" in unavailable(served, lambda_context)
    assert served.service.state.transient is False
    calls = flaky.calls
    served.service.state = dataclasses.replace(served.service.state, retry_at=0.0)
    unavailable(served, lambda_context)
    assert flaky.calls == calls, "a tampered or mismatched artifact stays refused until a new version is deployed"


@pytest.mark.parametrize(("code", "status", "transient"), [
    ("SlowDown", 503, True), ("InternalError", 500, True), ("RequestTimeout", 400, True), ("Throttling", 429, True),
    ("AccessDenied", 403, False), ("NoSuchKey", 404, False), ("InvalidObjectState", 403, False)])
def test_s3_answers_are_told_apart_passing_from_definite(monkeypatch, tmp_path, code, status, transient):
    import boto3 as boto3_module
    from botocore.exceptions import ClientError

    from inference import s3_get

    class Refusing:
        def get_object(self, **kwargs):
            raise ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    monkeypatch.setattr(boto3_module, "client", lambda *a, **k: Refusing())
    with (tmp_path / "x").open("wb") as fh, pytest.raises(FetchError) as caught:
        s3_get._sdk_fetch("b", "k", fh, "test")
    assert (str(caught.value), caught.value.transient) == (code, transient)


def test_a_connection_failure_is_a_passing_fault(monkeypatch, tmp_path):
    import boto3 as boto3_module
    from botocore.exceptions import EndpointConnectionError

    from inference import s3_get

    class Unreachable:
        def get_object(self, **kwargs):
            raise EndpointConnectionError(endpoint_url="https://s3.example")

    monkeypatch.setattr(boto3_module, "client", lambda *a, **k: Unreachable())
    with (tmp_path / "x").open("wb") as fh, pytest.raises(FetchError) as caught:
        s3_get._sdk_fetch("b", "k", fh, "test")
    assert caught.value.transient is True
