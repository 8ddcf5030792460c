"""Fetching an artifact: the sha256 and manifest are checked before it is opened; nothing is left half-done."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from contracts import artifact
from contracts.artifact_fetch import fetch_artifact, tarball_path
from tests.contracts.test_artifact import _metadata


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, str]:
    est = LogisticRegression().fit(np.array([[0.0], [1.0], [0.1], [0.9]]), ["0", "1", "0", "1"])
    model_dir = artifact.write_model_dir(tmp_path / "src", estimator=est, metadata=_metadata(), baseline={"b": 1},
                                         onnx_model=None)
    tarball = tmp_path / "published" / artifact.TARBALL
    return tarball, artifact.pack(model_dir, tarball)


def copier(source: Path, seen: list[tuple[str, str]]):
    def download(bucket: str, key: str, path: Path) -> str:
        seen.append((bucket, key))
        shutil.copyfile(source, path)
        return "copied"
    return download


def test_fetch_checks_unpacks_and_removes_the_tarball(packed, tmp_path):
    tarball, sha = packed
    seen: list[tuple[str, str]] = []
    dest = tmp_path / "work" / "model"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("from an earlier extraction")
    fetched = fetch_artifact("s3://bucket/models/m/model.tar.gz", dest, copier(tarball, seen), expected_sha256=sha)
    assert seen == [("bucket", "models/m/model.tar.gz")]
    assert fetched.sha256 == sha and fetched.download == "copied" and fetched.artifact.metadata.model_version == "v1"
    assert not (dest / "stale.txt").exists() and not tarball_path(dest).exists()


def test_without_an_expected_hash_the_measured_one_is_returned(packed, tmp_path):
    tarball, sha = packed
    assert fetch_artifact("s3://b/k.tar.gz", tmp_path / "m", copier(tarball, [])).sha256 == sha


def test_a_tarball_that_differs_from_the_expected_hash_is_refused_and_removed(packed, tmp_path):
    tarball, _ = packed
    with pytest.raises(artifact.TamperedArtifact, match="registry entry says"):
        fetch_artifact("s3://b/k.tar.gz", tmp_path / "m", copier(tarball, []), expected_sha256="0" * 64)
    assert not tarball_path(tmp_path / "m").exists()


def test_a_failed_download_leaves_nothing_behind(tmp_path):
    def broken(bucket: str, key: str, path: Path) -> None:
        path.write_bytes(b"half")
        raise ConnectionError("reset")

    with pytest.raises(ConnectionError):
        fetch_artifact("s3://b/k.tar.gz", tmp_path / "m", broken)
    assert list(tmp_path.iterdir()) == []


def test_a_url_that_is_not_s3_is_refused_before_any_download(tmp_path):
    with pytest.raises(ValueError, match="not an s3://bucket/key URI"):
        fetch_artifact("https://example.com/model.tar.gz", tmp_path / "m", copier(tmp_path / "none", []))
