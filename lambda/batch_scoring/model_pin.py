"""The model a job scores with: pinned when the job is planned, opened (and verified) where parts are scored.

Default: the live model, the one promoted to the serving function (the stacks give its registry
entry to the batch functions as they give it to the API). Or a named registry version, any but a
Rejected one, so a candidate can be scored before it is approved. Either way the tarball is checked
against the registry's sha256 and its manifest before anything is unpickled, as the API does.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import env
from contracts.artifact import Artifact, ArtifactError, open_artifact
from contracts.artifact_fetch import boto3_download, fetch_artifact
from contracts.batch_job import ModelPin
from contracts.env import Var
from inference.runtime import OnnxModel, SklearnModel, open_model


class ModelError(Exception):
    """No model can be pinned or opened; the message says why and what to do."""


@dataclass(frozen=True)
class LoadedModel:
    pin: ModelPin
    artifact: Artifact
    runtime: OnnxModel | SklearnModel


def live_pin(environ: Mapping[str, str] | None = None) -> ModelPin:
    url, sha256 = env.text(Var.MODEL_DATA_URL, env=environ), env.text(Var.MODEL_SHA256, env=environ).lower()
    if not url or len(sha256) != 64:
        raise ModelError("no model has been promoted, so there is no live model to score with: promote one "
                         "(mlops promote) or name a registry version (model_version)")
    return ModelPin(model_data_url=url, sha256=sha256, version=env.text(Var.MODEL_VERSION, env=environ),
                    package_arn=env.text(Var.MODEL_PACKAGE_ARN, env=environ), source="live")


def registry_pin(sagemaker: Any, model_name: str, version: int) -> ModelPin:
    from training import registry

    try:
        entry = registry.resolve(sagemaker, model_name, version)
    except registry.RegistryError as exc:
        raise ModelError(str(exc)) from exc
    if entry.approval_status == registry.REJECTED:
        raise ModelError(f"model {model_name!r} version {version} is Rejected: it is not scored")
    if not entry.model_data_url or len(entry.sha256) != 64:
        raise ModelError(f"model {model_name!r} version {version} has no model_data_url/artifact_sha256 in the registry")
    return ModelPin(model_data_url=entry.model_data_url, sha256=entry.sha256, version=str(entry.version),
                    package_arn=entry.arn, source=f"registry version {entry.version} ({entry.approval_status})")


def directory_pin(model_dir: Path) -> ModelPin:
    try:
        meta = open_artifact(model_dir).metadata
    except (ArtifactError, OSError) as exc:
        raise ModelError(f"{model_dir}: not a model artifact ({exc})") from exc
    return ModelPin(model_data_url=str(model_dir), sha256="", version=meta.model_version or "local", source="directory")


_loaded: dict[tuple[str, str], LoadedModel] = {}  # per process: a warm Lambda or a local worker opens it once


def load(pin: ModelPin, workdir: Path, s3: Any | None = None) -> LoadedModel:
    key = (pin.model_data_url, pin.sha256)
    if key not in _loaded:
        try:
            if pin.sha256:
                import boto3

                workdir.mkdir(parents=True, exist_ok=True)
                dest = workdir / f"model-{pin.sha256[:16]}"
                art = fetch_artifact(pin.model_data_url, dest, boto3_download(s3 or boto3.client("s3")),
                                     expected_sha256=pin.sha256).artifact
            else:
                art = open_artifact(pin.model_data_url)
            runtime = open_model(art)
        except ArtifactError as exc:
            raise ModelError(f"refusing {pin.model_data_url}: {exc}") from exc
        _loaded[key] = LoadedModel(pin, art, runtime)
    return _loaded[key]
