"""The drift-check Lambda handler against moto: reports, EMF metrics, checkpoints, bad input."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from contracts import metric_names as mn
from contracts import names
from contracts.artifact import TamperedArtifact
from tests.drift_check.drift_helpers import (
    PREFIX,
    FakeContext,
    capture_lines,
    emf_blobs,
    make_columns,
    put_capture,
    run,
    stored_report,
)


@pytest.fixture
def shifted_lines() -> list[bytes]:
    return capture_lines(make_columns(np.random.default_rng(11), 1200, shift=1.0))


def test_drift_is_reported_to_s3_and_cloudwatch(aws, scheduled_event, shifted_lines, capsys):
    put_capture(aws.s3, "part-1.gz", shifted_lines[:700])
    put_capture(aws.s3, "part-2", shifted_lines[700:], compress=False)
    result = run(aws, scheduled_event)

    assert result["status"] == "drift" and result["dataset_drift"]
    assert result["drifted_features"] == ["x"] and result["rows_checked"] == 1200
    report = stored_report(aws.s3, result["report_uri"])
    assert report["model"]["version"] == "3" and report["window"]["files"] == 2
    assert report["features"]["x"]["severity"] == "critical"
    assert result["report_uri"].startswith("s3://reports/drift/churn/dt=")
    html_key = result["report_uri"].removeprefix("s3://reports/").replace(".json", ".html")
    html = aws.s3.get_object(Bucket="reports", Key=html_key)["Body"].read().decode()
    assert "<svg" in html and "critical" in html and "<script" not in html

    blobs = emf_blobs(capsys)
    dataset = next(b for b in blobs if mn.DRIFT_DATASET in b)
    directive = dataset["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == mn.NAMESPACE
    assert [d for d in directive["Dimensions"][0] if d != "service"] == [mn.DIM_MODEL_NAME, mn.DIM_MODEL_VERSION]
    assert [mn.DIM_MODEL_NAME] in directive["Dimensions"]
    assert dataset[mn.DIM_MODEL_NAME] == "churn" and dataset[mn.DIM_MODEL_VERSION] == "3"
    assert dataset[mn.DRIFT_DATASET] == [1.0] and dataset[mn.DRIFT_ROWS_CHECKED] == [1200.0]
    assert dataset[mn.DRIFT_SHARE] == [pytest.approx(100 / 3)] and dataset[mn.DRIFT_ROWS_REJECTED] == [0.0]
    per_feature = {b[mn.DIM_FEATURE]: b for b in blobs if mn.DIM_FEATURE in b}
    assert set(per_feature) == {"x", "n", "color"}
    assert per_feature["x"][mn.DRIFT_FEATURE_FLAG] == [1.0] and per_feature["x"][mn.DRIFT_FEATURE_PSI][0] > 0.25
    assert per_feature["n"][mn.DRIFT_FEATURE_FLAG] == [0.0]


def test_second_run_of_the_same_window_counts_nothing(aws, scheduled_event, shifted_lines):
    put_capture(aws.s3, "part-1.gz", shifted_lines)
    assert run(aws, scheduled_event)["rows_checked"] == 1200
    again = run(aws, scheduled_event)
    assert again["status"] == "no_data" and again["rows_checked"] == 0
    put_capture(aws.s3, "part-2.gz", shifted_lines[:600])
    assert run(aws, scheduled_event)["rows_checked"] == 600


def totals(report: dict) -> dict:
    """What must not change however the window was read: row counts and every bin count."""
    return {
        "rows": (report["rows_checked"], report["rows_rejected"], report["reject_reasons"]),
        "bins": {name: f["histogram"] for name, f in report["features"].items()},
        "prediction": report["prediction"]["histogram"],
    }


@pytest.fixture
def four_files(aws, shifted_lines) -> None:
    for i in range(4):
        put_capture(aws.s3, f"part-{i}.gz", shifted_lines[i * 300:(i + 1) * 300] + [b"not json\n"])


def expected_totals(aws, scheduled_event) -> dict:
    """The same capture files read in one go by a fresh checkpoint."""
    aws.s3.delete_object(Bucket="reports", Key=names.drift_checkpoint_key("churn"))
    return totals(stored_report(aws.s3, run(aws, scheduled_event)["report_uri"]))


def test_run_out_of_time_resumes_without_loss_or_double_count(aws, scheduled_event, four_files):
    partial = run(aws, scheduled_event, FakeContext(remaining_ms=1_000))  # below the 60 s stop margin
    assert partial["status"] == "partial" and partial["files"] == 1 and partial["remaining_files"] == 3
    resumed = run(aws, scheduled_event)
    report = stored_report(aws.s3, resumed["report_uri"])
    assert report["window"]["files"] == 4 and report["rows_rejected"] == 4
    assert totals(report) == expected_totals(aws, scheduled_event)


def test_crash_halfway_then_rerun_gives_the_same_totals(aws, scheduled_event, four_files, monkeypatch):
    from drift_check import window_check

    real = window_check.count_files_parallel

    def crash_after_two(*args, **kwargs):
        for i, item in enumerate(real(*args, **kwargs)):
            if i == 2:
                raise ConnectionError("the network went away")
            yield item

    monkeypatch.setattr(window_check, "count_files_parallel", crash_after_two)
    with pytest.raises(ConnectionError):
        run(aws, scheduled_event)
    monkeypatch.setattr(window_check, "count_files_parallel", real)
    report = stored_report(aws.s3, run(aws, scheduled_event)["report_uri"])
    assert report["window"]["files"] == 4
    assert totals(report) == expected_totals(aws, scheduled_event)


def test_partial_window_of_a_replaced_model_is_read_again(aws, scheduled_event, four_files, next_model_artifact, monkeypatch):
    """The partial counts were binned with the old baseline: the new model re-reads the window."""
    assert run(aws, scheduled_event, FakeContext(remaining_ms=1_000))["status"] == "partial"
    aws.s3.put_object(Bucket="artifacts", Key="churn/4/model.tar.gz", Body=next_model_artifact.tarball)
    monkeypatch.setenv("MODEL_DATA_URL", "s3://artifacts/churn/4/model.tar.gz")
    monkeypatch.setenv("MODEL_SHA256", next_model_artifact.sha256)
    report = stored_report(aws.s3, run(aws, scheduled_event)["report_uri"])
    assert report["model"]["version"] == "4" and report["window"]["files"] == 4
    assert totals(report) == expected_totals(aws, scheduled_event)


def test_two_worker_processes_count_the_same(aws, scheduled_event, four_files, monkeypatch):
    single = expected_totals(aws, scheduled_event)
    aws.s3.delete_object(Bucket="reports", Key=names.drift_checkpoint_key("churn"))
    monkeypatch.setenv("DRIFT_WORKERS", "2")
    report = stored_report(aws.s3, run(aws, scheduled_event)["report_uri"])
    assert totals(report) == single


def test_malformed_lines_are_counted_not_fatal(aws, scheduled_event, shifted_lines, capsys):
    bad = [b"{oops\n", b'{"features": {"x": "high", "n": 1, "color": "red"}}\n', b'{"features": {}}\n']
    put_capture(aws.s3, "part-1.gz", shifted_lines[:600] + bad * 10)
    result = run(aws, scheduled_event)
    assert result["rows_checked"] == 600 and result["rows_rejected"] == 30
    report = stored_report(aws.s3, result["report_uri"])
    assert report["reject_reasons"] == {"bad_json": 10, "wrong_type": 10, "missing_feature": 10}
    dataset = next(b for b in emf_blobs(capsys) if mn.DRIFT_ROWS_REJECTED in b)
    assert dataset[mn.DRIFT_ROWS_REJECTED] == [30.0]


def test_corrupt_gzip_file_is_reported_and_skipped(aws, scheduled_event, shifted_lines):
    good = gzip.compress(b"".join(shifted_lines[:600]))
    aws.s3.put_object(Bucket="capture", Key=PREFIX + "part-0.gz", Body=good[: len(good) // 2])
    put_capture(aws.s3, "part-1.gz", shifted_lines[600:])
    result = run(aws, scheduled_event)
    report = stored_report(aws.s3, result["report_uri"])
    assert [u["key"] for u in report["window"]["unreadable_files"]] == [PREFIX + "part-0.gz"]
    assert 600 <= result["rows_checked"] < 1200


def test_empty_window_reports_no_data(aws, scheduled_event, capsys):
    result = run(aws, scheduled_event)
    assert result["status"] == "no_data" and not result["dataset_drift"]
    dataset = next(b for b in emf_blobs(capsys) if mn.DRIFT_INSUFFICIENT_DATA in b)
    assert dataset[mn.DRIFT_INSUFFICIENT_DATA] == [1.0] and mn.DRIFT_DATASET not in dataset


def test_too_few_rows_is_insufficient_data(aws, scheduled_event, shifted_lines):
    put_capture(aws.s3, "part-1.gz", shifted_lines[:100])
    result = run(aws, scheduled_event)
    assert result["status"] == "insufficient_data" and not result["dataset_drift"] and result["drifted_features"] == []


def test_no_promoted_model_gives_a_no_model_report(aws, scheduled_event, shifted_lines, monkeypatch):
    monkeypatch.setenv("MODEL_DATA_URL", "")
    put_capture(aws.s3, "part-1.gz", shifted_lines)
    result = run(aws, scheduled_event)
    assert result["status"] == "no_model"
    report = stored_report(aws.s3, result["report_uri"])
    assert "no promoted model" in report["reason"]
    monkeypatch.setenv("MODEL_DATA_URL", "s3://artifacts/churn/3/model.tar.gz")
    assert run(aws, scheduled_event)["rows_checked"] == 1200  # nothing was consumed meanwhile


def test_tampered_model_is_refused(aws, scheduled_event, monkeypatch):
    monkeypatch.setenv("MODEL_SHA256", "0" * 64)
    with pytest.raises(TamperedArtifact):
        run(aws, scheduled_event)


def test_missing_configuration_names_the_variable(aws, scheduled_event, monkeypatch):
    monkeypatch.delenv("REPORTS_BUCKET")
    with pytest.raises(RuntimeError, match="REPORTS_BUCKET"):
        run(aws, scheduled_event)


def test_model_is_downloaded_once_per_environment(aws, scheduled_event):
    from drift_check import model_source

    run(aws, scheduled_event)
    first = model_source._CACHE.copy()
    aws.s3.delete_object(Bucket="artifacts", Key="churn/3/model.tar.gz")
    assert run(aws, scheduled_event)["status"] == "no_data"  # still served from the cache
    assert first == model_source._CACHE
