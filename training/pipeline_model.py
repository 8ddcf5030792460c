"""The scikit-learn pipeline: per-type preprocessing on column positions, then the chosen estimator.

The pipeline takes the 2-D matrix of `dataset.feature_matrix` (columns in schema order), so
serving needs no pandas and no column names.
"""
from __future__ import annotations

from dataclasses import dataclass

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from contracts.schema import FeatureSchema, FeatureType, Task

# Defined with their hyperparameters in training.model_space. linear (the default): the best AUC on
# breast-cancer, and the smallest, fastest model to serve. Every algorithm converts to ONNX
# (training/onnx_export.py), so each is served by onnxruntime when it passes parity.
from training.model_space import ALGORITHMS, DEFAULT_ALGORITHM

__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM", "ModelParams", "build_pipeline", "preprocessor"]


@dataclass(frozen=True)
class ModelParams:
    """Estimator hyperparameters; each algorithm reads the ones that apply to it (model_space.SPACES)."""

    l2: float = 1.0  # Ridge alpha; LogisticRegression C = 1 / l2
    n_estimators: int = 200  # random_forest, extra_trees, gradient_boosting
    max_depth: int | None = None  # the tree ensembles (gradient_boosting: 3 when None)
    learning_rate: float = 0.1  # gradient_boosting, hist_gradient_boosting
    max_iter: int | None = None  # linear: solver iterations (1000); hist_gradient_boosting: rounds (100)

    def __post_init__(self) -> None:
        for name in ("l2", "learning_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"hyperparameter {name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("n_estimators", "max_depth", "max_iter"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"hyperparameter {name.replace('_', '-')} must be >= 1, got {value}")


def _estimator(algorithm: str, task: Task, seed: int, p: ModelParams):
    classifier = task != "regression"
    if algorithm == "linear":
        return LogisticRegression(C=1.0 / p.l2, max_iter=p.max_iter or 1000) if classifier else Ridge(alpha=p.l2)
    if algorithm in ("random_forest", "extra_trees"):
        forests = {"random_forest": (RandomForestClassifier, RandomForestRegressor),
                   "extra_trees": (ExtraTreesClassifier, ExtraTreesRegressor)}
        cls = forests[algorithm][0 if classifier else 1]
        return cls(n_estimators=p.n_estimators, max_depth=p.max_depth, random_state=seed, n_jobs=-1)
    if algorithm == "gradient_boosting":
        cls = GradientBoostingClassifier if classifier else GradientBoostingRegressor
        return cls(n_estimators=p.n_estimators, learning_rate=p.learning_rate, max_depth=p.max_depth or 3,
                   random_state=seed)
    if algorithm == "hist_gradient_boosting":
        cls = HistGradientBoostingClassifier if classifier else HistGradientBoostingRegressor
        return cls(learning_rate=p.learning_rate, max_iter=p.max_iter or 100, max_depth=p.max_depth, random_state=seed)
    raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


def preprocessor(schema: FeatureSchema) -> ColumnTransformer:
    """Median-impute and scale numeric columns, one-hot encode categorical ones (by position)."""
    parts = []
    numeric = schema.indices(FeatureType.NUMERIC)
    categorical = schema.indices(FeatureType.CATEGORICAL)
    if numeric:
        parts.append(("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric))
    if categorical:
        # Dense output: the tree estimators need it and the ONNX converter handles it best.
        parts.append(("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical))
    return ColumnTransformer(parts)


def build_pipeline(schema: FeatureSchema, task: Task, *, algorithm: str = DEFAULT_ALGORITHM,
                   seed: int = 42, params: ModelParams | None = None) -> Pipeline:
    """An unfitted pipeline for the schema and task."""
    return Pipeline([
        ("preprocess", preprocessor(schema)),
        ("model", _estimator(algorithm, task, seed, params or ModelParams())),
    ])
