"""The ONNX model's inputs and outputs: how serving feeds model.onnx and reads its answer (training writes it so).

Inputs: one tensor per run of adjacent same-typed columns in schema order (an all-numeric schema
has a single input), named INPUT_PREFIX + run index: numeric runs are float64 [N, k], categorical
runs are strings [N, k]. Outputs: OUTPUT_LABEL and OUTPUT_PROBABILITIES (float64) for classifiers,
OUTPUT_VALUE (float64) for regressors, whatever precision the model computes in inside.
"""
from __future__ import annotations

import numpy as np

from contracts.schema import FeatureSchema, FeatureType

INPUT_PREFIX = "input_"
OUTPUT_LABEL = "label"  # classifiers: [N] strings, the predicted class
OUTPUT_PROBABILITIES = "probabilities"  # classifiers: [N, n_classes], columns in metadata.classes order
OUTPUT_VALUE = "variable"  # regressors: [N, 1]


def input_runs(schema: FeatureSchema) -> list[tuple[FeatureType, int, int]]:
    """(type, start, stop) of each run of adjacent same-typed columns, in schema order."""
    runs: list[tuple[FeatureType, int, int]] = []
    for i, feature in enumerate(schema.features):
        if runs and runs[-1][0] is feature.type:
            runs[-1] = (feature.type, runs[-1][1], i + 1)
        else:
            runs.append((feature.type, i, i + 1))
    return runs


def onnx_feed(schema: FeatureSchema, X: np.ndarray) -> dict[str, np.ndarray]:
    """The onnxruntime input feed for a model input matrix (dataset.feature_matrix layout)."""
    if not schema.categorical:  # the common case: one float64 tensor, no copy
        return {f"{INPUT_PREFIX}0": np.ascontiguousarray(X, dtype=np.float64)}
    feed = {}
    for j, (kind, start, stop) in enumerate(input_runs(schema)):
        block = X[:, start:stop]
        dtype = np.float64 if kind is FeatureType.NUMERIC else object
        feed[f"{INPUT_PREFIX}{j}"] = np.ascontiguousarray(block, dtype=dtype)
    return feed
