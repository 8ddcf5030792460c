"""Batch scoring tests: the serving tests' models (trained once per session), inputs written as files."""
from __future__ import annotations

from tests.inference.conftest import breast_cancer_dir, mixed_dir, regression_dir  # noqa: F401
