"""The model artifact contract: what a trained model directory and its model.tar.gz hold.

Training writes it with `write_model_dir` (SageMaker then packs the directory);
everything else reads it through `open_artifact`/`unpack`, which check the sha256
manifest before anything is unpickled and refuse library-version mismatches.
"""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.baseline import Baseline, baseline_json
from contracts.calibration import Calibration
from contracts.schema import FeatureSchema, Task

MODEL_JOBLIB = "model.joblib"
MODEL_ONNX = "model.onnx"
METADATA = "metadata.json"
BASELINE = "baseline.json"
MANIFEST = "manifest.json"
TARBALL = "model.tar.gz"
MAX_HYPERPARAMETER_CHARS = 2500  # SageMaker's limit on a hyperparameter value

# Files every artifact has; model.onnx is optional (see OnnxStatus).
REQUIRED_FILES = (MODEL_JOBLIB, METADATA, BASELINE)

# A pickle is only safe to load with the libraries that wrote it.
PINNED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib")
RECORDED_LIBRARIES = PINNED_LIBRARIES + ("skl2onnx", "onnx", "onnxruntime")


class ArtifactError(Exception):
    """The artifact cannot be used; the message says why and what to do."""


class TamperedArtifact(ArtifactError):
    """A file's sha256 differs from the manifest or the expected tarball hash."""


class IncompleteArtifact(ArtifactError):
    """A required file, or the manifest, is missing."""


class LibraryMismatch(ArtifactError):
    """The artifact was trained with other versions of the pinned libraries."""


class OnnxStatus(BaseModel):
    """Whether model.onnx ships, and the parity check on held-out rows that decided it."""

    included: bool
    reason: str | None = None  # why it was left out, or the check it passed
    max_abs_diff: float | None = None  # classifiers: probabilities; regressors: values
    max_rel_diff: float | None = None  # regressors: differences relative to the predictions' scale
    probability_tolerance: float | None = None  # the largest absolute probability difference accepted
    relative_tolerance: float | None = None  # the largest relative regression difference accepted
    rows_checked: int | None = None
    tree_precision: str | None = None  # "float32" where tree ensembles run in float32, as scikit-learn's trees do


class SearchCandidate(BaseModel):
    """One hyperparameter set a search tried, and its cross-validated score on the training rows."""

    params: dict[str, int | float | None]  # the algorithm's hyperparameters (None: the estimator's default)
    cv_mean: float  # mean of the primary metric over the folds (higher is better)
    cv_std: float
    seconds: float  # fitting and scoring every fold


class SearchSummary(BaseModel):
    """A bounded hyperparameter search (`--search N`): every candidate tried and the one refit.

    Candidates run in order until N are done or the time budget is spent; the best by cv_mean
    (the first on a tie) is refit on all training rows and is the artifact's model.
    """

    metric: str  # the task's primary metric (training.evaluate.PRIMARY_METRIC)
    folds: int
    seed: int  # draws the candidates and the folds: the same seed tries the same candidates
    requested: int  # N
    budget_seconds: float
    stopped_by_budget: bool  # the budget ran out before N candidates were tried
    seconds: float
    best: int  # index into candidates
    candidates: list[SearchCandidate]


class DatasetLineage(BaseModel):
    """Where the training data came from, in brief: what a pipeline run's BuildDataset step built.

    The training job receives it as one hyperparameter (a JSON string of at most 2,500 characters),
    the model's metadata and its registry entry keep it; the full lineage (every source, window and
    count) is the JSON document at lineage_uri.
    """

    data_uri: str | None = None  # the CSV the run split and trained on
    data_sha256: str | None = None
    rows: int | None = None  # rows of that CSV
    production_rows: int = 0  # labelled production rows in it
    recent_rows: int = 0  # the most recent labelled production rows, kept out of training for the gate
    window: dict[str, str] | None = None  # first / last prediction time of the production rows
    lineage_uri: str | None = None
    note: str | None = None  # why no production rows were added, when none were

    def hyperparameter(self) -> str:
        """As one SageMaker hyperparameter value (a string of at most 2,500 characters): the longest
        fields go first when it would not fit, the sha256 and counts stay."""
        for dropped in (set(), {"note"}, {"note", "window"}, {"note", "window", "lineage_uri"},
                        {"note", "window", "lineage_uri", "data_uri"}):
            text = self.model_dump_json(exclude_none=True, exclude=dropped or None)
            if len(text) <= MAX_HYPERPARAMETER_CHARS:
                return text
        raise AssertionError("a lineage without its URIs always fits")  # sha256 and three counts


class Metadata(BaseModel):
    """metadata.json"""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    task: Task
    feature_schema: FeatureSchema
    classes: list[str] | None = None  # classifiers only, in predict_proba column order
    metrics: dict[str, float]
    hyperparameters: dict[str, Any]
    training_data_sha256: str
    library_versions: dict[str, str]
    created_at: str
    onnx: OnnxStatus
    rows: dict[str, int] = Field(default_factory=dict)  # train / test row counts
    search: SearchSummary | None = None  # when a hyperparameter search chose the model's hyperparameters
    # Classifiers: the hold-out's probability calibration, for estimating accuracy before labels arrive.
    # Artifacts trained before it existed have none.
    calibration: Calibration | None = None
    # The data set's lineage, when the training pipeline built it. Artifacts trained before it existed,
    # or by hand, have none.
    lineage: DatasetLineage | None = None

    @property
    def search_candidates(self) -> list[SearchCandidate] | None:
        """Every candidate of the search, or None when no search ran (for run records)."""
        return self.search.candidates if self.search else None


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries an artifact depends on."""
    found = {}
    for name in RECORDED_LIBRARIES:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return found


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_model_dir(
    model_dir: str | os.PathLike,
    *,
    estimator: Any,
    metadata: Metadata,
    baseline: Baseline,
    onnx_model: bytes | None,
) -> Path:
    """Write the artifact files and their manifest into `model_dir` (SageMaker's /opt/ml/model)."""
    import joblib  # heavy; only training needs it here

    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, out / MODEL_JOBLIB)
    if onnx_model is not None:
        (out / MODEL_ONNX).write_bytes(onnx_model)
    elif (out / MODEL_ONNX).exists():
        (out / MODEL_ONNX).unlink()
    (out / METADATA).write_text(metadata.model_dump_json(indent=2))
    (out / BASELINE).write_text(baseline_json(baseline))
    write_manifest(out)
    return out


def write_manifest(model_dir: Path) -> dict[str, str]:
    files = [MODEL_JOBLIB, METADATA, BASELINE] + ([MODEL_ONNX] if (model_dir / MODEL_ONNX).exists() else [])
    manifest = {name: sha256_file(model_dir / name) for name in sorted(files)}
    (model_dir / MANIFEST).write_text(json.dumps({"sha256": manifest}, indent=2))
    return manifest


def verify_manifest(model_dir: str | os.PathLike) -> dict[str, str]:
    """Check every file against the manifest; raise before anything is loaded."""
    root = Path(model_dir)
    if not (root / MANIFEST).exists():
        raise IncompleteArtifact(f"{MANIFEST} is missing from the artifact: refusing to load an unverified model")
    try:
        manifest = json.loads((root / MANIFEST).read_text())["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TamperedArtifact(f"{MANIFEST} is unreadable: {exc}") from exc
    for name in REQUIRED_FILES:
        if name not in manifest:
            raise IncompleteArtifact(f"{name} is not listed in {MANIFEST}")
    for name, expected in manifest.items():
        path = root / name
        if Path(name).name != name:
            raise TamperedArtifact(f"{MANIFEST} names a path outside the artifact: {name!r}")
        if not path.exists():
            raise IncompleteArtifact(f"{name} is listed in {MANIFEST} but missing from the artifact")
        actual = sha256_file(path)
        if actual != expected:
            raise TamperedArtifact(f"{name} has sha256 {actual[:12]}…, the manifest says {expected[:12]}…: the artifact was modified")
    return manifest


def check_library_versions(meta: Metadata, installed: dict[str, str] | None = None) -> None:
    """Refuse to unpickle with other versions of the libraries that pickled the model."""
    installed = installed if installed is not None else library_versions()
    wrong = [
        f"{lib} {meta.library_versions[lib]} (trained) vs {installed.get(lib, 'not installed')} (here)"
        for lib in PINNED_LIBRARIES
        if lib in meta.library_versions and meta.library_versions[lib] != installed.get(lib)
    ]
    if wrong:
        raise LibraryMismatch(
            "the model was trained with other library versions: " + "; ".join(wrong)
            + ". Retrain it with this image or serve it from the image that trained it."
        )


def read_metadata(model_dir: str | os.PathLike) -> Metadata:
    return Metadata.model_validate_json((Path(model_dir) / METADATA).read_text())


def read_baseline(model_dir: str | os.PathLike) -> dict[str, Any]:
    """baseline.json's parsed body, untyped; contracts.baseline.Baseline.from_dict types and validates it."""
    return json.loads((Path(model_dir) / BASELINE).read_text())


@dataclass(frozen=True)
class Artifact:
    """A verified, unpacked artifact directory."""

    path: Path
    metadata: Metadata

    @property
    def has_onnx(self) -> bool:
        return (self.path / MODEL_ONNX).exists()

    def load_estimator(self) -> Any:
        """Unpickle model.joblib (only after the manifest and versions were checked)."""
        import joblib

        check_library_versions(self.metadata)
        return joblib.load(self.path / MODEL_JOBLIB)

    def onnx_bytes(self) -> bytes:
        return (self.path / MODEL_ONNX).read_bytes()

    def baseline(self) -> dict[str, Any]:
        return read_baseline(self.path)


def open_artifact(model_dir: str | os.PathLike) -> Artifact:
    """Verify an unpacked artifact directory and read its metadata."""
    verify_manifest(model_dir)
    try:
        meta = read_metadata(model_dir)
    except ValueError as exc:
        raise ArtifactError(f"{METADATA} does not match the artifact contract: {exc}") from exc
    return Artifact(path=Path(model_dir), metadata=meta)


def pack(model_dir: str | os.PathLike, tarball: str | os.PathLike) -> str:
    """Pack a model directory as SageMaker does (files at the root of model.tar.gz); returns its sha256."""
    src = Path(model_dir)
    tarball = Path(tarball)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    tmp = tarball.with_suffix(".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(src.iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name)
    os.replace(tmp, tarball)  # never leave a half-written tarball behind
    return sha256_file(tarball)


def unpack(tarball: str | os.PathLike, dest: str | os.PathLike, expected_sha256: str | None = None) -> Artifact:
    """Check the tarball's hash (when given), extract it safely, verify the manifest."""
    if expected_sha256:
        actual = sha256_file(tarball)
        if actual != expected_sha256:
            raise TamperedArtifact(
                f"{TARBALL} has sha256 {actual[:12]}…, the registry entry says {expected_sha256[:12]}…: refusing to load it"
            )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(dest, filter="data")  # rejects absolute paths, links out, devices
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise IncompleteArtifact(f"{TARBALL} cannot be extracted: {exc}") from exc
    return open_artifact(dest)
