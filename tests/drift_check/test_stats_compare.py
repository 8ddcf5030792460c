"""Verdicts on distributions whose answer is known, and the statistics behind them."""
from __future__ import annotations

import numpy as np
import pytest

from contracts.baseline import Baseline
from contracts.schema import FeatureType
from drift_check.stats import PREDICTION, Accumulator, numeric_edges
from drift_check.stats_compare import (
    Thresholds,
    benjamini_hochberg,
    compare,
    ks_from_counts,
    psi,
)
from tests.drift_check.drift_helpers import make_columns, one_feature_baseline


def check(baseline: Baseline, columns: dict, thresholds: Thresholds | None = None) -> dict:
    """The report's JSON body for `columns` counted against `baseline`."""
    acc = Accumulator(baseline)
    acc.update(columns, len(next(iter(columns.values()))))
    return compare(baseline, acc, thresholds).to_dict()


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
    base = one_feature_baseline(FeatureType.NUMERIC, np.full(1000, 7.0))
    assert check(base, {"v": np.full(600, 7.0)})["status"] == "ok"
    moved = check(base, {"v": np.full(600, 8.0)})
    assert moved["dataset_drift"] and moved["features"]["v"]["quality"]["out_of_range_share"] == 1.0


def test_all_missing_current_values_fail_quality():
    base = one_feature_baseline(FeatureType.NUMERIC, np.random.default_rng(0).normal(size=1000))
    report = check(base, {"v": np.full(600, np.nan)})
    feature = report["features"]["v"]
    assert feature["status"] == "insufficient_data"  # no values to test
    assert feature["quality"]["missing_rate_increase"] == 1.0
    assert report["quality"]["failed"] and report["dataset_drift"]


def test_all_missing_reference_is_not_tested():
    base = one_feature_baseline(FeatureType.NUMERIC, np.full(1000, np.nan))
    report = check(base, {"v": np.ones(600)})
    assert report["features"]["v"]["status"] == "no_reference"
    assert not report["features"]["v"]["drift"]


def test_unseen_categories_are_counted_and_named():
    base = one_feature_baseline(FeatureType.CATEGORICAL, np.array(["a", "b"] * 500, dtype=object))
    current = np.array(["a", "b"] * 400 + ["zzz"] * 150 + ["yyy"] * 50, dtype=object)
    report = check(base, {"v": current})
    feature = report["features"]["v"]
    assert feature["quality"]["unseen_share"] == pytest.approx(0.2)
    assert feature["current"]["unseen_examples"] == ["yyy", "zzz"]
    assert feature["drift"] and feature["max_share_change_category"] == "(unseen)"
    assert [i["check"] for i in report["quality"]["issues"]] == ["unseen_share"]


def test_values_outside_the_training_range_fail_quality_at_a_third():
    rng = np.random.default_rng(0)
    base = one_feature_baseline(FeatureType.NUMERIC, rng.uniform(0, 1, 2000))
    current = np.concatenate([rng.uniform(0.1, 0.9, 600), rng.uniform(5, 6, 400)])
    report = check(base, {"v": current})
    assert report["features"]["v"]["quality"]["out_of_range_share"] == pytest.approx(0.4)
    assert {"feature": "v", "check": "out_of_range_share", "value": pytest.approx(0.4), "severity": "fail"} in report["quality"]["issues"]


def test_prediction_drift_is_reported_beside_features(baseline):
    columns = make_columns(np.random.default_rng(7), 2000)
    acc = Accumulator(baseline)
    acc.update(columns | {PREDICTION: ["yes"] * 2000}, 2000)
    report = compare(baseline, acc).to_dict()
    assert report["prediction_drift"] and report["prediction"]["severity"] == "critical"
    assert not report["dataset_drift"]  # the features did not move


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


@pytest.mark.parametrize(("rejected", "severity"), [(5, None), (20, "warn"), (600, "fail")])
def test_malformed_capture_lines_are_a_quality_issue_of_their_own(rejected, severity):
    """Rejected lines warn from the malformed share (1 %) and fail from a third, like a feature's wrong types."""
    base = one_feature_baseline(FeatureType.NUMERIC, np.random.default_rng(0).normal(size=1000))
    acc = Accumulator(base)
    acc.update({"v": np.random.default_rng(1).normal(size=1000)}, 1000)
    acc.count_rejects({"bad_json": rejected})
    issues = [i for i in compare(base, acc).to_dict()["quality"]["issues"] if i["check"] == "rejected_share"]
    if severity is None:  # 5 of 1,005 lines: under 1 %
        assert issues == []
    else:
        assert issues == [{"feature": None, "check": "rejected_share", "value": pytest.approx(rejected / (1000 + rejected)),
                           "severity": severity}]


def test_quality_thresholds_are_the_ones_given():
    base = one_feature_baseline(FeatureType.NUMERIC, np.random.default_rng(0).normal(size=1000))
    current = np.where(np.arange(1000) % 10 < 3, np.nan, np.random.default_rng(1).normal(size=1000))  # 30 % missing
    assert [i["severity"] for i in check(base, {"v": current})["quality"]["issues"]] == ["warn"]
    assert check(base, {"v": current}, Thresholds(missing_warn=0.5))["quality"]["issues"] == []
    failed = check(base, {"v": current}, Thresholds(quality_fail=0.25))
    assert [i["severity"] for i in failed["quality"]["issues"]] == ["fail"] and failed["dataset_drift"]


@pytest.mark.parametrize("field", ["quality_warn", "missing_warn", "malformed_warn", "quality_fail"])
@pytest.mark.parametrize("value", [0.0, -0.1, 1.5])
def test_quality_shares_outside_zero_to_one_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        Thresholds(**{field: value})
