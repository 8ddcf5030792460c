"""HistGradientBoosting as one ONNX TreeEnsemble (ai.onnx.ml opset 5) in float64.

scikit-learn's HistGradientBoosting compares float64 inputs with float64 thresholds, which a float32 tree
graph (all that skl2onnx emits for onnxruntime) cannot reproduce: a value close to a threshold takes the
other branch. TreeEnsemble takes float64 splits and leaf weights, so every row follows scikit-learn's path.
The graph: raw = baseline + Σ leaf values per target; then identity (squared error), sigmoid (binary log
loss) or softmax (multinomial), and the class as the most probable one, as scikit-learn decides it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ML_OPSET = 5  # TreeEnsemble, with float64 splits and weights
LEQ = 0  # TreeEnsemble's BRANCH_LEQ: the true branch when x <= split (scikit-learn's left child)
SUM = 1  # aggregate_function


@dataclass
class _Trees:
    """The TreeEnsemble arrays: interior nodes, leaves, and the roots, in the order they are added."""

    n_targets: int
    constant: np.ndarray  # the baseline, plus trees that are a single leaf
    roots: list[int] = field(default_factory=list)
    feature: list[int] = field(default_factory=list)
    split: list[float] = field(default_factory=list)
    missing_true: list[int] = field(default_factory=list)
    true_id: list[int] = field(default_factory=list)
    true_leaf: list[int] = field(default_factory=list)
    false_id: list[int] = field(default_factory=list)
    false_leaf: list[int] = field(default_factory=list)
    leaf_target: list[int] = field(default_factory=list)
    leaf_weight: list[float] = field(default_factory=list)

    def add(self, nodes: np.ndarray, target: int) -> None:
        """One scikit-learn TreePredictor's nodes (a structured array) for one target."""
        if nodes[0]["is_leaf"]:
            self.constant[target] += float(nodes[0]["value"])
            return
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not converted (the pipeline one-hot encodes categories)")
        interior = np.flatnonzero(~nodes["is_leaf"].astype(bool))
        leaves = np.flatnonzero(nodes["is_leaf"].astype(bool))
        where = {int(i): (0, len(self.feature) + j) for j, i in enumerate(interior)}
        where |= {int(i): (1, len(self.leaf_weight) + j) for j, i in enumerate(leaves)}
        self.leaf_target += [target] * len(leaves)
        self.leaf_weight += nodes["value"][leaves].astype(np.float64).tolist()
        self.roots.append(where[0][1])
        for i in interior:
            node = nodes[i]
            left_is_leaf, left = where[int(node["left"])]
            right_is_leaf, right = where[int(node["right"])]
            self.feature.append(int(node["feature_idx"]))
            self.split.append(float(node["num_threshold"]))
            self.missing_true.append(int(node["missing_go_to_left"]))
            self.true_leaf.append(left_is_leaf)
            self.true_id.append(left)
            self.false_leaf.append(right_is_leaf)
            self.false_id.append(right)


def _trees(estimator: Any) -> _Trees:
    k = estimator.n_trees_per_iteration_
    trees = _Trees(k, np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1).copy())
    for iteration in estimator._predictors:
        for target, predictor in enumerate(iteration):
            trees.add(predictor.nodes, target)
    if not trees.roots:
        raise ValueError("the model has no split to convert (every tree is a single leaf)")
    return trees


def graph_parts(estimator: Any, features: str, task: str) -> tuple[list, list, list]:
    """Nodes, initializers and outputs that turn `features` (the preprocessing output) into the serving outputs."""
    from onnx import TensorProto, helper, numpy_helper

    from contracts.onnx_io import OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_VALUE

    loss = type(estimator._loss).__name__
    expected = {"regression": ("HalfSquaredError",), "binary": ("HalfBinomialLoss",),
                "multiclass": ("HalfMultinomialLoss",)}[task]
    if loss not in expected:
        raise ValueError(f"HistGradientBoosting with loss {loss} is not converted")
    t = _trees(estimator)
    tensor = numpy_helper.from_array
    nodes = [
        # The preprocessing output is float32 when every feature is one-hot encoded: exact as float64 (0s and 1s).
        helper.make_node("Cast", [features], ["hgb_features"], to=TensorProto.DOUBLE, name="hgb_features"),
        helper.make_node(
            "TreeEnsemble", ["hgb_features"], ["hgb_trees"], domain="ai.onnx.ml", name="hgb_trees",
            aggregate_function=SUM, post_transform=0, n_targets=t.n_targets, tree_roots=t.roots,
            nodes_featureids=t.feature, nodes_modes=tensor(np.full(len(t.feature), LEQ, dtype=np.uint8)),
            nodes_splits=tensor(np.array(t.split, dtype=np.float64)),
            nodes_missing_value_tracks_true=t.missing_true, nodes_truenodeids=t.true_id, nodes_trueleafs=t.true_leaf,
            nodes_falsenodeids=t.false_id, nodes_falseleafs=t.false_leaf, leaf_targetids=t.leaf_target,
            leaf_weights=tensor(np.array(t.leaf_weight, dtype=np.float64))),
        helper.make_node("Add", ["hgb_trees", "hgb_constant"], ["hgb_raw"], name="hgb_raw"),
    ]
    initializers = [tensor(t.constant, name="hgb_constant")]
    if task == "regression":
        nodes.append(helper.make_node("Identity", ["hgb_raw"], [OUTPUT_VALUE], name="value"))
        return nodes, initializers, [helper.make_tensor_value_info(OUTPUT_VALUE, TensorProto.DOUBLE, None)]
    if task == "binary":
        initializers.append(tensor(np.array(1.0), name="hgb_one"))
        nodes += [helper.make_node("Sigmoid", ["hgb_raw"], ["hgb_positive"], name="hgb_positive"),
                  helper.make_node("Sub", ["hgb_one", "hgb_positive"], ["hgb_negative"], name="hgb_negative"),
                  helper.make_node("Concat", ["hgb_negative", "hgb_positive"], [OUTPUT_PROBABILITIES], axis=1,
                                   name="probabilities")]
    else:
        nodes.append(helper.make_node("Softmax", ["hgb_raw"], [OUTPUT_PROBABILITIES], axis=1, name="probabilities"))
    initializers.append(tensor(np.array([str(c) for c in estimator.classes_], dtype=object), name="hgb_classes"))
    nodes += [helper.make_node("ArgMax", [OUTPUT_PROBABILITIES], ["hgb_class"], axis=1, keepdims=0, name="hgb_class"),
              helper.make_node("Gather", ["hgb_classes", "hgb_class"], [OUTPUT_LABEL], axis=0, name="label")]
    return nodes, initializers, [helper.make_tensor_value_info(OUTPUT_LABEL, TensorProto.STRING, None),
                                 helper.make_tensor_value_info(OUTPUT_PROBABILITIES, TensorProto.DOUBLE, None)]
