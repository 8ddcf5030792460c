"""The two ways to run a model: onnxruntime on model.onnx (no pickle) or scikit-learn on model.joblib.

Both take the model input matrix and return the predicted class index per row and the
class probabilities (classifiers), or the predicted values (regressors). The predicted
class is the most probable one, so both runtimes label rows the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from contracts.artifact import Artifact
from contracts.onnx_io import OUTPUT_PROBABILITIES, OUTPUT_VALUE, onnx_feed
from inference.model_loader import ModelUnavailable

ONNXRUNTIME = "onnxruntime"
SCIKIT_LEARN = "scikit-learn"


@dataclass(frozen=True)
class Output:
    """proba: [N, n_classes] for classifiers (None for regressors); values: [N] class indices or predictions."""

    values: np.ndarray
    proba: np.ndarray | None


class OnnxModel:
    """model.onnx in an onnxruntime session tuned for one-row latency."""

    name = ONNXRUNTIME

    def __init__(self, art: Artifact) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One request at a time per execution environment: threads only add hand-off latency.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(art.onnx_bytes(), sess_options=options, providers=["CPUExecutionProvider"])
        self.schema = art.metadata.feature_schema
        self.classifier = art.metadata.task != "regression"
        self._outputs = [OUTPUT_PROBABILITIES if self.classifier else OUTPUT_VALUE]
        self.version = ort.__version__

    def run(self, X: np.ndarray) -> Output:
        (result,) = self.session.run(self._outputs, onnx_feed(self.schema, X))
        if self.classifier:
            return Output(values=result.argmax(axis=1), proba=result)
        return Output(values=result.reshape(-1), proba=None)


class SklearnModel:
    """model.joblib, unpickled after the manifest and the library versions were checked."""

    name = SCIKIT_LEARN

    def __init__(self, art: Artifact) -> None:
        from importlib import metadata

        self.estimator: Any = art.load_estimator()  # raises LibraryMismatch before unpickling
        self.classifier = art.metadata.task != "regression"
        self.version = metadata.version("scikit-learn")

    def run(self, X: np.ndarray) -> Output:
        if self.classifier:
            proba = self.estimator.predict_proba(X)
            return Output(values=proba.argmax(axis=1), proba=proba)
        return Output(values=np.asarray(self.estimator.predict(X), dtype=np.float64).reshape(-1), proba=None)


def open_model(art: Artifact, preferred: str = "auto") -> OnnxModel | SklearnModel:
    """ONNX when the artifact has it (unless scikit-learn is asked for), else the pickle."""
    if preferred == SCIKIT_LEARN:
        return SklearnModel(art)
    if preferred == ONNXRUNTIME and not art.has_onnx:
        raise ModelUnavailable("SERVING_RUNTIME=onnxruntime but the artifact has no model.onnx")
    return OnnxModel(art) if art.has_onnx else SklearnModel(art)
