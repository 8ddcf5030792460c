"""ONNX export of the fitted pipeline, and the parity check on held-out rows that decides whether it ships.

Preprocessing runs in float64, which keeps linear models within ~1e-12 of scikit-learn. Random forests,
extra trees and gradient boosting run in float32 after a Cast, as scikit-learn's own trees compare float32
inputs (and onnxruntime's TreeEnsembleRegressor has no float64 output). HistGradientBoosting compares
float64 inputs: it becomes one float64 TreeEnsemble (training/onnx_hgb.py). Inputs and outputs are the
serving contract of contracts/onnx_io.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from contracts.artifact import OnnxStatus
from contracts.onnx_io import OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_VALUE, input_runs, onnx_feed
from contracts.schema import FeatureSchema, FeatureType, Task

TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
PROBABILITY_TOLERANCE = 1e-4  # the largest absolute difference of any class probability on any held-out row
RELATIVE_TOLERANCE = 1e-4  # regression: the largest difference relative to the predictions' scale


def tree_precision(estimator: Any) -> str | None:
    """The precision the estimator's trees compare inputs in: what its ONNX graph must do too (None: no trees)."""
    from sklearn import ensemble

    if isinstance(estimator, ensemble.HistGradientBoostingClassifier | ensemble.HistGradientBoostingRegressor):
        return "float64"
    if isinstance(estimator, ensemble.RandomForestClassifier | ensemble.RandomForestRegressor
                  | ensemble.ExtraTreesClassifier | ensemble.ExtraTreesRegressor
                  | ensemble.GradientBoostingClassifier | ensemble.GradientBoostingRegressor):
        return "float32"  # scikit-learn's trees cast their input to float32
    return None


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


def _initial_types(schema: FeatureSchema) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    from contracts.onnx_io import INPUT_PREFIX

    return [(f"{INPUT_PREFIX}{j}", (DoubleTensorType if kind is FeatureType.NUMERIC else StringTensorType)([None, stop - start]))
            for j, (kind, start, stop) in enumerate(input_runs(schema))]


def _sklearn_to_onnx(model: Any, initial_types: list, task: Task | None) -> Any:
    from skl2onnx import convert_sklearn
    from sklearn.impute import SimpleImputer

    options = {id(model): {"zipmap": False}} if task not in (None, "regression") else None
    return convert_sklearn(model, initial_types=initial_types, options=options, target_opset=TARGET_OPSET,
                           custom_conversion_functions={SimpleImputer: _convert_imputer})


def _join(front: Any, nodes: list, initializers: list, outputs: list, opsets: dict[str, int]) -> Any:
    """The preprocessing graph `front`, followed by the estimator's nodes, as one model."""
    from onnx import helper

    graph = helper.make_graph([*front.graph.node, *nodes], "pipeline", list(front.graph.input), outputs,
                              initializer=[*front.graph.initializer, *initializers])
    merged = {opset.domain: opset.version for opset in front.opset_import}
    for domain, version in opsets.items():
        merged[domain] = max(merged.get(domain, 0), version)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in merged.items()])
    # ai.onnx.ml opset 5 (TreeEnsemble) needs IR version 10; otherwise keep the converter's.
    model.ir_version = max(front.ir_version, 10) if merged.get("ai.onnx.ml", 0) >= 5 else front.ir_version
    return model


def _preprocessing(pipeline: Any, schema: FeatureSchema) -> tuple[Any, str]:
    """The pipeline without its estimator, in float64, and the name of its output (the estimator's input)."""
    from onnx import compose

    front = compose.add_prefix(_sklearn_to_onnx(pipeline[:-1], _initial_types(schema), None), "pre_",
                               rename_inputs=False)
    (features,) = front.graph.output
    return front, features.name


def _with_float32_trees(pipeline: Any, schema: FeatureSchema, task: Task) -> Any:
    """Preprocessing in float64, Cast, the tree ensemble in float32 (as scikit-learn's trees compare), Cast back."""
    from onnx import TensorProto, compose, helper
    from skl2onnx.common.data_types import FloatTensorType

    estimator = pipeline[-1]
    front, features = _preprocessing(pipeline, schema)
    back = compose.add_prefix(_sklearn_to_onnx(
        estimator, [("features", FloatTensorType([None, estimator.n_features_in_]))], task), "est_")
    nodes = [helper.make_node("Cast", [features], ["est_features"], to=TensorProto.FLOAT, name="features_to_float32"),
             *back.graph.node]
    outputs = []
    for out in back.graph.output:
        name = out.name.removeprefix("est_")
        if out.type.tensor_type.elem_type == TensorProto.FLOAT:
            nodes.append(helper.make_node("Cast", [out.name], [name], to=TensorProto.DOUBLE, name=f"{name}_to_float64"))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, None))
        else:
            nodes.append(helper.make_node("Identity", [out.name], [name], name=f"{name}_out"))
            outputs.append(helper.make_tensor_value_info(name, out.type.tensor_type.elem_type, None))
    return _join(front, nodes, list(back.graph.initializer), outputs,
                 {opset.domain: opset.version for opset in back.opset_import})


def _with_float64_hgb(pipeline: Any, schema: FeatureSchema, task: Task) -> Any:
    """Preprocessing and HistGradientBoosting both in float64 (training/onnx_hgb.py)."""
    from training import onnx_hgb

    front, features = _preprocessing(pipeline, schema)
    nodes, initializers, outputs = onnx_hgb.graph_parts(pipeline[-1], features, task)
    return _join(front, nodes, initializers, outputs, {"ai.onnx.ml": onnx_hgb.ML_OPSET, "": TARGET_OPSET[""]})


def _convert(pipeline: Any, schema: FeatureSchema, task: Task) -> tuple[bytes, str | None]:
    """The serialized graph, and the precision its trees run in (None: no trees)."""
    precision = tree_precision(pipeline[-1])
    build = {"float64": _with_float64_hgb, "float32": _with_float32_trees}.get(precision)
    model = build(pipeline, schema, task) if build else _sklearn_to_onnx(pipeline, _initial_types(schema), task)
    return model.SerializeToString(), precision


@dataclass(frozen=True)
class Parity:
    """How the ONNX outputs compare with the pipeline's on the held-out rows; problem is None when they agree."""

    problem: str | None
    max_abs_diff: float | None
    max_rel_diff: float | None = None


def parity(session: Any, pipeline: Any, schema: FeatureSchema, X: np.ndarray, task: Task) -> Parity:
    """Same label on every row and probabilities within PROBABILITY_TOLERANCE; regression within RELATIVE_TOLERANCE."""
    outputs = {o.name: v for o, v in zip(session.get_outputs(), session.run(None, onnx_feed(schema, X)))}
    expected = {OUTPUT_VALUE} if task == "regression" else {OUTPUT_LABEL, OUTPUT_PROBABILITIES}
    if set(outputs) != expected:
        return Parity(f"unexpected ONNX outputs {sorted(outputs)}, expected {sorted(expected)}", None)
    if task == "regression":
        reference = np.asarray(pipeline.predict(X), dtype=np.float64)
        diff = np.abs(outputs[OUTPUT_VALUE].ravel() - reference)
        # Relative to each value, but never to less than the typical magnitude: values near 0 are not magnified.
        scale = np.maximum(np.abs(reference), max(float(np.mean(np.abs(reference))), np.finfo(np.float64).tiny))
        max_abs, max_rel = float(diff.max()), float((diff / scale).max())
        if not max_rel <= RELATIVE_TOLERANCE:
            return Parity(f"ONNX values differ from scikit-learn by up to {max_rel:.3g} relative "
                          f"(tolerance {RELATIVE_TOLERANCE:g})", max_abs, max_rel)
        return Parity(None, max_abs, max_rel)
    different = np.flatnonzero(outputs[OUTPUT_LABEL].astype(str) != pipeline.predict(X).astype(str))
    max_abs = float(np.max(np.abs(outputs[OUTPUT_PROBABILITIES] - pipeline.predict_proba(X))))
    if different.size:
        return Parity(f"ONNX predicts another class on {different.size} of {len(X)} held-out rows", max_abs)
    if not max_abs <= PROBABILITY_TOLERANCE:
        return Parity(f"ONNX probabilities differ from scikit-learn by up to {max_abs:.3g} "
                      f"(tolerance {PROBABILITY_TOLERANCE:g})", max_abs)
    return Parity(None, max_abs)


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
    tolerances = {"probability_tolerance": PROBABILITY_TOLERANCE} if task != "regression" else {
        "relative_tolerance": RELATIVE_TOLERANCE}
    try:
        onnx_model, precision = _convert(pipeline, schema, task)
    except Exception as exc:
        return None, OnnxStatus(included=False, reason=f"conversion failed: {_describe(exc)}")
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
        check = parity(session, pipeline, schema, X_check, task)
    except Exception as exc:
        return None, OnnxStatus(included=False, reason=f"onnxruntime cannot run it: {_describe(exc)}",
                                tree_precision=precision)
    status = dict(max_abs_diff=check.max_abs_diff, max_rel_diff=check.max_rel_diff, rows_checked=len(X_check),
                  tree_precision=precision, **tolerances)
    if check.problem:
        return None, OnnxStatus(included=False, reason=check.problem, **status)
    return onnx_model, OnnxStatus(included=True, reason=f"agrees on {len(X_check)} held-out rows", **status)
