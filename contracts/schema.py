"""The feature schema: the contract between the training data, the model and its callers."""
from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

Task = Literal["binary", "multiclass", "regression"]


class FeatureType(str, Enum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class Feature(BaseModel):
    """One input column as training saw it."""

    name: str
    type: FeatureType
    # Categorical: the categories seen in training (sorted); numeric: None.
    categories: list[str] | None = None
    # Numeric: the observed range in training; categorical: None.
    min: float | None = None
    max: float | None = None
    missing_rate: float = 0.0
    # Numeric features with only whole values (counts, flags) keep this so callers may send ints.
    integer: bool = False


class FeatureSchema(BaseModel):
    """Ordered features: the column order of every model input matrix."""

    target: str
    features: list[Feature] = Field(min_length=1)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"unknown feature {name!r}")

    @property
    def numeric(self) -> list[Feature]:
        return [f for f in self.features if f.type is FeatureType.NUMERIC]

    @property
    def categorical(self) -> list[Feature]:
        return [f for f in self.features if f.type is FeatureType.CATEGORICAL]

    def indices(self, kind: FeatureType) -> list[int]:
        """Column positions of the features of one type, in schema order."""
        return [i for i, f in enumerate(self.features) if f.type is kind]


# Categorical missing values become this category before the pipeline, in training and
# serving alike, so the joblib and ONNX models see the same strings.
MISSING_CATEGORY = "__missing__"
