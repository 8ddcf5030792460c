"""ONNX export of the fitted pipeline, checked against it, and the input feed serving builds per request.

Inputs: one tensor per run of adjacent same-typed columns in schema order (an all-numeric schema
has a single input), named INPUT_PREFIX + run index: numeric runs are float64 [N, k], categorical
runs are strings [N, k]. skl2onnx maps the ColumnTransformer's integer column positions onto these
inputs by their widths. Double precision keeps the linear models within ~1e-12 of scikit-learn;
float32 inputs put regression values with large magnitudes outside the 1e-4 tolerance.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from contracts.artifact import OnnxStatus
from contracts.schema import FeatureSchema, FeatureType, Task

INPUT_PREFIX = "input_"
OUTPUT_LABEL = "label"  # classifiers: [N] strings, the predicted class
OUTPUT_PROBABILITIES = "probabilities"  # classifiers: [N, n_classes], columns in metadata.classes order
OUTPUT_VALUE = "variable"  # regressors: [N, 1] float64
TOLERANCE = 1e-4  # largest absolute difference from scikit-learn accepted on held-out rows
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}


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


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer as Where(IsNaN(x), statistics, x): onnxruntime's Imputer has no float64 kernel."""
    from skl2onnx.common.data_types import guess_numpy_type, guess_proto_type
    from skl2onnx.operator_converters.common import concatenate_variables

    imputer = operator.raw_operator
    dtype = guess_numpy_type(operator.inputs[0].type)
    x = concatenate_variables(scope, operator.inputs, container)
    statistics = scope.get_unique_variable_name("impute_statistics")
    container.add_initializer(statistics, guess_proto_type(operator.inputs[0].type), [imputer.statistics_.size],
                              imputer.statistics_.astype(dtype).tolist())
    is_nan = scope.get_unique_variable_name("is_nan")
    container.add_node("IsNaN", [x], [is_nan], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node("Where", [is_nan, statistics, x], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Where"))


def _convert(pipeline: Any, schema: FeatureSchema, task: Task) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from sklearn.impute import SimpleImputer

    inputs = [
        (f"{INPUT_PREFIX}{j}", (DoubleTensorType if kind is FeatureType.NUMERIC else StringTensorType)([None, stop - start]))
        for j, (kind, start, stop) in enumerate(input_runs(schema))
    ]
    options = {id(pipeline): {"zipmap": False}} if task != "regression" else None
    model = convert_sklearn(pipeline, initial_types=inputs, options=options, target_opset=TARGET_OPSET,
                            custom_conversion_functions={SimpleImputer: _convert_imputer})
    return model.SerializeToString()


def _disagreement(session: Any, pipeline: Any, schema: FeatureSchema, X: np.ndarray, task: Task) -> tuple[str | None, float]:
    """Why the ONNX outputs differ from the pipeline's on X (None when they agree), and the largest difference."""
    outputs = {o.name: v for o, v in zip(session.get_outputs(), session.run(None, onnx_feed(schema, X)))}
    expected = {OUTPUT_VALUE} if task == "regression" else {OUTPUT_LABEL, OUTPUT_PROBABILITIES}
    if set(outputs) != expected:
        return f"unexpected ONNX outputs {sorted(outputs)}, expected {sorted(expected)}", float("nan")
    if task == "regression":
        diff = float(np.max(np.abs(outputs[OUTPUT_VALUE].ravel() - pipeline.predict(X))))
    else:
        labels = outputs[OUTPUT_LABEL].astype(str)
        different = np.flatnonzero(labels != pipeline.predict(X).astype(str))
        diff = float(np.max(np.abs(outputs[OUTPUT_PROBABILITIES] - pipeline.predict_proba(X))))
        if different.size:
            return f"ONNX predicts another class on {different.size} of {len(X)} held-out rows", diff
    if not diff <= TOLERANCE:
        return f"ONNX outputs differ from scikit-learn by up to {diff:.3g} (tolerance {TOLERANCE:g})", diff
    return None, diff


def _describe(exc: BaseException) -> str:
    """A short reason: the error's first line and, when it wraps one, the root cause."""
    root = exc
    while (root.__cause__ or root.__context__) is not None:
        root = root.__cause__ or root.__context__
    text = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    if root is not exc:
        text += f" (caused by {type(root).__name__}: {str(root)[:160]})"
    return text


def to_onnx(pipeline: Any, schema: FeatureSchema, X_check: np.ndarray, task: Task) -> tuple[bytes | None, OnnxStatus]:
    """Convert the fitted pipeline; keep the result only if it agrees with the pipeline on X_check."""
    try:
        onnx_model = _convert(pipeline, schema, task)
    except Exception as exc:
        return None, OnnxStatus(included=False, reason=f"conversion failed: {_describe(exc)}")
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
        problem, diff = _disagreement(session, pipeline, schema, X_check, task)
    except Exception as exc:
        return None, OnnxStatus(included=False, reason=f"onnxruntime cannot run it: {_describe(exc)}")
    if problem:
        return None, OnnxStatus(included=False, reason=problem, max_abs_diff=diff if np.isfinite(diff) else None)
    return onnx_model, OnnxStatus(included=True, reason=f"agrees on {len(X_check)} held-out rows", max_abs_diff=diff)
