"""The hold-out split of a data set whose production rows follow the configured ones (training.train)."""
from __future__ import annotations

import numpy as np
import pytest

from training.dataset import DataError
from training.train import held_out_by_content, split_indices, split_with_appended


def _data(configured: int, production: int, seed: int = 0) -> tuple[np.ndarray, list[list[str]]]:
    rng = np.random.default_rng(seed)
    y = rng.choice(["a", "b"], size=configured + production).astype(object)
    cells = [[f"{rng.normal():.6f}", str(label)] for label in y[configured:]]
    return y, cells


def test_configured_rows_are_split_as_on_their_own_whatever_the_production_rows():
    # the reviewed example: 1,000 configured rows, then 100 production rows (71 of the 194 configured
    # hold-out rows were in the previous run's training split when all rows were split by position)
    y, cells = _data(1000, 100)
    live_train, live_test = split_indices(y[:1000], "binary", 0.2, 42)  # how the live model was split
    train, test = split_with_appended(y, "binary", 0.2, 42, configured=1000, appended=cells)
    assert np.array_equal(test[test < 1000], live_test) and np.array_equal(train[train < 1000], live_train)
    assert not set(test) & set(live_train)
    assert sorted([*train, *test]) == list(range(1100)) and np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


def test_a_production_row_keeps_its_side_across_runs():
    y, cells = _data(500, 300)
    earlier_train, earlier_test = split_with_appended(y[:700], "binary", 0.2, 42, configured=500, appended=cells[:200])
    train, test = split_with_appended(y, "binary", 0.2, 42, configured=500, appended=cells)
    assert set(earlier_test) <= set(test) and set(earlier_train) <= set(train)
    share = (test >= 500).sum() / 300
    assert 0.12 < share < 0.28  # about test-size, not stratified
    # the side depends on the row's values only: the same row anywhere, in any run, any seed
    assert all(held_out_by_content(c, 0.2) == (500 + i in set(test)) for i, c in enumerate(cells))
    assert held_out_by_content(["1.5", "x\u2028y"], 0.5) == held_out_by_content(["1.5", "x\u2028y"], 0.5)
    assert not held_out_by_content(["1.5", "a"], 0.0) and held_out_by_content(["1.5", "a"], 1.0)


def test_regression_and_bad_counts():
    rng = np.random.default_rng(1)
    y = rng.normal(size=260)
    cells = [[f"{v:.6f}"] for v in y[200:]]
    train, test = split_with_appended(y, "regression", 0.25, 7, configured=200, appended=cells)
    assert np.array_equal(test[test < 200], split_indices(y[:200], "regression", 0.25, 7)[1])
    with pytest.raises(ValueError, match="cannot be 200 configured and 59 appended"):
        split_with_appended(y, "regression", 0.25, 7, configured=200, appended=cells[1:])
    with pytest.raises(DataError, match="0 test rows"):
        split_with_appended(y[:3], "regression", 0.01, 7, configured=0, appended=cells[:3])
