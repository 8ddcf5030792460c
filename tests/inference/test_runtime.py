"""The ONNX path and the joblib fallback answer alike; the ONNX path never imports scikit-learn or unpickles."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.inference.serving_helpers import load_app

REPO = Path(__file__).resolve().parents[2]


def _client(monkeypatch, model_dir, runtime):
    module = load_app(monkeypatch, MODEL_DIR=str(model_dir), SERVING_RUNTIME=runtime)
    assert module.state.predictor is not None, module.state.reason
    return TestClient(module.app)


def _both(monkeypatch, model_dir, rows):
    """The batch answers of the ONNX path and of the joblib fallback."""
    answers = []
    for runtime in ("onnxruntime", "scikit-learn"):
        response = _client(monkeypatch, model_dir, runtime).post("/predict/batch", json={"instances": rows})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def _agree(onnx, sklearn, tolerance):
    if "probabilities" in onnx:  # a classifier: the same classes, probabilities within the tolerance
        assert onnx["predictions"] == sklearn["predictions"]
        for a, b in zip(onnx["probabilities"], sklearn["probabilities"], strict=True):
            assert a == pytest.approx(b, abs=tolerance)
    else:
        assert onnx["predictions"] == pytest.approx(sklearn["predictions"], abs=tolerance)


def test_breast_cancer_onnx_and_joblib_agree(monkeypatch, breast_cancer_dir, breast_cancer_rows):
    _agree(*_both(monkeypatch, breast_cancer_dir, breast_cancer_rows), tolerance=1e-9)


def test_mixed_schema_onnx_and_joblib_agree(monkeypatch, mixed_dir):
    rows = [{"size": s, "color": c, "count": n, "code": k}
            for s, c, n, k in [(12.5, "red", 3, "1"), (None, "blue", 0, "2"), (8.0, None, 4, "1"), (10.0, "mauve", 1, 2)]]
    _agree(*_both(monkeypatch, mixed_dir, rows), tolerance=1e-6)


def test_regression_onnx_and_joblib_agree(monkeypatch, regression_dir):
    _agree(*_both(monkeypatch, regression_dir, [{"a": a, "b": b} for a, b in [(0.0, 0.0), (1.5, -2.0), (-3, 4)]]),
           tolerance=1e-6)


def test_artifact_without_onnx_falls_back_to_joblib(monkeypatch, joblib_only_dir, breast_cancer_rows):
    client = _client(monkeypatch, joblib_only_dir, "auto")
    assert client.get("/model-info").json()["runtime"] == "scikit-learn"
    assert client.get("/health").json()["runtime"] == "scikit-learn"
    assert client.post("/predict", json={"features": breast_cancer_rows[0]}).json()["prediction"] == "malignant"


def test_onnx_path_imports_no_scikit_learn_and_loads_no_pickle(breast_cancer_dir, breast_cancer_rows):
    """Nor what only the OpenAPI document or tracing need: each would lengthen the cold start."""
    script = f"""
import json, sys
from inference.app import app
from fastapi.testclient import TestClient
body = TestClient(app).post("/predict", json={{"features": {json.dumps(breast_cancer_rows[0])}}}).json()
loaded = [m for m in ("sklearn", "joblib", "pydantic.v1", "inference.api_models", "aws_xray_sdk") if m in sys.modules]
print(json.dumps({{"prediction": body["prediction"], "loaded": loaded}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")} | {
        "MODEL_DIR": str(breast_cancer_dir), "POWERTOOLS_TRACE_DISABLED": "true"}
    # cwd: the repository, so `python -c` finds the tests package there.
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"prediction": "malignant", "loaded": []}


def test_first_invocation_of_a_fresh_process_counts_a_cold_start(breast_cancer_dir, breast_cancer_rows):
    script = f"""
import json
from types import SimpleNamespace
from tests.inference.serving_helpers import api_event
from inference.app import handler
context = SimpleNamespace(function_name="inference", function_version="3", memory_limit_in_mb=1024,
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:inference:live",
                          aws_request_id="r")
for _ in range(2):
    handler(api_event("v1", "POST", "/predict", {{"features": {json.dumps(breast_cancer_rows[0])}}}), context)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")} | {
        "MODEL_DIR": str(breast_cancer_dir), "POWERTOOLS_TRACE_DISABLED": "true"}
    # cwd: the repository, so `python -c` finds the tests package there.
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    blobs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"_aws"')]
    assert [b["ColdStart"] for b in blobs if "ColdStart" in b] == [[1.0]]
    assert sum(1 for b in blobs if "PredictionLatency" in b) == 2
