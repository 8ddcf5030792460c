"""The artifact contract: manifest checks, safe unpacking, library-version refusal."""
import io
import json
import tarfile

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from contracts import artifact
from contracts.schema import Feature, FeatureSchema, FeatureType


def _metadata(**overrides) -> artifact.Metadata:
    fields = dict(
        model_name="m", model_version="v1", task="binary",
        feature_schema=FeatureSchema(target="y", features=[Feature(name="x", type=FeatureType.NUMERIC, min=0, max=1)]),
        classes=["0", "1"], metrics={"accuracy": 1.0}, hyperparameters={"seed": 1},
        training_data_sha256="0" * 64, library_versions=artifact.library_versions(),
        created_at=artifact.utc_now(), onnx=artifact.OnnxStatus(included=False, reason="test"),
    )
    fields.update(overrides)
    return artifact.Metadata(**fields)


@pytest.fixture
def model_dir(tmp_path):
    est = LogisticRegression().fit(np.array([[0.0], [1.0], [0.1], [0.9]]), ["0", "1", "0", "1"])
    return artifact.write_model_dir(tmp_path / "model", estimator=est, metadata=_metadata(), baseline={"b": 1}, onnx_model=None)


def test_round_trip_through_tarball(model_dir, tmp_path):
    sha = artifact.pack(model_dir, tmp_path / "model.tar.gz")
    art = artifact.unpack(tmp_path / "model.tar.gz", tmp_path / "x", expected_sha256=sha)
    assert art.metadata.model_version == "v1"
    assert not art.has_onnx
    assert art.baseline() == {"b": 1}
    assert list(art.load_estimator().predict(np.array([[0.95]]))) == ["1"]


def test_tarball_hash_mismatch_is_refused_before_extraction(model_dir, tmp_path):
    artifact.pack(model_dir, tmp_path / "model.tar.gz")
    with pytest.raises(artifact.TamperedArtifact, match="registry entry says"):
        artifact.unpack(tmp_path / "model.tar.gz", tmp_path / "x", expected_sha256="f" * 64)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_modified_file_is_refused(model_dir):
    (model_dir / artifact.MODEL_JOBLIB).write_bytes(b"not the model")
    with pytest.raises(artifact.TamperedArtifact, match="model.joblib"):
        artifact.open_artifact(model_dir)


def test_missing_manifest_or_file_is_incomplete(model_dir):
    (model_dir / artifact.BASELINE).unlink()
    with pytest.raises(artifact.IncompleteArtifact, match="baseline.json"):
        artifact.open_artifact(model_dir)
    (model_dir / artifact.MANIFEST).unlink()
    with pytest.raises(artifact.IncompleteArtifact, match="manifest.json is missing"):
        artifact.open_artifact(model_dir)


def test_manifest_cannot_point_outside(model_dir):
    manifest = json.loads((model_dir / artifact.MANIFEST).read_text())
    manifest["sha256"]["../evil"] = "0" * 64
    (model_dir / artifact.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(artifact.TamperedArtifact, match="outside"):
        artifact.open_artifact(model_dir)


def test_path_traversal_in_tarball_is_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../outside.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(artifact.IncompleteArtifact, match="cannot be extracted"):
        artifact.unpack(evil, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()


def test_library_mismatch_names_the_library(model_dir):
    meta = artifact.read_metadata(model_dir)
    with pytest.raises(artifact.LibraryMismatch, match="scikit-learn 0.1 .trained."):
        artifact.check_library_versions(meta.model_copy(update={"library_versions": {"scikit-learn": "0.1"}}))


def test_rewriting_a_dir_without_onnx_drops_a_stale_onnx(model_dir):
    (model_dir / artifact.MODEL_ONNX).write_bytes(b"old")
    est = artifact.open_artifact  # any picklable object will do for this check
    artifact.write_model_dir(model_dir, estimator=est, metadata=_metadata(), baseline={}, onnx_model=None)
    assert not (model_dir / artifact.MODEL_ONNX).exists()
    assert artifact.MODEL_ONNX not in json.loads((model_dir / artifact.MANIFEST).read_text())["sha256"]
