"""Helpers for the training-pipeline tests: generated data sets and event files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

EVENTS = Path(__file__).parent.parent / "events"


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    return path


def binary_rows(n: int = 160, seed: int = 0) -> tuple[list[str], list[list[Any]]]:
    """Two numeric features (one with gaps), a categorical one, a yes/no label that depends on them."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a, b = rng.normal(), rng.normal()
        color = ["red", "green", "blue"][int(rng.integers(0, 3))]
        score = 2 * a - b + (1.0 if color == "red" else 0.0) + rng.normal(scale=0.5)
        rows.append([round(a, 4), "" if i % 9 == 0 else round(b, 4), color, "yes" if score > 0.3 else "no"])
    return ["a", "b", "color", "label"], rows


def multiclass_rows(n: int = 150, seed: int = 1) -> tuple[list[str], list[list[Any]]]:
    """Three classes from a numeric and a categorical feature; the numeric target-looking codes stay strings."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        size = rng.normal(10, 3)
        shape = ["round", "square", "flat"][i % 3]
        label = "2" if size > 12 else ("1" if shape == "round" else "0")
        rows.append([round(size, 3), "" if i % 11 == 0 else shape, int(rng.integers(0, 5)), label])
    return ["size", "shape", "count", "kind"], rows


def regression_rows(n: int = 120, seed: int = 2) -> tuple[list[str], list[list[Any]]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = 300 * x[:, 0] - 200 * x[:, 1] + 5000 + rng.normal(scale=10, size=n)
    return ["u", "v", "price"], [[round(u, 4), round(v, 4), round(t, 3)] for (u, v), t in zip(x, y)]


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())
