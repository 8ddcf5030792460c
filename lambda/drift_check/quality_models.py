"""Which model a captured version was: its training hold-out metrics and calibration, for the model-quality check.

The live version is the configured artifact (MODEL_DATA_URL, MODEL_SHA256, as the drift check); another version
(an earlier one still in the horizon, or a canary's) is looked up in the SageMaker registry: by package version
when the captured version is a number, else by the artifact's own version id, and fetched sha-checked. A version
that cannot be resolved is judged on its realized metrics and the floors only, with a note saying why.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contracts.artifact import ArtifactError, Metadata
from contracts.artifact_fetch import boto3_download, fetch_artifact
from drift_check.model_source import ProductionModel
from training import registry

# (url, sha256) → metadata: an artifact never changes under its sha256, so this may outlive a run.
_FETCHED: dict[tuple[str, str], Metadata] = {}


@dataclass(frozen=True)
class VersionModel:
    """The metadata a version is judged with; note says why it has no training baseline (None: it has one)."""

    metadata: Metadata
    url: str | None = None
    sha256: str | None = None
    note: str | None = None
    retry: bool = False  # unresolved because of an error that may pass (access, throttling), not a missing version

    @property
    def identity(self) -> str:
        """What a window's result depends on besides its data: the artifact, or why there is none."""
        return self.sha256 or f"unresolved: {self.note}"


def fetch_metadata(s3: Any, url: str, sha256: str) -> Metadata:
    """The artifact's metadata, its tarball checked against sha256 and its manifest (nothing is unpickled)."""
    cached = _FETCHED.get((url, sha256))
    if cached is None:
        with tempfile.TemporaryDirectory(prefix="quality-model-") as tmp:
            fetched = fetch_artifact(url, Path(tmp) / "model", boto3_download(s3), expected_sha256=sha256 or None)
        cached = _FETCHED[(url, sha256)] = fetched.artifact.metadata
    return cached


class VersionModels:
    """One run's lookups: each version resolved at most once."""

    def __init__(self, s3: Any, sagemaker: Any, model_name: str, live: ProductionModel, live_versions: set[str]):
        self._s3, self._sagemaker, self._model_name = s3, sagemaker, model_name
        self._live = VersionModel(live.metadata, live.url, live.sha256)
        self._live_versions = live_versions
        self._found: dict[str, VersionModel] = {}

    @property
    def live(self) -> VersionModel:
        return self._live

    def is_live(self, version: str) -> bool:
        return version in self._live_versions

    def get(self, version: str) -> VersionModel:
        if version in self._live_versions:
            return self._live
        if version not in self._found:
            self._found[version] = self._resolve(version)
        return self._found[version]

    def _resolve(self, version: str) -> VersionModel:
        try:
            package = self._package(version)
            if package is None:
                return self._unresolved(version, f"version {version} is not in the {self._model_name} registry")
            meta = fetch_metadata(self._s3, package.model_data_url, package.sha256)
        except registry.RegistryError as exc:
            return self._unresolved(version, str(exc))
        except (ArtifactError, ValueError) as exc:  # the registry's entry or its tarball is wrong: asking again won't help
            return self._unresolved(version, f"version {version}'s artifact cannot be used: {exc}")
        except (ClientError, BotoCoreError, OSError) as exc:
            return self._unresolved(version, f"version {version} could not be fetched: {exc}", retry=True)
        return VersionModel(meta, package.model_data_url, package.sha256)

    def _package(self, version: str) -> registry.ModelVersion | None:
        if version.isdigit():
            return registry.resolve(self._sagemaker, self._model_name, int(version))
        # Serving without MODEL_VERSION captures the artifact's own version id.
        matches = [v for v in registry.list_versions(self._sagemaker, self._model_name) if v.model_version == version]
        return matches[-1] if matches else None

    def _unresolved(self, version: str, why: str, *, retry: bool = False) -> VersionModel:
        """The live model's task and classes, no training metrics and no calibration: floors only."""
        meta = self._live.metadata.model_copy(update={"metrics": {}, "calibration": None, "model_version": version})
        return VersionModel(meta, note=f"no training baseline ({why}): judged against the floors only", retry=retry)
