"""The demo data set: scikit-learn's bundled breast-cancer data as a labelled CSV (no download)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

TARGET = "diagnosis"


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
