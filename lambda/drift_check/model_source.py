"""The production model's baseline, downloaded and verified once per execution environment.

Only metadata.json and baseline.json are read: the drift check never unpickles the model.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.artifact import Metadata
from contracts.artifact_fetch import boto3_download, fetch_artifact
from contracts.baseline import Baseline
from contracts.s3_uri import split_s3_uri


@dataclass(frozen=True)
class ProductionModel:
    url: str
    sha256: str
    metadata: Metadata
    baseline: Baseline

    @property
    def name(self) -> str:
        return self.metadata.model_name

    @property
    def version(self) -> str:
        return self.metadata.model_version


_CACHE: dict[tuple[str, str], ProductionModel] = {}


def parse_s3_url(url: str) -> tuple[str, str]:
    try:
        return split_s3_uri(url)
    except ValueError:
        raise ValueError(f"MODEL_DATA_URL must look like s3://bucket/key/model.tar.gz, got {url!r}") from None


def load_model(s3: Any, url: str, sha256: str) -> ProductionModel:
    """Download model.tar.gz, check its sha256 and manifest (contracts.artifact_fetch), keep the result."""
    cached = _CACHE.get((url, sha256))
    if cached is not None:
        return cached
    parse_s3_url(url)
    with tempfile.TemporaryDirectory(prefix="drift-model-") as tmp:
        fetched = fetch_artifact(url, Path(tmp) / "model", boto3_download(s3), expected_sha256=sha256 or None)
        # The tarball's own hash identifies the baseline a checkpoint was counted with.
        model = ProductionModel(url=url, sha256=fetched.sha256, metadata=fetched.artifact.metadata,
                                baseline=Baseline.from_dict(fetched.artifact.baseline()))
    _CACHE.clear()  # one production model at a time
    _CACHE[(url, sha256)] = model
    return model
