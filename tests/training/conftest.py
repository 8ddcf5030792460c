"""Fixtures for the training-pipeline tests: fake AWS, tiny generated data sets, models trained once."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from contracts import artifact
from demo.data import TARGET as BC_TARGET
from demo.data import write_breast_cancer_csv
from tests.training.training_helpers import binary_rows, multiclass_rows, regression_rows, write_csv
from training.train import TrainConfig, TrainResult, train

PIPELINE_ENV = ("DATA_BUCKET", "ARTIFACTS_BUCKET", "REPORTS_BUCKET", "EVAL_TOLERANCE", "EVAL_FLOOR", "AUTO_APPROVE",
                "MIN_ROWS", "MAX_MISSING_RATE", "IMAGE_URI", "SM_ROOT",
                "SM_CHANNEL_TRAIN", "SM_CHANNEL_TEST", "SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pipeline variable leaks in from the shell (fake credentials: tests/conftest.py)."""
    for name in PIPELINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "pipeline")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_csv(root / "binary.csv", *binary_rows())
    write_csv(root / "multiclass.csv", *multiclass_rows())
    write_csv(root / "regression.csv", *regression_rows())
    write_breast_cancer_csv(root / "breast_cancer.csv")
    return root


@pytest.fixture(scope="session")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainResult]:
    """One model per task with the default algorithm (trained once for the session)."""
    root = tmp_path_factory.mktemp("models")
    configs = {
        "binary": TrainConfig(target="label", model_name="tiny-binary", categorical=["color"]),
        "multiclass": TrainConfig(target="kind", model_name="tiny-multi", categorical=["shape"]),
        "regression": TrainConfig(target="price", model_name="tiny-reg"),
        "breast_cancer": TrainConfig(target=BC_TARGET, model_name="breast-cancer"),
    }
    files = {"binary": "binary.csv", "multiclass": "multiclass.csv", "regression": "regression.csv",
             "breast_cancer": "breast_cancer.csv"}
    return {name: train(data_dir / files[name], root / name, cfg, output_data_dir=root / f"{name}-output")
            for name, cfg in configs.items()}


@pytest.fixture(scope="session")
def bc_tarball(trained: dict[str, TrainResult], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The breast-cancer model as model.tar.gz and its sha256."""
    path = tmp_path_factory.mktemp("tarball") / artifact.TARBALL
    return path, artifact.pack(trained["breast_cancer"].model_dir, path)


@pytest.fixture
def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(function_name="pipeline-test", memory_limit_in_mb=1024, aws_request_id="req-1",
                           invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:pipeline-test")
