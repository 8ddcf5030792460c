"""Baseline bins and the accumulator: reference statistics, counting, merging, checkpointing."""
from __future__ import annotations

import json

import numpy as np
import pytest

from contracts.baseline import baseline_json
from contracts.schema import MISSING_CATEGORY, FeatureType
from drift_check.stats import PREDICTION, Accumulator, build_baseline, numeric_edges
from drift_check.stats_compare import compare
from tests.drift_check.drift_helpers import SCHEMA, make_columns, one_feature_baseline

# ---------------------------------------------------------------- baseline


def test_baseline_is_json_and_describes_every_feature(baseline):
    baseline = json.loads(baseline_json(baseline))  # what baseline.json holds
    assert set(baseline["features"]) == {"x", "n", "color"}
    x = baseline["features"]["x"]
    assert x["count"] == 5000 and x["missing_rate"] == 0.0
    assert len(x["edges"]) >= 100  # fine bins for KS and Wasserstein
    assert sum(x["counts"]) == 5000 and len(x["counts"]) == len(x["edges"]) + 1
    assert x["counts"][0] == 0 and x["counts"][-1] == 0  # outer bins: below min / above max
    assert 9 <= len(x["psi_groups"]) <= 14  # about deciles, plus the two out-of-range bins
    color = baseline["features"]["color"]
    assert color["categories"][0] in {"red", "green"} and sum(color["counts"]) == 5000
    assert baseline["prediction"]["categories"] and set(baseline["prediction"]["known"]) == {"no", "yes"}


def test_discrete_feature_gets_one_bin_per_value():
    values = np.array([0.0, 1.0, 1.0, 2.0, 2.0, 2.0] * 100)
    assert numeric_edges(values)[1]  # discrete
    stats = one_feature_baseline(FeatureType.NUMERIC, values).to_dict()["features"]["v"]
    # bins: <0, {0}, (0,1), {1}, (1,2), {2}, >2
    assert stats["counts"] == [0, 100, 0, 200, 0, 300, 0]


def test_point_masses_of_a_continuous_feature_keep_their_own_bin():
    rng = np.random.default_rng(0)
    values = np.where(rng.random(5000) < 0.4, 0.0, rng.exponential(1.0, 5000))  # 40 % exact zeros
    stats = one_feature_baseline(FeatureType.NUMERIC, values).to_dict()["features"]["v"]
    zero_bin = stats["edges"].index(0.0) + 1
    assert stats["counts"][zero_bin] == int(np.sum(values == 0.0))


def test_categorical_baseline_keeps_missing_apart():
    values = np.array(["a", "b", MISSING_CATEGORY, "a"], dtype=object)
    stats = one_feature_baseline(FeatureType.CATEGORICAL, values).to_dict()["features"]["v"]
    assert stats["categories"] == ["a", "b"]
    assert stats["counts"] == [2, 1, 0, 0, 1]  # a, b, other, unseen, missing
    assert stats["missing_rate"] == 0.25


def test_baseline_names_a_missing_column():
    with pytest.raises(KeyError, match="'color'"):
        build_baseline(SCHEMA, {"x": np.zeros(3), "n": np.zeros(3)}, task="regression", classes=None, predictions=None)


# ------------------------------------------------------------ accumulator


def test_halves_merged_equal_the_whole(baseline):
    columns = make_columns(np.random.default_rng(8), 3000, shift=0.3)
    columns["x"][::10] = np.nan
    columns["color"][::7] = "purple"
    whole = Accumulator(baseline)
    whole.update(columns, 3000)
    first, second = Accumulator(baseline), Accumulator(baseline)
    first.update({k: v[:1234] for k, v in columns.items()}, 1234)
    second.update({k: v[1234:] for k, v in columns.items()}, 3000 - 1234)
    first.count_rejects({"bad_json": 2})
    second.count_rejects({"bad_json": 1, "wrong_type": 4})
    merged = first.merge(second)
    for name in whole.counts:
        assert np.array_equal(merged.counts[name], whole.counts[name]), name
    assert merged.missing == whole.missing and merged.unseen == whole.unseen
    assert merged.rows == 3000 and merged.reject_reasons == {"bad_json": 3, "wrong_type": 4}
    for name, (s, ss, lo, hi) in whole.moments.items():
        assert merged.moments[name] == pytest.approx([s, ss, lo, hi])


def test_accumulator_round_trips_through_json(baseline):
    acc = Accumulator(baseline)
    acc.update(make_columns(np.random.default_rng(9), 500) | {PREDICTION: ["no"] * 500}, 500)
    acc.count_issue("x", "wrong_type", 3)
    acc.count_unexpected(["extra"], 5)
    acc.versions.update({"3": 500})
    state = json.loads(json.dumps(acc.to_dict()))
    restored = Accumulator.from_dict(baseline, state)
    assert restored.to_dict() == acc.to_dict()
    assert compare(baseline, restored) == compare(baseline, acc)


def test_accumulator_refuses_state_of_another_baseline(baseline):
    other = one_feature_baseline(FeatureType.NUMERIC, np.arange(100.0))
    with pytest.raises(ValueError, match="other features"):
        Accumulator.from_dict(baseline, Accumulator(other).to_dict())
    with pytest.raises(ValueError, match="different baselines"):
        Accumulator(baseline).merge(Accumulator(other))
