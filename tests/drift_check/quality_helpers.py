"""Helpers for the model-quality tests: minimal metadata, capture lines with ids, synthetic calibrated scores."""
from __future__ import annotations

from typing import Any

import numpy as np

from contracts.artifact import Metadata, OnnxStatus
from contracts.calibration import Calibration
from contracts.capture_record import record_line
from contracts.schema import Feature, FeatureSchema, FeatureType


def metadata(task: str = "binary", *, classes: list[str] | None = None, metrics: dict[str, float] | None = None,
             calibration: Calibration | None = None) -> Metadata:
    """The metadata of a one-feature model; the check reads only task, classes, metrics and calibration."""
    if classes is None and task != "regression":
        classes = ["no", "yes"] if task == "binary" else ["a", "b", "c"]
    return Metadata(
        model_name="m", model_version="v1", task=task,
        feature_schema=FeatureSchema(target="y", features=[Feature(name="x", type=FeatureType.NUMERIC)]),
        classes=classes, metrics=metrics if metrics is not None else {"accuracy": 0.8, "f1": 0.8, "roc_auc": 0.85},
        hyperparameters={}, training_data_sha256="0" * 64, library_versions={}, created_at="2026-01-01T00:00:00Z",
        onnx=OnnxStatus(included=False), calibration=calibration,
    )


def capture(i: int, prediction: Any, probability: dict[str, float] | None = None, *, pid: str | None = "auto",
            version: str = "v1") -> bytes:
    """One capture line; pid "auto" gives id p<i>, None leaves the id out (a record from before ids)."""
    return record_line(time=f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z", request_id=f"r{i}", model_name="m",
                       model_version=version, features={"x": float(i)}, prediction=prediction,
                       probability=probability, id=f"p{i}" if pid == "auto" else pid)


def calibrated_scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of class "yes" and labels drawn with exactly that probability: a well-calibrated model."""
    rng = np.random.default_rng(seed)
    score = rng.beta(0.6, 0.6, size=n)
    return score, (rng.random(n) < score).astype(int)


def binary_lines(score: np.ndarray) -> list[bytes]:
    return [capture(i, "yes" if s >= 0.5 else "no", {"no": float(1 - s), "yes": float(s)}) for i, s in enumerate(score)]


def label_csv(pairs: list[tuple[str, Any]], time: bool = False) -> str:
    head = "id,label,time" if time else "id,label"
    return "\n".join([head, *(",".join(map(str, p)) for p in pairs)]) + "\n"
