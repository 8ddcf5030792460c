"""Data-quality metrics of the drift-check handler on moto: published with a verdict only, per check, from the
thresholds its environment sets; a feature arriving 30 % missing reaches the DataQuality alarm's threshold."""
from __future__ import annotations

import json

import numpy as np
import pytest

from contracts import metric_names as mn
from contracts.env import SettingsError, Var
from stacks.config import Config
from tests.drift_check.drift_helpers import capture_lines, emf_blobs, make_columns, put_capture, run, stored_report

# The default deployment's thresholds, as the monitoring stack hands them to the function
# (tests/stacks/test_input_alarms.py checks that it does), and its DataQuality alarm threshold.
CONFIG = Config()
DEPLOYED = {Var.QUALITY_MISSING_INCREASE: str(CONFIG.quality_missing_increase),
            Var.QUALITY_OUT_OF_RANGE_SHARE: str(CONFIG.quality_out_of_range_share),
            Var.QUALITY_MALFORMED_SHARE: str(CONFIG.quality_malformed_share),
            Var.QUALITY_FAIL_SHARE: str(CONFIG.quality_fail_share)}


def with_x_missing(lines: list[bytes], every: int = 10, missing: int = 3) -> list[bytes]:
    """The same capture lines with feature x null in `missing` of every `every` rows (30 % by default)."""
    out = []
    for i, line in enumerate(lines):
        record = json.loads(line)
        if i % every < missing:
            record["features"]["x"] = None
        out.append(json.dumps(record).encode() + b"\n")
    return out


@pytest.fixture
def deployed(aws, monkeypatch):
    for name, value in DEPLOYED.items():
        monkeypatch.setenv(name, value)
    return aws


def quality_blobs(capsys) -> tuple[list[dict], dict[str, dict]]:
    """(blobs with DataQualityIssues, per-check blobs by Check)."""
    blobs = emf_blobs(capsys)
    return ([b for b in blobs if mn.DRIFT_QUALITY_ISSUES in b],
            {b[mn.DIM_CHECK]: b for b in blobs if mn.DRIFT_QUALITY_BY_CHECK in b})


def test_a_feature_arriving_30_percent_missing_raises_the_quality_alarm_not_drift(deployed, scheduled_event, capsys):
    lines = with_x_missing(capture_lines(make_columns(np.random.default_rng(21), 1000)))  # the baseline's distribution
    put_capture(deployed.s3, "part-1.gz", lines)
    result = run(deployed, scheduled_event)

    # The verdict on the distributions is unchanged: no drift, status ok ...
    assert result["status"] == "ok" and not result["dataset_drift"]
    issues = stored_report(deployed.s3, result["report_uri"])["quality"]["issues"]
    assert issues == [{"feature": "x", "check": "missing_rate_increase", "value": pytest.approx(0.3), "severity": "warn"}]
    # ... and the data-quality metric reaches the alarm's threshold, on the dimension set the alarm watches.
    (dataset,), by_check = quality_blobs(capsys)
    assert dataset[mn.DRIFT_QUALITY_ISSUES] == [1.0] and dataset[mn.DRIFT_QUALITY_ISSUES][0] >= CONFIG.quality_alarm_issues
    assert [mn.DIM_MODEL_NAME] in dataset["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert dataset[mn.DIM_MODEL_NAME] == "churn"
    # Which check it was, for the dashboard and the runbook.
    assert set(by_check) == {"missing_rate_increase"}
    per_check = by_check["missing_rate_increase"]
    assert per_check[mn.DRIFT_QUALITY_BY_CHECK] == [1.0]
    assert {mn.DIM_MODEL_NAME, mn.DIM_MODEL_VERSION, mn.DIM_CHECK} <= set(per_check["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0])


def test_clean_data_publishes_zero_issues_and_no_check(deployed, scheduled_event, capsys):
    put_capture(deployed.s3, "part-1.gz", capture_lines(make_columns(np.random.default_rng(22), 1000)))
    assert run(deployed, scheduled_event)["status"] == "ok"
    (dataset,), by_check = quality_blobs(capsys)
    assert dataset[mn.DRIFT_QUALITY_ISSUES] == [0.0] < [CONFIG.quality_alarm_issues] and by_check == {}  # OK


def test_too_few_rows_publish_no_quality_metric(deployed, scheduled_event, capsys):
    """The shares of a few rows are noise, and no verdict must not read as a clean bill."""
    lines = with_x_missing(capture_lines(make_columns(np.random.default_rng(23), 100)), missing=9)
    put_capture(deployed.s3, "part-1.gz", lines)
    result = run(deployed, scheduled_event)
    assert result["status"] == "insufficient_data"
    assert stored_report(deployed.s3, result["report_uri"])["quality"]["issues"]  # in the report, all the same
    blobs = emf_blobs(capsys)
    assert any(mn.DRIFT_INSUFFICIENT_DATA in b for b in blobs)
    assert not [b for b in blobs if mn.DRIFT_QUALITY_ISSUES in b or mn.DRIFT_QUALITY_BY_CHECK in b]


def test_malformed_capture_lines_count_as_their_own_check(deployed, scheduled_event, capsys):
    lines = capture_lines(make_columns(np.random.default_rng(24), 1000))
    put_capture(deployed.s3, "part-1.gz", lines + [b"{oops\n"] * 20)  # 2 % of the lines
    run(deployed, scheduled_event)
    _, by_check = quality_blobs(capsys)
    assert by_check["rejected_share"][mn.DRIFT_QUALITY_BY_CHECK] == [1.0]


def test_the_configured_thresholds_decide(deployed, scheduled_event, capsys, monkeypatch):
    monkeypatch.setenv(Var.QUALITY_MISSING_INCREASE, "0.5")  # 30 % more missing is tolerated here
    put_capture(deployed.s3, "part-1.gz", with_x_missing(capture_lines(make_columns(np.random.default_rng(21), 1000))))
    result = run(deployed, scheduled_event)
    report = stored_report(deployed.s3, result["report_uri"])
    assert report["thresholds"]["missing_warn"] == 0.5 and report["quality"]["issues"] == []
    (dataset,), _ = quality_blobs(capsys)
    assert dataset[mn.DRIFT_QUALITY_ISSUES] == [0.0]


def test_the_fail_share_makes_quality_a_drift_verdict(deployed, scheduled_event, monkeypatch):
    monkeypatch.setenv(Var.QUALITY_FAIL_SHARE, "0.25")
    put_capture(deployed.s3, "part-1.gz", with_x_missing(capture_lines(make_columns(np.random.default_rng(21), 1000))))
    result = run(deployed, scheduled_event)
    assert result["status"] == "drift" and result["dataset_drift"]


@pytest.mark.parametrize(("name", "value"), [
    (Var.QUALITY_FAIL_SHARE, "0"), (Var.QUALITY_MALFORMED_SHARE, "1.5"), (Var.QUALITY_OUT_OF_RANGE_SHARE, "five %"),
    (Var.QUALITY_MISSING_INCREASE, "-0.1"),
])
def test_a_bad_threshold_names_its_variable(deployed, scheduled_event, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        run(deployed, scheduled_event)
