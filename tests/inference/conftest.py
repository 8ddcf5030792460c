"""Fixtures for the serving tests: fake AWS, models trained by the real training code, API Gateway events."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from contracts import artifact
from demo.data import TARGET, write_breast_cancer_csv
from inference import firehose_lines
from tests.inference.serving_helpers import copy_artifact
from training.train import TrainConfig, train

SERVING_ENV = ("MODEL_DATA_URL", "MODEL_SHA256", "MODEL_DIR", "MODEL_NAME", "MODEL_VERSION", "MODEL_PACKAGE_ARN",
               "CAPTURE_STREAM", "CAPTURE_SAMPLE_RATE", "LABELS_STREAM", "FEEDBACK_MAX_LABELS", "MAX_BATCH", "STRICT_CATEGORIES", "SERVING_RUNTIME",
               "MODEL_WORK_DIR")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No serving variable leaks in from the shell (fake credentials: tests/conftest.py)."""
    for name in SERVING_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "inference")
    monkeypatch.setenv("MODEL_WORK_DIR", str(tmp_path))
    # moto in-process answers botocore only: capture and feedback go through botocore's client here. The signed
    # call is tested on its own (test_firehose_put.py) and end to end on the moto server (tests/e2e).
    monkeypatch.setattr(firehose_lines, "signed_client", lambda env: None)


# ------------------------------------------------------------------ models (trained once per session)


@pytest.fixture(scope="session")
def breast_cancer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model: breast cancer, binary, all numeric, training's defaults (ONNX included)."""
    root = tmp_path_factory.mktemp("breast-cancer")
    csv = write_breast_cancer_csv(root / "data.csv")
    result = train(csv, root / "model", TrainConfig(target=TARGET, model_name="breast-cancer", model_version="7"))
    assert result.metadata.onnx.included, result.metadata.onnx.reason
    return result.model_dir


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    return path


@pytest.fixture(scope="session")
def mixed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Multiclass with categorical features and missing values (numeric and categorical)."""
    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(240):
        size = rng.normal(10, 3)
        color = ["red", "green", "blue"][i % 3]
        count = int(rng.integers(0, 5))
        label = "big" if size > 11 else ("warm" if color == "red" else "other")
        rows.append(["" if i % 10 == 0 else round(size, 3), "" if i % 15 == 0 else color, count,
                     ["1", "2"][i % 2], label])
    csv = _write_csv(root / "data.csv", ["size", "color", "count", "code", "kind"], rows)
    result = train(csv, root / "model", TrainConfig(target="kind", model_name="mixed", categorical=["color", "code"]))
    assert result.metadata.onnx.included, result.metadata.onnx.reason
    return result.model_dir


@pytest.fixture(scope="session")
def regression_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("regression")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 2))
    y = 3 * x[:, 0] - 2 * x[:, 1] + rng.normal(scale=0.1, size=120)
    csv = _write_csv(root / "data.csv", ["a", "b", "y"], [[round(a, 4), round(b, 4), round(t, 4)] for (a, b), t in zip(x, y)])
    result = train(csv, root / "model", TrainConfig(target="y", model_name="regression", task="regression"))
    return result.model_dir


@pytest.fixture(scope="session")
def joblib_only_dir(breast_cancer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_artifact(breast_cancer_dir, tmp_path_factory.mktemp("joblib-only") / "model", drop_onnx=True)


@pytest.fixture(scope="session")
def breast_cancer_rows(breast_cancer_dir: Path) -> list[dict[str, float]]:
    """A few rows of the training data as request feature dicts."""
    from sklearn.datasets import load_breast_cancer

    names = artifact.read_metadata(breast_cancer_dir).feature_schema.names
    data = load_breast_cancer().data[:25]
    return [dict(zip(names, map(float, row))) for row in data]


@pytest.fixture
def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(function_name="inference", function_version="3", memory_limit_in_mb=1024,
                           invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:inference:live",
                           aws_request_id="52fdfc07-2182-454f-963f-5f0f9a621d72")
