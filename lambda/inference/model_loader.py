"""Finding, verifying and opening the model artifact this execution environment serves.

MODEL_DIR (an unpacked artifact, for development) or MODEL_DATA_URL (s3://…/model.tar.gz)
with MODEL_SHA256 from the function's configuration: the tarball's hash and the
manifest are checked before anything is loaded. Failures come back as a reason, not an
exception, so the service starts and answers 503 instead of crash-looping.
This module imports only the standard library at first (contracts.artifact, with pydantic,
when the artifact is opened), so `begin` can start the download before the heavy imports; the
download is then checked and unpacked by contracts.artifact_fetch, like every other artifact.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.artifact_fetch import fetch_artifact, tarball_path
from contracts.s3_uri import split_s3_uri
from inference import s3_get
from inference.settings import Settings

if TYPE_CHECKING:
    from contracts.artifact import Artifact

class ModelUnavailable(Exception):
    """The configured model cannot be served; the message is the reason given to callers.

    transient: S3 failed for a passing reason (throttled, 5xx, timed out), so loading again may work;
    a refused artifact, a missing object or a configuration problem is never transient.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class NoModelPromoted(ModelUnavailable):
    """Nothing to serve yet (every deployment starts so): the reason names the command that fixes it."""

    def __init__(self, model_name: str) -> None:
        name = model_name or "<model-name>"
        super().__init__(
            "no model has been promoted yet (MODEL_DATA_URL is empty): train a version, approve it, then run "
            f"`mlops promote --model-name {name} --version <N>` (`mlops registry list --model-name {name}` "
            "lists the versions and their approval)")


@dataclass(frozen=True)
class Source:
    """Where the artifact came from, for /model-info; how it was downloaded, for the logs."""

    kind: str  # "s3" or "directory"
    location: str
    download: str = ""  # "signed GET", or "boto3: <why the signed GET was not enough>"


@dataclass(frozen=True)
class Pending:
    """A model being located: for S3, its tarball already downloading in the background."""

    settings: Settings
    download: s3_get.Download | None = None


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    tarball: Path  # where the download goes
    dest: Path  # where it is extracted


def begin(settings: Settings) -> Pending:
    """Start the S3 download the settings call for (if any and they are valid); locate() finishes it."""
    if settings.model_dir or not settings.model_data_url:
        return Pending(settings)
    try:
        obj = s3_object(settings)
    except ModelUnavailable:  # locate() gives the reason
        return Pending(settings)
    return Pending(settings, s3_get.Download(obj.bucket, obj.key, obj.tarball))


def locate(settings: Settings, pending: Pending | None = None) -> tuple[Artifact, Source]:
    """The verified artifact the settings name; raises ModelUnavailable with the reason.

    pending: what begin(settings) started, waited for here (ignored if begun for other settings).
    """
    if settings.model_dir:
        return _open_dir(settings.model_dir), Source("directory", settings.model_dir)
    if settings.model_data_url:
        download = pending.download if pending is not None and pending.settings == settings else None
        art, how = _from_s3(settings, download)
        return art, Source("s3", settings.model_data_url, how)
    raise NoModelPromoted(settings.model_name)


def s3_object(settings: Settings) -> S3Object:
    """MODEL_DATA_URL and MODEL_SHA256 checked, and the local paths of the download."""
    try:
        bucket, key = split_s3_uri(settings.model_data_url)
    except ValueError:
        raise ModelUnavailable(f"MODEL_DATA_URL={settings.model_data_url!r}: expected s3://bucket/key/model.tar.gz") from None
    if len(settings.model_sha256) != 64:
        raise ModelUnavailable("MODEL_SHA256 is not set to the registry's sha256 of model.tar.gz: refusing to load an unverified model")
    dest = Path(settings.work_dir) / f"model-{settings.model_sha256[:16]}"
    return S3Object(bucket, key, tarball_path(dest), dest)


def _open_dir(model_dir: str) -> Artifact:
    from contracts import artifact

    if not Path(model_dir).is_dir():
        raise ModelUnavailable(f"MODEL_DIR={model_dir!r} is not a directory")
    try:
        return artifact.open_artifact(model_dir)
    except artifact.ArtifactError as exc:
        raise ModelUnavailable(f"refusing the artifact in {model_dir}: {exc}") from exc


def _from_s3(settings: Settings, download: s3_get.Download | None) -> tuple[Artifact, str]:
    """Download (or wait for the download begin() started), check the configured sha256 and the manifest, unpack."""
    from contracts.artifact import ArtifactError

    obj = s3_object(settings)

    def read(bucket: str, key: str, path: Path) -> str:
        return download.wait() if download is not None else s3_get.fetch(bucket, key, path)

    try:
        fetched = fetch_artifact(settings.model_data_url, obj.dest, read, expected_sha256=settings.model_sha256)
    except s3_get.FetchError as exc:
        raise ModelUnavailable(f"cannot read {settings.model_data_url}: {exc}", transient=exc.transient) from exc
    except ArtifactError as exc:
        raise ModelUnavailable(f"refusing {settings.model_data_url}: {exc}") from exc
    return fetched.artifact, fetched.download or ""
