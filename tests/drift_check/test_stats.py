"""Baseline, accumulator and verdicts on distributions whose answer is known."""
from __future__ import annotations

import json

import numpy as np
import pytest

from contracts.schema import MISSING_CATEGORY, Feature, FeatureSchema, FeatureType
from drift_check.stats import PREDICTION, Accumulator, build_baseline, numeric_edges
from drift_check.stats_compare import (
    Thresholds,
    benjamini_hochberg,
    compare,
    ks_from_counts,
    psi,
)
from tests.drift_check.drift_helpers import SCHEMA, make_columns


def check(baseline: dict, columns: dict, thresholds: Thresholds | None = None) -> dict:
    acc = Accumulator(baseline)
    acc.update(columns, len(next(iter(columns.values()))))
    return compare(baseline, acc, thresholds)


def single(kind: FeatureType, values, name: str = "v") -> dict:
    schema = FeatureSchema(target="y", features=[Feature(name=name, type=kind)])
    return json.loads(json.dumps(build_baseline(schema, {name: values}, task="regression", classes=None, predictions=None)))


# ---------------------------------------------------------------- baseline


def test_baseline_is_json_and_describes_every_feature(baseline):
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
    stats = single(FeatureType.NUMERIC, values)["features"]["v"]
    # bins: <0, {0}, (0,1), {1}, (1,2), {2}, >2
    assert stats["counts"] == [0, 100, 0, 200, 0, 300, 0]


def test_point_masses_of_a_continuous_feature_keep_their_own_bin():
    rng = np.random.default_rng(0)
    values = np.where(rng.random(5000) < 0.4, 0.0, rng.exponential(1.0, 5000))  # 40 % exact zeros
    stats = single(FeatureType.NUMERIC, values)["features"]["v"]
    zero_bin = stats["edges"].index(0.0) + 1
    assert stats["counts"][zero_bin] == int(np.sum(values == 0.0))


def test_categorical_baseline_keeps_missing_apart():
    values = np.array(["a", "b", MISSING_CATEGORY, "a"], dtype=object)
    stats = single(FeatureType.CATEGORICAL, values)["features"]["v"]
    assert stats["categories"] == ["a", "b"]
    assert stats["counts"] == [2, 1, 0, 0, 1]  # a, b, other, unseen, missing
    assert stats["missing_rate"] == 0.25


def test_baseline_names_a_missing_column():
    with pytest.raises(KeyError, match="'color'"):
        build_baseline(SCHEMA, {"x": np.zeros(3), "n": np.zeros(3)}, task="regression", classes=None, predictions=None)


# --------------------------------------------------------------- verdicts


def test_same_distribution_is_not_flagged(baseline):
    report = check(baseline, make_columns(np.random.default_rng(1), 2000))
    assert report["status"] == "ok" and not report["dataset_drift"]
    assert report["drifted_features"] == []
    assert all(f["status"] == "tested" and not f["drift"] for f in report["features"].values())


@pytest.mark.parametrize(("shift", "severity"), [(0.5, "warn"), (1.5, "critical")])
def test_mean_shift_is_flagged_with_its_severity(baseline, shift, severity):
    report = check(baseline, make_columns(np.random.default_rng(2), 2000, shift=shift))
    assert report["status"] == "drift" and report["dataset_drift"]
    assert report["drifted_features"] == ["x"]
    x = report["features"]["x"]
    assert x["severity"] == severity and x["p_adjusted"] < 0.05
    assert x["wasserstein_std"] == pytest.approx(shift, rel=0.3)
    assert report["drift_share"] == pytest.approx(1 / 3)


def test_small_significant_change_is_not_drift(baseline):
    """A 0.1-std shift is detectable in 50,000 rows but too small to matter (PSI < 0.1)."""
    report = check(baseline, make_columns(np.random.default_rng(3), 50_000, shift=0.1))
    x = report["features"]["x"]
    assert x["significant"] and x["severity"] == "none" and not x["drift"]
    assert not report["dataset_drift"]


def test_category_share_change_is_flagged(baseline):
    report = check(baseline, make_columns(np.random.default_rng(4), 2000, blue=0.45))
    color = report["features"]["color"]
    assert color["drift"] and color["severity"] == "critical"
    assert color["max_share_change_category"] == "blue"
    assert color["max_share_change"] == pytest.approx(0.25, abs=0.05)


def test_discrete_feature_shift_is_flagged(baseline):
    columns = make_columns(np.random.default_rng(5), 2000)
    columns["n"] = columns["n"] + 1  # every count one higher
    report = check(baseline, columns)
    assert report["features"]["n"]["drift"] and report["features"]["n"]["severity"] == "critical"


def test_tiny_window_is_insufficient_data_never_drift(baseline):
    report = check(baseline, make_columns(np.random.default_rng(6), 100, shift=3.0))
    assert report["status"] == "insufficient_data"
    assert not report["dataset_drift"] and report["drifted_features"] == []
    assert not report["features"]["x"]["drift"]
    assert report["features"]["x"]["psi"] > 1  # the numbers are still reported


def test_min_rows_is_configurable(baseline):
    columns = make_columns(np.random.default_rng(6), 100, shift=3.0)
    assert check(baseline, columns, Thresholds(min_rows=80, min_values=50))["status"] == "drift"


def test_constant_feature():
    base = single(FeatureType.NUMERIC, np.full(1000, 7.0))
    assert check(base, {"v": np.full(600, 7.0)})["status"] == "ok"
    moved = check(base, {"v": np.full(600, 8.0)})
    assert moved["dataset_drift"] and moved["features"]["v"]["quality"]["out_of_range_share"] == 1.0


def test_all_missing_current_values_fail_quality():
    base = single(FeatureType.NUMERIC, np.random.default_rng(0).normal(size=1000))
    report = check(base, {"v": np.full(600, np.nan)})
    feature = report["features"]["v"]
    assert feature["status"] == "insufficient_data"  # no values to test
    assert feature["quality"]["missing_rate_increase"] == 1.0
    assert report["quality"]["failed"] and report["dataset_drift"]


def test_all_missing_reference_is_not_tested():
    base = single(FeatureType.NUMERIC, np.full(1000, np.nan))
    report = check(base, {"v": np.ones(600)})
    assert report["features"]["v"]["status"] == "no_reference"
    assert not report["features"]["v"]["drift"]


def test_unseen_categories_are_counted_and_named():
    base = single(FeatureType.CATEGORICAL, np.array(["a", "b"] * 500, dtype=object))
    current = np.array(["a", "b"] * 400 + ["zzz"] * 150 + ["yyy"] * 50, dtype=object)
    report = check(base, {"v": current})
    feature = report["features"]["v"]
    assert feature["quality"]["unseen_share"] == pytest.approx(0.2)
    assert feature["current"]["unseen_examples"] == ["yyy", "zzz"]
    assert feature["drift"] and feature["max_share_change_category"] == "(unseen)"
    assert [i["check"] for i in report["quality"]["issues"]] == ["unseen_share"]


def test_values_outside_the_training_range_fail_quality_at_a_third():
    rng = np.random.default_rng(0)
    base = single(FeatureType.NUMERIC, rng.uniform(0, 1, 2000))
    current = np.concatenate([rng.uniform(0.1, 0.9, 600), rng.uniform(5, 6, 400)])
    report = check(base, {"v": current})
    assert report["features"]["v"]["quality"]["out_of_range_share"] == pytest.approx(0.4)
    assert {"feature": "v", "check": "out_of_range_share", "value": pytest.approx(0.4), "severity": "fail"} in report["quality"]["issues"]


def test_prediction_drift_is_reported_beside_features(baseline):
    columns = make_columns(np.random.default_rng(7), 2000)
    acc = Accumulator(baseline)
    acc.update(columns | {PREDICTION: ["yes"] * 2000}, 2000)
    report = compare(baseline, acc)
    assert report["prediction_drift"] and report["prediction"]["severity"] == "critical"
    assert not report["dataset_drift"]  # the features did not move


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
    other = single(FeatureType.NUMERIC, np.arange(100.0))
    with pytest.raises(ValueError, match="other features"):
        Accumulator.from_dict(baseline, Accumulator(other).to_dict())
    with pytest.raises(ValueError, match="different baselines"):
        Accumulator(baseline).merge(Accumulator(other))


# -------------------------------------------------------------- statistics


def test_binned_ks_is_never_larger_than_exact_ks():
    rng = np.random.default_rng(10)
    ref, cur = rng.normal(size=4000), rng.normal(0.1, 1, size=1000)
    edges, _ = numeric_edges(ref)
    from scipy.stats import ks_2samp

    from drift_check.stats import bin_numeric

    d, p = ks_from_counts(bin_numeric(edges, ref)[0], bin_numeric(edges, cur)[0])
    exact = ks_2samp(ref, cur)
    assert d <= exact.statistic + 1e-12 and p >= exact.pvalue * 0.9


def test_psi_of_identical_counts_is_zero_and_grows_with_change():
    ref = np.array([100, 100, 100, 100])
    assert psi(ref, ref) == pytest.approx(0.0)
    assert psi(ref, np.array([130, 100, 100, 70])) < psi(ref, np.array([200, 100, 100, 0]))


def test_benjamini_hochberg_matches_the_textbook_example():
    p = [0.01, 0.04, 0.03, 0.005]
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([]) == []
