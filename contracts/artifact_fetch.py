"""Fetching a model artifact: download model.tar.gz, check its sha256 and manifest, unpack. The one way in.

Serving, the drift check, the pipeline steps and promote all open artifacts through `fetch_artifact`;
they differ only in how the bytes arrive (serving's signed GET on its cold start, boto3 elsewhere)
and in which sha256 they trust (the registry's, or the function's configuration). Importing this module
costs only the standard library (the artifact contract, with pydantic, is imported when fetching), so
serving can use it before its heavy imports.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.s3_uri import split_s3_uri

if TYPE_CHECKING:
    from contracts.artifact import Artifact

# (bucket, key, local path) → an optional note on how it was read, for the logs.
Download = Callable[[str, str, Path], str | None]


@dataclass(frozen=True)
class FetchedArtifact:
    artifact: Artifact
    sha256: str  # of model.tar.gz: the expected one (checked) or, when none was given, the one measured
    download: str | None = None  # what the downloader said about how it read the object


def boto3_download(s3: Any) -> Download:
    """A downloader through a boto3 S3 client (its retries, redirects and credential chain)."""
    def download(bucket: str, key: str, path: Path) -> None:
        s3.download_file(bucket, key, str(path))
    return download


def tarball_path(dest: Path) -> Path:
    """Where the tarball of an artifact unpacked into `dest` is downloaded: beside it, removed after unpacking."""
    return dest.with_name(f"{dest.name}.tar.gz")


def fetch_artifact(url: str, dest: Path, download: Download, *, expected_sha256: str | None = None) -> FetchedArtifact:
    """Download s3://…/model.tar.gz, check it against expected_sha256 (when given) and its manifest, unpack into dest.

    Raises ValueError for a URL that is not s3://bucket/key, the downloader's own errors, and ArtifactError
    for a tarball that is modified, incomplete or unreadable. Nothing is unpickled here.
    """
    from contracts.artifact import sha256_file, unpack

    bucket, key = split_s3_uri(url)
    tarball = tarball_path(dest)
    shutil.rmtree(dest, ignore_errors=True)  # never mix the files of two extractions
    try:
        note = download(bucket, key, tarball)
        artifact = unpack(tarball, dest, expected_sha256=expected_sha256 or None)
        sha256 = expected_sha256 or sha256_file(tarball)  # unpack has checked the expected one
    finally:
        tarball.unlink(missing_ok=True)  # /tmp is small on Lambda; the unpacked files are what is kept
    return FetchedArtifact(artifact, sha256, note)
