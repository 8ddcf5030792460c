"""Low traffic: windows below min_rows are pooled across runs until a verdict, a model change or the maximum age."""
from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from contracts import metric_names as mn
from contracts import names
from drift_check.model_source import load_model
from drift_check.window_check import run_check
from tests.drift_check.drift_helpers import (
    FakeContext,
    capture_lines,
    emf_blobs,
    make_columns,
    put_capture,
    run,
    stored_report,
)


@pytest.fixture
def hourly_lines() -> list[list[bytes]]:
    """Six hours of 120 drifted rows each: 600 rows in all, above the 500-row minimum only together."""
    lines = capture_lines(make_columns(np.random.default_rng(5), 720, shift=1.0))
    return [lines[i * 120:(i + 1) * 120] for i in range(6)]


def checkpoint(aws) -> dict:
    return json.loads(aws.s3.get_object(Bucket="reports", Key=names.drift_checkpoint_key("churn"))["Body"].read())


def bins(report: dict) -> dict:
    return {name: f["histogram"] for name, f in report["features"].items()} | {"prediction": report["prediction"]["histogram"]}


def test_hours_below_the_minimum_are_pooled_into_one_verdict(aws, scheduled_event, hourly_lines, capsys):
    starts = set()
    for hour, lines in enumerate(hourly_lines[:4], start=1):
        put_capture(aws.s3, f"hour-{hour}.gz", lines)
        result = run(aws, scheduled_event)
        report = stored_report(aws.s3, result["report_uri"])
        assert result["status"] == "insufficient_data" and not result["dataset_drift"]
        assert result["pool"] == "carried_over" and result["pooled_runs"] == hour
        assert report["rows_checked"] == 120 * hour and report["window"]["files"] == hour
        assert f"{120 * hour} of the 500 rows needed, pooled over {hour} run(s)" in report["reason"]
        starts.add(report["window"]["start"])
        blob = next(b for b in emf_blobs(capsys) if mn.DRIFT_INSUFFICIENT_DATA in b)
        assert blob[mn.DRIFT_INSUFFICIENT_DATA] == [1.0] and mn.DRIFT_DATASET not in blob
        assert mn.DRIFT_ROWS_CHECKED not in blob, "carried-over rows are counted once, when the pool closes"
    assert starts == {None}, "a pooled window keeps the start of its first run"
    assert checkpoint(aws)["pool"]["runs"] == 4

    quiet = run(aws, scheduled_event)  # an hour without traffic still counts as a pooled run
    assert quiet["pool"] == "carried_over" and quiet["pooled_runs"] == 5 and quiet["rows_checked"] == 480

    put_capture(aws.s3, "hour-5.gz", hourly_lines[4])
    verdict = run(aws, scheduled_event)
    assert verdict["status"] == "drift" and verdict["drifted_features"] == ["x"]
    assert verdict["pool"] == "complete" and verdict["pooled_runs"] == 6 and verdict["rows_checked"] == 600
    report = stored_report(aws.s3, verdict["report_uri"])
    assert report["window"]["files"] == 5 and "reason" not in report
    assert checkpoint(aws)["pool"] is None
    blob = next(b for b in emf_blobs(capsys) if mn.DRIFT_DATASET in b)
    assert blob[mn.DRIFT_DATASET] == [1.0] and blob[mn.DRIFT_INSUFFICIENT_DATA] == [0.0]
    assert blob[mn.DRIFT_ROWS_CHECKED] == [600.0]

    # The pooled verdict counts exactly what one run over the same five files counts.
    aws.s3.delete_object(Bucket="reports", Key=names.drift_checkpoint_key("churn"))
    single = stored_report(aws.s3, run(aws, scheduled_event)["report_uri"])
    assert single["rows_checked"] == 600 and bins(single) == bins(report)

    # After a verdict the next quiet hour starts a new pool.
    put_capture(aws.s3, "hour-6.gz", hourly_lines[5])
    again = run(aws, scheduled_event)
    assert again["pool"] == "carried_over" and again["pooled_runs"] == 1 and again["rows_checked"] == 120


def test_a_model_change_starts_a_new_pool(aws, scheduled_event, hourly_lines, next_model_artifact, monkeypatch):
    for hour in (1, 2):
        put_capture(aws.s3, f"hour-{hour}.gz", hourly_lines[hour - 1])
        assert run(aws, scheduled_event)["pooled_runs"] == hour
    aws.s3.put_object(Bucket="artifacts", Key="churn/4/model.tar.gz", Body=next_model_artifact.tarball)
    monkeypatch.setenv("MODEL_DATA_URL", "s3://artifacts/churn/4/model.tar.gz")
    monkeypatch.setenv("MODEL_SHA256", next_model_artifact.sha256)
    put_capture(aws.s3, "hour-3.gz", hourly_lines[2])
    result = run(aws, scheduled_event)
    report = stored_report(aws.s3, result["report_uri"])
    assert report["model"]["version"] == "4"
    assert result["pooled_runs"] == 1 and result["rows_checked"] == 120 and report["window"]["files"] == 1


def test_a_pool_older_than_the_maximum_age_closes_without_a_verdict(aws, hourly_lines):
    settings = replace(aws.app.settings_from_env(), max_window=timedelta(hours=30))
    model = load_model(aws.s3, os.environ["MODEL_DATA_URL"], os.environ["MODEL_SHA256"])
    put_capture(aws.s3, "hour-1.gz", hourly_lines[0])
    now = datetime.now(UTC) + timedelta(minutes=1)
    first = run_check(aws.s3, settings, model, now)
    assert first.window.pool == "carried_over"
    put_capture(aws.s3, "hour-2.gz", hourly_lines[1])
    day = run_check(aws.s3, settings, model, now + timedelta(hours=24))
    assert day.window.pool == "carried_over" and day.rows_checked == 240 and day.window.runs == 2

    late = run_check(aws.s3, settings, model, now + timedelta(hours=31))
    assert late.status == "insufficient_data" and late.window.pool == "expired" and late.window.runs == 3
    assert late.rows_checked == 240 and "maximum window age" in late.reason
    assert checkpoint(aws)["pool"] is None

    put_capture(aws.s3, "hour-3.gz", hourly_lines[2])
    fresh = run_check(aws.s3, settings, model, now)  # its data is new: the age counts from the oldest file
    assert fresh.window.pool == "carried_over" and fresh.window.runs == 1 and fresh.rows_checked == 120
    assert first.window.start is None and fresh.window.start is not None  # a new window, from the committed cursor


def test_a_run_out_of_time_keeps_the_pool(aws, scheduled_event, hourly_lines):
    put_capture(aws.s3, "hour-1.gz", hourly_lines[0])
    assert run(aws, scheduled_event)["pool"] == "carried_over"
    for i in (2, 3, 4):
        put_capture(aws.s3, f"hour-{i}.gz", hourly_lines[i - 1])
    partial = run(aws, scheduled_event, FakeContext(remaining_ms=1_000))
    assert partial["status"] == "partial" and partial["rows_checked"] == 240  # the pool and one new file
    resumed = run(aws, scheduled_event)
    assert resumed["rows_checked"] == 480 and resumed["pooled_runs"] == 2 and resumed["pool"] == "carried_over"


def test_an_unreadable_pool_is_dropped_not_fatal(aws, scheduled_event, hourly_lines):
    put_capture(aws.s3, "hour-1.gz", hourly_lines[0])
    run(aws, scheduled_event)
    state = checkpoint(aws)
    state["pool"]["accumulator"] = {"format": "something else"}
    aws.s3.put_object(Bucket="reports", Key=names.drift_checkpoint_key("churn"), Body=json.dumps(state).encode())
    put_capture(aws.s3, "hour-2.gz", hourly_lines[1])
    result = run(aws, scheduled_event)
    assert result["pooled_runs"] == 1 and result["rows_checked"] == 120
