"""What the demo runs on: scikit-learn's bundled breast-cancer data as a labelled CSV (no download), or a
user's own CSV, checked before anything starts."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

from contracts import names
from contracts.schema import FeatureSchema, FeatureType
from training.validate import load_and_validate

TARGET = "diagnosis"
BUNDLED_MODEL_NAME = "breast-cancer"
# The bundled data's drifted segment: the tumour-size features read 30 % larger, as after a scanner recalibration.
DRIFTED_FEATURES = ("mean_radius", "mean_perimeter", "mean_area")
DRIFT_FACTOR = 1.3
# Another CSV's drifted segment: its first numeric features moved by this many standard deviations, far
# enough for the drift check to see in a few hundred rows; a CSV without numeric features gets one
# categorical column's rarest category in every row instead.
DRIFTED_COUNT = 3
DRIFT_STDS = 1.0
# The drifted segment's concept drift starts at this quantile of the first shifted feature: on the bundled
# data about a third of the segment changes class, which a labelled day of traffic shows beyond doubt.
CONCEPT_QUANTILE = 0.3


class DemoDataError(ValueError):
    """The user's data or options cannot run the demo; the message names the problem."""


@dataclass(frozen=True)
class Shift:
    """How one feature of the drifted segment differs from the training data: scaled, moved or replaced."""

    feature: str
    kind: str  # "scale", "add" or "category"
    amount: float | str

    def apply(self, value: float | str | None) -> float | str | None:
        if value is None:
            return None  # a missing value stays missing
        if self.kind == "scale":
            return value * self.amount
        if self.kind == "add":
            return value + self.amount
        return self.amount

    def __str__(self) -> str:
        if self.kind == "scale":
            return f"{self.feature} × {self.amount}"
        if self.kind == "add":
            return f"{self.feature} + {self.amount:.4g} ({DRIFT_STDS:g} std)"
        return f"{self.feature} = {self.amount!r}"


@dataclass(frozen=True)
class ConceptDrift:
    """How the labels of the drifted segment relate to its features: changed, not only the features' distribution.

    Rows whose served `feature` is above `threshold` get `label` (the class that large values of the feature
    lead to in training: a direction a linear model can learn), or, for regression, the target plus `amount`;
    without a numeric shift (`feature` None) every drifted row's class moves to the next one.
    """

    feature: str | None
    threshold: float = 0.0
    label: str | None = None  # classification
    amount: float = 0.0  # regression
    classes: tuple[str, ...] = ()

    def relabel(self, row: dict, truth: str) -> str:
        value = row.get(self.feature) if self.feature else None
        if self.feature is not None and (value is None or value <= self.threshold):
            return truth
        if self.amount:
            return repr(float(truth) + self.amount)
        if self.label is not None:
            return self.label
        return self.classes[(self.classes.index(truth) + 1) % len(self.classes)]

    def __str__(self) -> str:
        change = f"+{self.amount:.4g}" if self.amount else f"{self.label!r}" if self.label else "the next class"
        where = f"{self.feature} above {self.threshold:.4g}" if self.feature else "every row"
        return f"label {change} where {where}"


def concept_drift(schema: FeatureSchema, rows: list[dict], truths: list[str], shifts: tuple[Shift, ...],
                  regression: bool) -> ConceptDrift:
    """The drifted segment's new labels: above the CONCEPT_QUANTILE of the first numerically shifted feature as
    served (a third of the segment or more keeps its labels, the rest is where the world changed)."""
    amount = float(np.std([float(t) for t in truths])) if regression else 0.0
    numeric = {f.name for f in schema.features if f.type is FeatureType.NUMERIC}
    shift = next((s for s in shifts if s.kind != "category" and s.feature in numeric), None)
    if shift is None:
        return ConceptDrift(feature=None, amount=amount, classes=tuple(sorted(set(truths))))
    pairs = [(row[shift.feature], t) for row, t in zip(rows, truths) if row[shift.feature] is not None]
    threshold = float(np.quantile([shift.apply(v) for v, _ in pairs], CONCEPT_QUANTILE))
    if regression:
        return ConceptDrift(feature=shift.feature, threshold=threshold, amount=amount)
    means = {c: np.mean([v for v, t in pairs if t == c]) for c in sorted({t for _, t in pairs})}
    return ConceptDrift(feature=shift.feature, threshold=threshold, label=max(means, key=means.get))


@dataclass(frozen=True)
class DemoData:
    """A labelled CSV and how to read it; `drift` None: the drifted segment is derived from the data."""

    csv_path: Path
    target: str
    model_name: str
    categorical: tuple[str, ...] = ()
    task: str | None = None
    drift: tuple[Shift, ...] | None = None


def feature_names() -> list[str]:
    """The demo model's features, as the CSV's columns name them (scikit-learn's names, '_' for ' ')."""
    return [name.replace(" ", "_") for name in load_breast_cancer().feature_names]


def write_breast_cancer_csv(path: Path) -> Path:
    """Write the 569 rows with readable column names and class labels."""
    data = load_breast_cancer()
    labels = np.array(data.target_names)[data.target]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*feature_names(), TARGET])
        for row, label in zip(data.data, labels):
            writer.writerow([*(repr(float(v)) for v in row), label])
    return path


def bundled(workdir: Path) -> DemoData:
    return DemoData(csv_path=write_breast_cancer_csv(workdir / "breast_cancer.csv"), target=TARGET,
                    model_name=BUNDLED_MODEL_NAME, drift=tuple(Shift(f, "scale", DRIFT_FACTOR) for f in DRIFTED_FEATURES))


def model_name_for(path: Path) -> str:
    """A model name from a file name: 'My Data_2024.csv' → 'my-data-2024'."""
    return re.sub(r"[^a-z0-9]+", "-", path.stem.lower())[:63].strip("-")


def user_data(csv_path: Path, target: str, categorical: tuple[str, ...] = (), model_name: str = "",
              task: str | None = None) -> DemoData:
    """The user's CSV, checked as the pipeline's validate step will check it; DemoDataError names every problem."""
    model_name = model_name or model_name_for(csv_path)
    if not names.MODEL_NAME_PATTERN.match(model_name):
        hint = "" if model_name else f" (none can be derived from the file name {csv_path.name!r}: pass --model-name)"
        raise DemoDataError(f"model name {model_name!r}{hint}: use 1-63 lower-case letters, digits or hyphens, "
                            "starting and ending with a letter or digit (it becomes S3 prefixes, IAM policies and "
                            "the registry's model package group)")
    if not csv_path.is_file():
        raise DemoDataError(f"{csv_path}: no such file")
    _, report = load_and_validate(csv_path, target, categorical=set(categorical), task=task)
    if not report.passed:
        raise DemoDataError(f"{csv_path.name}: " + "; ".join(m.removeprefix(f"{report.file}: ") for m in report.errors))
    return DemoData(csv_path=csv_path, target=target, model_name=model_name, categorical=tuple(categorical), task=task)


def derived_drift(schema: FeatureSchema, rows: list[dict]) -> tuple[Shift, ...]:
    """The first DRIFTED_COUNT numeric features that vary, each moved by DRIFT_STDS standard deviations; without
    any, the first categorical feature with two or more categories set to its rarest one in every row."""
    shifts = []
    for feature in schema.features:
        if feature.type is FeatureType.NUMERIC and len(shifts) < DRIFTED_COUNT:
            values = np.array([row[feature.name] for row in rows if row[feature.name] is not None], dtype=float)
            if values.size and values.std() > 0:
                shifts.append(Shift(feature.name, "add", float(DRIFT_STDS * values.std())))
    if shifts:
        return tuple(shifts)
    for feature in schema.features:
        if feature.type is FeatureType.CATEGORICAL and len(feature.categories or ()) > 1:
            column = [row[feature.name] for row in rows]
            rarest = min(feature.categories, key=column.count)
            return (Shift(feature.name, "category", rarest),)
    raise DemoDataError(f"no feature varies ({', '.join(schema.names)}): there is no segment to drift")
