"""Fixtures for the reliability tests: the serving tests' fake AWS, demo model and Lambda context, plus the tarball.

The serving fixtures are imported from their conftest, so both folders test the same model trained the same way.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import inference.observability  # noqa: F401  (its log handler binds the session's stdout, not a test's capsys)
from contracts import artifact
from tests.inference import conftest as serving
from tests.reliability.reliability_helpers import breast_cancer_rows

# The serving tests' fixtures: a clean serving environment (autouse), the demo model, a Lambda context.
aws_env = serving.aws_env
breast_cancer_dir = serving.breast_cancer_dir
lambda_context = serving.lambda_context

# Read by the drift check and by botocore; the serving fixture (aws_env) clears the serving variables.
MORE_ENV = ("CAPTURE_BUCKET", "REPORTS_BUCKET", "MIN_ROWS", "DRIFT_WORKERS",
            "CHECKPOINT_EVERY_FILES", "STOP_MARGIN_SECONDS", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")


@pytest.fixture(autouse=True)
def no_drift_or_retry_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MORE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def bc_tarball(breast_cancer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """The demo model as SageMaker packs it: model.tar.gz bytes and their sha256."""
    path = tmp_path_factory.mktemp("reliability-tarball") / artifact.TARBALL
    sha = artifact.pack(breast_cancer_dir, path)
    return path.read_bytes(), sha


@pytest.fixture(scope="session")
def bc_rows(breast_cancer_dir: Path) -> list[dict[str, float]]:
    """All 569 rows of the data set as request feature objects."""
    return breast_cancer_rows(artifact.read_metadata(breast_cancer_dir).feature_schema.names)
