"""The drift baseline (baseline.json in the model artifact): each feature's reference bins and statistics.

Training builds it (drift_check.stats.build_baseline); the drift check counts captured data into its
bins. Every feature gets fixed bins from the training data, so current data is only ever counted.
"""
from __future__ import annotations

import json
from typing import Any

import msgspec

from contracts.schema import FeatureType

BASELINE_FORMAT = "drift-baseline/1"


class ReferenceCounts(msgspec.Struct, frozen=True, kw_only=True):
    """How many reference values a feature had, and how many of them were missing."""

    count: int
    missing: int
    missing_rate: float


class NumericBaseline(ReferenceCounts, frozen=True, kw_only=True, tag_field="type", tag=FeatureType.NUMERIC.value):
    """Bins [edges[i-1], edges[i]); bin 0 is "below the training minimum", the last "above the maximum"."""

    min: float | None  # None: no finite reference value
    max: float | None
    mean: float | None
    std: float | None
    integer: bool  # only whole values
    discrete: bool  # few distinct values: one bin each
    edges: list[float]
    counts: list[int]  # reference values per bin: len(edges) + 1
    psi_groups: list[int]  # start indices grouping the fine bins into about ten for PSI


class CategoricalBaseline(ReferenceCounts, frozen=True, kw_only=True, tag_field="type", tag=FeatureType.CATEGORICAL.value):
    """Bins: one per top category, then "other" (known, not top), "unseen" and "missing"."""

    categories: list[str]  # the top categories, most frequent first
    counts: list[int]  # reference values per bin: len(categories) + 3
    n_categories: int
    known: list[str] | None  # every known category; None when there are too many to list


FeatureBaseline = NumericBaseline | CategoricalBaseline


class Baseline(msgspec.Struct, frozen=True, kw_only=True):
    """baseline.json: the reference of every feature and of the model's predictions."""

    format: str = BASELINE_FORMAT
    task: str  # binary, multiclass, regression; "none" when built without a target
    classes: list[str] | None
    rows: int
    features: dict[str, FeatureBaseline]
    prediction: FeatureBaseline | None  # None: built without predictions

    @classmethod
    def from_json(cls, data: bytes | str) -> Baseline:
        """Decode and validate baseline.json's bytes."""
        return msgspec.json.decode(data, type=cls)

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Baseline:
        """Validate baseline.json's parsed body."""
        return msgspec.convert(body, cls)

    def to_dict(self) -> dict[str, Any]:
        """The parsed JSON body: the same fields, in the same order, as baseline.json."""
        return msgspec.to_builtins(self)


def baseline_json(baseline: Baseline) -> str:
    """baseline.json's text, compact; the same bytes as json.dumps of the body always gave."""
    return json.dumps(msgspec.to_builtins(baseline), separators=(",", ":"))
