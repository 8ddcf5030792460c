"""CSV files for the drift command line: a reference CSV into a baseline, a current CSV into counts in its bins."""
from __future__ import annotations

from typing import Any

import numpy as np

from contracts.baseline import Baseline
from contracts.schema import FeatureSchema, FeatureType
from drift_check.stats import MAX_DISCRETE, PREDICTION, Accumulator, build_baseline
from training.dataset import (
    DataError,
    Table,
    categorical_column,
    infer_schema,
    numeric_column,
    typed_columns,
)


def current_accumulator(baseline: Baseline, schema: FeatureSchema, table: Table) -> Accumulator:
    """Count a current CSV into the baseline's bins; rows with non-numbers in numeric columns are rejected."""
    acc = Accumulator(baseline)
    n = table.n_rows
    ok = np.ones(n, dtype=bool)
    columns: dict[str, Any] = {}
    for f in schema.features:
        if f.name not in table.header:
            acc.count_issue(f.name, "absent", n)
            continue
        if f.type is FeatureType.NUMERIC:
            values, bad = numeric_column(table.column(f.name))
            acc.count_issue(f.name, "wrong_type", len(bad))
            ok[bad] = False
            columns[f.name] = values
        else:
            columns[f.name] = categorical_column(table.column(f.name))
    if baseline.prediction is not None and schema.target in table.header:
        columns[PREDICTION] = target_values(baseline.task, table.column(schema.target))
    acc.count_unexpected([h for h in table.header if h not in schema.names and h != schema.target], n)
    acc.count_rejects({"wrong_type": int(n - ok.sum())})
    acc.update({k: np.asarray(v)[ok] for k, v in columns.items()}, int(ok.sum()))
    return acc


def target_task(values: list[str]) -> str:
    """Regression for a numeric target with many values, else a classification."""
    numbers, bad = numeric_column(values)
    if not bad and np.unique(numbers[~np.isnan(numbers)]).size > MAX_DISCRETE:
        return "regression"
    return "binary" if len(set(values)) <= 2 else "multiclass"


def target_values(task: str, values: list[str]) -> np.ndarray:
    if task == "regression":
        return numeric_column(values)[0]
    return categorical_column(values)


def reference_baseline(table: Table, target: str | None, categorical: set[str]) -> tuple[FeatureSchema, Baseline]:
    """The training code's own path: infer_schema, typed_columns, build_baseline (the target as 'prediction')."""
    for name in sorted(categorical | ({target} if target else set())):
        if name not in table.header:
            raise DataError(f"column {name!r} is not in the reference file (columns: {', '.join(table.header)})")
    schema = infer_schema(table, target or "", categorical)
    columns = typed_columns(table, schema)
    if target:
        task = target_task(table.column(target))
        labels = target_values(task, table.column(target))
        classes = None if task == "regression" else sorted({str(v) for v in labels})
        return schema, build_baseline(schema, columns, task=task, classes=classes, predictions=labels)
    return schema, build_baseline(schema, columns, task="none", classes=None, predictions=None)
