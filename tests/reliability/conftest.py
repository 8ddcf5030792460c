"""Fixtures for the reliability tests: the serving tests' fake AWS, demo model and Lambda context, plus the tarball.

The serving, drift and training test folders go on sys.path (as pytest puts them there when it
collects them) so their helper modules are imported, not copied; the serving fixtures are imported
from their conftest, so both folders test the same model trained the same way.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
for folder in ("serving", "drift", "training"):
    if str(TESTS / folder) not in sys.path:
        sys.path.append(str(TESTS / folder))

from reliability_helpers import breast_cancer_rows  # noqa: E402

import inference.observability  # noqa: E402, F401  (its log handler binds the session's stdout, not a test's capsys)
from tests.serving import conftest as serving  # noqa: E402
from training import artifact  # noqa: E402

# The serving tests' fixtures: a clean serving environment (autouse), the demo model, a Lambda context.
aws_env = serving.aws_env
breast_cancer_dir = serving.breast_cancer_dir
lambda_context = serving.lambda_context

# Read by the drift check and by botocore; the serving fixture (aws_env) clears the serving variables.
MORE_ENV = ("CAPTURE_BUCKET", "CAPTURE_PREFIX", "REPORTS_BUCKET", "MIN_ROWS", "CHECKPOINT_KEY", "DRIFT_WORKERS",
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
