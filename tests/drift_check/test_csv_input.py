"""CSV input of the drift command line: the target's task, and a current file's bad values."""
from __future__ import annotations

import numpy as np
import pytest

from drift_check.csv_input import current_accumulator, reference_baseline, target_task
from drift_check.stats import PREDICTION
from training.dataset import DataError, Table


def table(columns: dict[str, list[str]]) -> Table:
    return Table(header=list(columns), columns=list(columns.values()), sha256="")


@pytest.mark.parametrize(("values", "task"), [
    ([str(v) for v in range(100)], "regression"),
    (["1", "2", "3"] * 10, "multiclass"),  # numbers, but few: classes
    (["yes", "no"] * 10, "binary"),
])
def test_target_task(values, task):
    assert target_task(values) == task


def test_current_file_counts_absent_columns_and_rejects_non_numbers():
    reference = table({"x": [str(v) for v in np.linspace(0, 1, 50)], "c": ["a", "b"] * 25, "y": ["0", "1"] * 25})
    schema, baseline = reference_baseline(reference, "y", {"c"})
    acc = current_accumulator(baseline, schema, table({"x": ["0.5", "oops", "0.2"], "y": ["0", "1", "1"]}))
    assert (acc.rows, acc.rejected) == (2, 1)
    assert acc.issues == {"x": {"wrong_type": 1}, "c": {"absent": 3}}
    assert int(acc.counts[PREDICTION].sum()) == 2


def test_a_column_named_but_not_in_the_reference_is_bad_input():
    with pytest.raises(DataError, match="'colour'"):
        reference_baseline(table({"x": ["1", "2"]}), None, {"colour"})
