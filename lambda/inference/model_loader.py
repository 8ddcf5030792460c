"""Finding, verifying and opening the model artifact this execution environment serves.

MODEL_DIR (an unpacked artifact, for development) or MODEL_DATA_URL (s3://…/model.tar.gz)
with MODEL_SHA256 from the function's configuration: the tarball's hash and the
manifest are checked before anything is loaded. Failures come back as a reason, not an
exception, so the service starts and answers 503 instead of crash-looping.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from inference.settings import Settings
from training import artifact
from training.artifact import Artifact, ArtifactError

NO_MODEL = "no model has been promoted: MODEL_DATA_URL (or MODEL_DIR) is not set"


class ModelUnavailable(Exception):
    """The configured model cannot be served; the message is the reason given to callers."""


@dataclass(frozen=True)
class Source:
    """Where the artifact came from, for /model-info."""

    kind: str  # "s3" or "directory"
    location: str


def locate(settings: Settings) -> tuple[Artifact, Source]:
    """The verified artifact the settings name; raises ModelUnavailable with the reason."""
    if settings.model_dir:
        return _open_dir(settings.model_dir), Source("directory", settings.model_dir)
    if settings.model_data_url:
        return _from_s3(settings), Source("s3", settings.model_data_url)
    raise ModelUnavailable(NO_MODEL)


def _open_dir(model_dir: str) -> Artifact:
    if not Path(model_dir).is_dir():
        raise ModelUnavailable(f"MODEL_DIR={model_dir!r} is not a directory")
    try:
        return artifact.open_artifact(model_dir)
    except ArtifactError as exc:
        raise ModelUnavailable(f"refusing the artifact in {model_dir}: {exc}") from exc


def _from_s3(settings: Settings) -> Artifact:
    url = urlparse(settings.model_data_url)
    if url.scheme != "s3" or not url.netloc or not url.path.strip("/"):
        raise ModelUnavailable(f"MODEL_DATA_URL={settings.model_data_url!r}: expected s3://bucket/key/model.tar.gz")
    if len(settings.model_sha256) != 64:
        raise ModelUnavailable("MODEL_SHA256 is not set to the registry's sha256 of model.tar.gz: refusing to load an unverified model")
    work = Path(settings.work_dir)
    tarball = work / f"model-{settings.model_sha256[:16]}.tar.gz"
    dest = work / f"model-{settings.model_sha256[:16]}"
    try:
        _download(url.netloc, url.path.lstrip("/"), tarball)
        shutil.rmtree(dest, ignore_errors=True)  # never mix files of two extractions
        return artifact.unpack(tarball, dest, expected_sha256=settings.model_sha256)
    except ArtifactError as exc:
        raise ModelUnavailable(f"refusing {settings.model_data_url}: {exc}") from exc
    finally:
        tarball.unlink(missing_ok=True)  # /tmp is small; the extracted files are what we keep


def _download(bucket: str, key: str, dest: Path) -> None:
    """get_object streamed to a file: lighter than the managed transfer for one small object."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        with open(dest, "wb") as fh:
            shutil.copyfileobj(body, fh, 1 << 20)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ModelUnavailable(f"cannot read s3://{bucket}/{key}: {code}") from exc
    except BotoCoreError as exc:
        raise ModelUnavailable(f"cannot read s3://{bucket}/{key}: {exc}") from exc
