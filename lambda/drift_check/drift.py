"""Drift reports, and the command line that checks a current CSV against a reference CSV.

    mlops drift --reference REF.csv --current CUR.csv --output report.json \
        [--target COLUMN] [--categorical a,b] [--html report.html]

Exit status: 0 no drift (or too little data to tell), 1 drift, 2 bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from contracts.artifact import utc_now
from contracts.schema import FeatureSchema, FeatureType
from drift_check.stats import MAX_DISCRETE, PREDICTION, Accumulator, build_baseline
from drift_check.stats_compare import Thresholds, compare
from training.dataset import (
    DataError,
    Table,
    categorical_column,
    infer_schema,
    numeric_column,
    read_csv,
    typed_columns,
)

EXIT_OK, EXIT_DRIFT, EXIT_BAD_INPUT = 0, 1, 2


def make_report(
    baseline: dict[str, Any],
    acc: Accumulator,
    thresholds: Thresholds | None = None,
    *,
    model: dict[str, Any] | None = None,
    window: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The drift report: compare()'s verdict plus what was checked against what, and when."""
    report = compare(baseline, acc, thresholds)
    return {
        "generated_at": utc_now(),
        "model": model,
        "window": window,
        **report,
    }


def empty_report(status: str, reason: str, *, model: dict[str, Any] | None = None,
                 window: dict[str, Any] | None = None) -> dict[str, Any]:
    """A report with nothing compared (no_model): same top-level fields, no features."""
    return {
        "generated_at": utc_now(),
        "model": model, "window": window, "status": status, "reason": reason,
        "dataset_drift": False, "drifted_features": [], "drift_share": 0.0,
        "rows_checked": 0, "rows_rejected": 0, "features": {}, "prediction": None,
    }


def summary(report: dict[str, Any]) -> str:
    """A few lines for a person: the verdict, the drifted features, the data-quality problems."""
    head = (f"status: {report['status']}  dataset drift: {'yes' if report['dataset_drift'] else 'no'}  "
            f"rows checked: {report['rows_checked']}  rejected: {report['rows_rejected']}")
    lines = [head]
    if report.get("reason"):
        lines.append(f"  {report['reason']}")
    for name in report["drifted_features"]:
        f = report["features"][name]
        effect = f"PSI {f['psi']:.3f}" if f["type"] == "numeric" else f"share change {f['max_share_change']:.3f}"
        lines.append(f"  drift {f['severity']:8s} {name}: {effect}, p(adj) {f['p_adjusted']:.2g}")
    for issue in report.get("quality", {}).get("issues", []):
        value = issue["value"] if isinstance(issue["value"], list) else f"{issue['value']:.3f}"
        lines.append(f"  quality {issue['severity']:5s} {issue['feature'] or '(dataset)'}: {issue['check']} {value}")
    if report.get("prediction_drift"):
        lines.append("  the prediction's distribution drifted")
    return "\n".join(lines)


# ------------------------------------------------------------------- CSV input


def current_accumulator(baseline: dict[str, Any], schema: FeatureSchema, table: Table) -> Accumulator:
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
    if baseline.get("prediction") is not None and schema.target in table.header:
        columns[PREDICTION] = target_values(baseline["task"], table.column(schema.target))
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


def reference_baseline(table: Table, target: str | None, categorical: set[str]) -> tuple[FeatureSchema, dict]:
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


EXAMPLES = """example:
  mlops drift --reference train.csv --current last_week.csv --target label --output drift.json --html drift.html"""


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="CSV the model was trained on")
    parser.add_argument("--current", required=True, help="CSV to check")
    parser.add_argument("--output", required=True, help="where to write the JSON report")
    parser.add_argument("--target", help="label column: compared like the prediction, not as a feature")
    parser.add_argument("--categorical", default="", help="comma-separated columns to treat as categorical")
    parser.add_argument("--html", help="also write a self-contained HTML report here")
    parser.add_argument("--min-rows", type=int, default=Thresholds.min_rows, help="fewer current rows: insufficient_data")
    parser.add_argument("--alpha", type=float, default=Thresholds.alpha, help="false discovery rate across features")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    try:
        thresholds = Thresholds(alpha=args.alpha, min_rows=args.min_rows)
        categorical = {c.strip() for c in args.categorical.split(",") if c.strip()}
        reference = read_csv(args.reference)
        schema, baseline = reference_baseline(reference, args.target, categorical)
        current = read_csv(args.current)
    except (DataError, ValueError) as exc:
        print(f"drift: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = make_report(baseline, current_accumulator(baseline, schema, current), thresholds,
                         window={"reference": str(args.reference), "current": str(args.current)})
    try:
        Path(args.output).write_text(json.dumps(report, indent=2, allow_nan=False))
        if args.html:
            from drift_check.report_html import render

            Path(args.html).write_text(render(report))
    except OSError as exc:
        print(f"drift: cannot write the report: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summary(report))
    return EXIT_DRIFT if report["dataset_drift"] else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
