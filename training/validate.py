"""Data validation: does a labelled CSV hold what training needs? (library and CLI)

    mlops validate --data x.csv --target label [--task binary] [--categorical a,b]
                   [--min-rows 50] [--max-missing 0.5] [--report out.json]

Exit codes: 0 valid, 1 invalid data (the problems go to stderr), 2 usage error.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import get_args

import numpy as np
from pydantic import BaseModel, computed_field

from contracts.schema import FeatureSchema, FeatureType, Task
from training.dataset import (
    DataError,
    Table,
    infer_schema,
    is_missing,
    numeric_column,
    read_csv,
)

DEFAULT_MIN_ROWS = 50
DEFAULT_MAX_MISSING = 0.5
# A column whose present values are at least this share numbers is numeric, and the rest are
# typos to fix; below it, the column is text and becomes categorical.
NUMERIC_SHARE = 0.9
# A numeric target with at most this many distinct whole values is a class label.
MAX_INTEGER_CLASSES = 20
TASKS: tuple[str, ...] = get_args(Task)
STRUCTURE_CHECKS = ("unique_column_names", "target_present", "has_features", "categorical_known")
FEATURE_CHECKS = ("not_all_missing", "numeric_values", "missing_rate", "not_constant")


class Check(BaseModel):
    """One check's outcome; a failed check names the column (when there is one) and the problem."""

    name: str
    passed: bool
    column: str | None = None
    message: str = ""


class ColumnSummary(BaseModel):
    name: str
    role: str  # "target" or "feature"
    type: FeatureType | None = None  # None when the column could not be typed
    missing_rate: float
    distinct: int
    non_numeric: int = 0  # present values that are not numbers
    min: float | None = None
    max: float | None = None


class ValidationReport(BaseModel):
    """What validation found: the checks, a summary per column and, when valid, the schema."""

    file: str
    data_sha256: str | None = None
    rows: int = 0
    target: str
    task: Task | None = None
    classes: list[str] | None = None
    checks: list[Check]
    columns: list[ColumnSummary] = []
    feature_schema: FeatureSchema | None = None

    @computed_field
    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def errors(self) -> list[str]:
        return [c.message for c in self.checks if not c.passed]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


class DataValidationError(DataError):
    """The data failed validation; `report` holds every check (the Step Functions Catch matches this name)."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(f"{report.file}: " + "; ".join(report.errors))


def target_values(table: Table, target: str) -> list[str]:
    """The target column as stripped strings: class labels stay strings everywhere."""
    return [v.strip() for v in table.column(target)]


def require_columns(table: Table, names: list[str], what: str) -> None:
    """Raise DataError naming the first of `names` that the table lacks."""
    for name in names:
        if name not in table.header:
            raise DataError(f"{what} has no column {name!r} (its columns: {', '.join(table.header)})")


def target_array(table: Table, target: str, task: Task) -> np.ndarray:
    """The target as str labels (classifiers) or float64 values (regression)."""
    values = target_values(table, target)
    if task != "regression":
        return np.array(values, dtype=object)
    numbers, bad = numeric_column(values)
    if bad or np.isnan(numbers).any():
        line = (bad or np.flatnonzero(np.isnan(numbers)).tolist())[0] + 2
        raise DataError(f"target {target!r} must be a number on every row, line {line} has {values[line - 2]!r}")
    return numbers


def infer_task(values: list[str]) -> Task:
    """Classification for text or few distinct whole numbers, else regression (missing values ignored)."""
    present = [v for v in values if not is_missing(v)]
    numbers, bad = numeric_column(present)
    if bad:
        return "binary" if len(set(present)) == 2 else "multiclass"
    distinct = np.unique(numbers)
    if np.all(distinct == np.round(distinct)) and distinct.size <= MAX_INTEGER_CLASSES:
        return "binary" if distinct.size == 2 else "multiclass"
    return "regression"


def _fail(name: str, message: str, column: str | None = None) -> Check:
    return Check(name=name, passed=False, column=column, message=message)


def _with_passes(failures: list[Check], names: tuple[str, ...]) -> list[Check]:
    """The failures plus a passed entry for each check that ran without one."""
    failed = {c.name for c in failures}
    return failures + [Check(name=name, passed=True) for name in names if name not in failed]


def _summarise(name: str, role: str, values: list[str], categorical: bool) -> tuple[ColumnSummary, list[int]]:
    """Per-column summary and the row indices whose present value is not a number."""
    present_idx = [i for i, v in enumerate(values) if not is_missing(v)]
    numbers, bad_pos = numeric_column([values[i] for i in present_idx])
    bad = [present_idx[p] for p in bad_pos]
    n = max(len(values), 1)
    summary = ColumnSummary(
        name=name, role=role, missing_rate=(len(values) - len(present_idx)) / n,
        distinct=len({values[i].strip() for i in present_idx}), non_numeric=len(bad),
    )
    numeric_share = 1 - len(bad) / len(present_idx) if present_idx else 1.0
    if role == "feature":
        is_numeric = not categorical and numeric_share >= NUMERIC_SHARE
        summary.type = FeatureType.NUMERIC if is_numeric else FeatureType.CATEGORICAL
    finite = numbers[~np.isnan(numbers)]
    if finite.size and (role == "target" or summary.type is FeatureType.NUMERIC):
        summary.min, summary.max = float(finite.min()), float(finite.max())
    return summary, bad


def _structure_checks(table: Table, target: str, categorical: set[str]) -> list[Check]:
    """Checks without which nothing else can be looked at: names, target, features."""
    checks: list[Check] = []
    dupes = sorted(name for name, count in Counter(table.header).items() if count > 1)
    for name in dupes:
        checks.append(_fail("unique_column_names", f"column name {name!r} appears {table.header.count(name)} times in the header", name))
    if "" in table.header:
        checks.append(_fail("unique_column_names", f"column {table.header.index('') + 1} has an empty name"
                             + (" (row names, as R's write.csv adds: drop the column)" if table.header[0] == "" else "")))
    if target not in table.header:
        checks.append(_fail("target_present", f"target column {target!r} is not in the header ({', '.join(table.header)})", target))
    elif len(table.header) < 2:
        checks.append(_fail("has_features", f"the data has only the target column {target!r}: there are no features"))
    for name in sorted(categorical - set(table.header)):
        checks.append(_fail("categorical_known", f"categorical column {name!r} is not in the header", name))
    if target in categorical:
        checks.append(_fail("categorical_known", f"the target {target!r} cannot also be a categorical feature", target))
    return _with_passes(checks, STRUCTURE_CHECKS)


def _feature_checks(summary: ColumnSummary, values: list[str], bad: list[int], max_missing: float) -> list[Check]:
    name = summary.name
    if summary.missing_rate == 1.0:
        return [_fail("not_all_missing", f"column {name!r} has no values (every row is missing)", name)]
    checks = []
    if bad and summary.type is FeatureType.NUMERIC:
        checks.append(_fail(
            "numeric_values",
            f"column {name!r} is numeric but {values[bad[0]].strip()!r} on line {bad[0] + 2} is not a number "
            f"({len(bad)} such value(s)); fix them or declare the column categorical",
            name,
        ))
    if summary.missing_rate > max_missing:
        checks.append(_fail(
            "missing_rate", f"column {name!r} is {summary.missing_rate:.0%} missing (limit {max_missing:.0%})", name,
        ))
    if summary.distinct < 2:
        only = next(v.strip() for v in values if not is_missing(v))
        checks.append(_fail("not_constant", f"column {name!r} has the single value {only!r} in every row: drop it", name))
    return checks


def _target_checks(values: list[str], task: Task, target: str) -> tuple[list[Check], list[str] | None]:
    """Target checks for the task; returns them and the classes (sorted strings) for classifiers."""
    missing = [i for i, v in enumerate(values) if is_missing(v)]
    if missing:
        return [_fail("target_complete", f"target {target!r} is missing on {len(missing)} row(s), e.g. line {missing[0] + 2}", target)], None
    if task == "regression":
        _, bad = numeric_column(values)
        if bad:
            return [_fail("target_numeric", f"target {target!r} must be numeric for regression, {values[bad[0]]!r} on line {bad[0] + 2} is not", target)], None
        return [], None
    counts = Counter(values)
    classes = sorted(counts)
    if len(classes) < 2:
        return [_fail("target_classes", f"target {target!r} has one class only ({classes[0]!r}): a classifier needs two or more", target)], classes
    if task == "binary" and len(classes) != 2:
        return [_fail("target_classes", f"task binary needs exactly 2 classes, target {target!r} has {len(classes)}: {', '.join(classes[:10])}", target)], classes
    if task == "multiclass" and len(classes) == 2:
        return [_fail("target_classes", f"task multiclass needs 3 or more classes, target {target!r} has 2: use binary", target)], classes
    rare = [c for c in classes if counts[c] < 2]
    if rare:
        return [_fail("target_classes", f"class {rare[0]!r} of target {target!r} has a single row; every class needs 2 for a stratified hold-out split", target)], classes
    return [], classes


def validate_table(
    table: Table,
    target: str,
    *,
    task: Task | None = None,
    categorical: set[str] | frozenset[str] = frozenset(),
    min_rows: int = DEFAULT_MIN_ROWS,
    max_missing: float = DEFAULT_MAX_MISSING,
    file: str = "data",
) -> ValidationReport:
    """Run every check on a read table; the report's `passed` says whether training may go on."""
    categorical = set(categorical)
    report = ValidationReport(file=file, data_sha256=table.sha256, rows=table.n_rows, target=target, task=task,
                              checks=_structure_checks(table, target, categorical))
    if not report.passed:
        return report
    if table.n_rows == 0:
        report.checks.append(_fail("min_rows", "the file has a header but no data rows"))
        return report
    checks: list[Check] = []
    if table.n_rows < min_rows:
        checks.append(_fail("min_rows", f"the data has {table.n_rows} row(s); training needs at least {min_rows}"))
    y = target_values(table, target)
    report.task = task or infer_task(y)
    target_summary, _ = _summarise(target, "target", y, categorical=False)
    report.columns.append(target_summary)
    target_checks, report.classes = _target_checks(y, report.task, target)
    checks += target_checks
    for name, values in zip(table.header, table.columns):
        if name == target:
            continue
        summary, bad = _summarise(name, "feature", values, name in categorical)
        report.columns.append(summary)
        checks += _feature_checks(summary, values, bad, max_missing)
    target_check = "target_numeric" if report.task == "regression" else "target_classes"
    report.checks += _with_passes(checks, ("min_rows", "target_complete", target_check, *FEATURE_CHECKS))
    if report.passed:
        report.feature_schema = infer_schema(table, target, categorical)
    return report


def load_and_validate(path: str | os.PathLike, target: str, **options) -> tuple[Table | None, ValidationReport]:
    """Read and validate a CSV file; an unreadable or empty file is a failed check (and no table), not an exception."""
    name = Path(path).name
    try:
        table = read_csv(path)
    except DataError as exc:
        return None, ValidationReport(file=name, target=target, task=options.get("task"),
                                      checks=[_fail("readable", str(exc))])
    return table, validate_table(table, target, file=name, **options)


def validate_file(path: str | os.PathLike, target: str, **options) -> ValidationReport:
    """The validation report of a CSV file (options as for validate_table)."""
    return load_and_validate(path, target, **options)[1]


def require_valid(report: ValidationReport) -> ValidationReport:
    """Raise DataValidationError unless every check passed."""
    if not report.passed:
        raise DataValidationError(report)
    return report


def parse_names(text: str | None) -> set[str]:
    """A comma-separated list of column names ("" or None: none)."""
    return {name.strip() for name in (text or "").split(",") if name.strip()}


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options validation and training share."""
    parser.add_argument("--target", required=True, help="name of the label column")
    parser.add_argument("--task", choices=(*TASKS, ""), default=None, help="inferred from the target when omitted or empty")
    parser.add_argument("--categorical", default="", help="comma-separated categorical columns")
    parser.add_argument("--min-rows", type=int, default=DEFAULT_MIN_ROWS)
    parser.add_argument("--max-missing", type=float, default=DEFAULT_MAX_MISSING, help="largest missing share of a feature")


def data_options(args: argparse.Namespace) -> dict:
    """validate_table keyword arguments from parsed add_data_arguments options."""
    return {"task": args.task or None, "categorical": parse_names(args.categorical),
            "min_rows": args.min_rows, "max_missing": args.max_missing}


EXAMPLES = """example:
  mlops validate --data wine.csv --target quality --categorical colour --report validation.json"""


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CSV file with a header row")
    add_data_arguments(parser)
    parser.add_argument("--report", help="write the JSON report here")
    args = parser.parse_args(argv)
    if not Path(args.data).is_file():
        parser.error(f"--data {args.data}: no such file")
    report = validate_file(args.data, args.target, **data_options(args))
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(report.to_json())
    if not report.passed:
        for message in report.errors:
            print(f"{report.file}: {message}", file=sys.stderr)
        return 1
    print(f"{report.file}: valid, {report.rows} rows, task {report.task}, {len(report.feature_schema.features)} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
