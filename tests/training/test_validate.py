"""Data validation: each problem is caught with a message naming the column, and the CLI's exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.schema import FeatureType
from tests.training.training_helpers import binary_rows, write_csv
from training.validate import (
    DataValidationError,
    infer_task,
    main,
    require_valid,
    validate_file,
)

ROOT = Path(__file__).resolve().parents[2]


def _rows(n: int = 60) -> list[list[object]]:
    """a numeric, b numeric, c text; label alternates x/y."""
    return [[i, i % 7 + 0.5, ["p", "q", "r"][i % 3], "xy"[i % 2]] for i in range(n)]


def _validate(tmp_path: Path, header: list[str], rows: list[list[object]], **options):
    return validate_file(write_csv(tmp_path / "d.csv", header, rows), options.pop("target", "label"), **options)


def _only_error(report) -> str:
    assert not report.passed
    assert len(report.errors) == 1, report.errors
    return report.errors[0]


def test_valid_data_yields_schema_summary_and_inferred_task(tmp_path):
    report = _validate(tmp_path, ["a", "b", "c", "label"], _rows())
    assert report.passed and report.task == "binary" and report.classes == ["x", "y"]
    assert [f.name for f in report.feature_schema.features] == ["a", "b", "c"]
    assert report.feature_schema.feature("c").type is FeatureType.CATEGORICAL
    assert {c.name: c.type for c in report.columns if c.role == "feature"}["a"] is FeatureType.NUMERIC
    assert json.loads(report.to_json())["passed"] is True
    assert {"min_rows", "target_classes", "numeric_values", "not_constant"} <= {c.name for c in report.checks if c.passed}


def test_missing_target_is_named(tmp_path):
    message = _only_error(_validate(tmp_path, ["a", "b", "c", "label"], _rows(), target="outcome"))
    assert "target column 'outcome' is not in the header" in message


def test_non_numeric_value_in_numeric_column_names_column_value_and_line(tmp_path):
    rows = _rows()
    rows[4][1] = "oops"
    message = _only_error(_validate(tmp_path, ["a", "b", "c", "label"], rows))
    assert "column 'b'" in message and "'oops'" in message and "line 6" in message


def test_mostly_text_column_becomes_categorical_not_an_error(tmp_path):
    rows = [[i, str(i) if i % 2 else f"t{i}", "p", "xy"[i % 2]] for i in range(60)]
    rows[0][2] = "q"
    report = _validate(tmp_path, ["a", "b", "c", "label"], rows)
    assert report.passed, report.errors
    assert report.feature_schema.feature("b").type is FeatureType.CATEGORICAL


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert "the file is empty" in _only_error(validate_file(path, "label"))


def test_header_without_rows(tmp_path):
    assert "no data rows" in _only_error(_validate(tmp_path, ["a", "label"], []))


def test_one_class_only(tmp_path):
    rows = [[r[0], r[1], r[2], "x"] for r in _rows()]
    assert "one class only ('x')" in _only_error(_validate(tmp_path, ["a", "b", "c", "label"], rows))


def test_all_missing_column(tmp_path):
    rows = [[*r[:3], "", r[3]] for r in _rows()]
    message = _only_error(_validate(tmp_path, ["a", "b", "c", "empty", "label"], rows))
    assert "column 'empty' has no values" in message


def test_constant_column(tmp_path):
    rows = [[*r[:3], 7, r[3]] for r in _rows()]
    assert "column 'k' has the single value '7'" in _only_error(_validate(tmp_path, ["a", "b", "c", "k", "label"], rows))


def test_duplicated_column_names(tmp_path):
    message = _only_error(_validate(tmp_path, ["a", "a", "c", "label"], _rows()))
    assert "column name 'a' appears 2 times" in message


def test_too_few_rows(tmp_path):
    assert "has 20 row(s); training needs at least 50" in _only_error(_validate(tmp_path, ["a", "b", "c", "label"], _rows(20)))


def test_missing_rate_over_limit_and_missing_target(tmp_path):
    rows = _rows()
    for r in rows[:40]:
        r[1] = ""
    rows[10][3] = "NA"
    report = _validate(tmp_path, ["a", "b", "c", "label"], rows)
    assert any("column 'b' is 67% missing (limit 50%)" in e for e in report.errors)
    assert any("target 'label' is missing on 1 row(s), e.g. line 12" in e for e in report.errors)


def test_task_mismatch_and_unknown_categorical(tmp_path):
    rows = [[*r[:3], ["x", "y", "z"][i % 3]] for i, r in enumerate(_rows())]
    report = _validate(tmp_path, ["a", "b", "c", "label"], rows, task="binary")
    assert "task binary needs exactly 2 classes" in _only_error(report)
    report = _validate(tmp_path, ["a", "b", "c", "label"], _rows(), task="multiclass")
    assert "task multiclass needs 3 or more classes" in _only_error(report)
    report = _validate(tmp_path, ["a", "b", "c", "label"], _rows(), categorical={"nope"})
    assert "categorical column 'nope' is not in the header" in _only_error(report)


def test_regression_target_must_be_numeric(tmp_path):
    rows = [[*r[:3], i * 1.5] for i, r in enumerate(_rows())]
    rows[3][3] = "big"
    assert "must be numeric for regression, 'big' on line 5" in _only_error(
        _validate(tmp_path, ["a", "b", "c", "label"], rows, task="regression"))


@pytest.mark.parametrize("values, task", [
    (["a", "b", "a"], "binary"),
    (["0", "1", "1"], "binary"),
    (["1", "2", "3", "2"], "multiclass"),
    ([str(i) for i in range(30)], "regression"),
    (["0.5", "1.25", "2"], "regression"),
])
def test_task_inference(values, task):
    assert infer_task(values) == task


def test_require_valid_raises_with_every_problem(tmp_path):
    rows = [[r[0], 3, r[2], "x"] for r in _rows()]
    with pytest.raises(DataValidationError) as info:
        require_valid(_validate(tmp_path, ["a", "b", "c", "label"], rows))
    assert "column 'b'" in str(info.value) and "one class only" in str(info.value)
    assert not info.value.report.passed


def test_cli_exit_codes_and_report(tmp_path, capsys):
    good = write_csv(tmp_path / "good.csv", *binary_rows())
    assert main(["--data", str(good), "--target", "label", "--categorical", "color", "--report", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["task"] == "binary"
    assert main(["--data", str(good), "--target", "nope", "--report", str(tmp_path / "bad.json")]) == 1
    assert "target column 'nope'" in capsys.readouterr().err
    assert json.loads((tmp_path / "bad.json").read_text())["passed"] is False
    with pytest.raises(SystemExit) as usage:
        main(["--data", str(tmp_path / "missing.csv"), "--target", "label"])
    assert usage.value.code == 2


def test_cli_runs_as_a_script(tmp_path):
    bad = write_csv(tmp_path / "bad.csv", ["a", "label"], [[1, "x"]] * 3)
    done = subprocess.run([sys.executable, str(ROOT / "training" / "validate.py"), "--data", str(bad), "--target", "label"],
                          check=False, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert "bad.csv: " in done.stderr and "training needs at least 50" in done.stderr
