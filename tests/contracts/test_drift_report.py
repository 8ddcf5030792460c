"""The drift report's JSON: the typed report round-trips through it, and the HTML page and the metrics accept it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from contracts import metric_names as mn
from contracts.drift_report import DriftReport, ModelRef, UnreadableFile, Window
from drift_check.capture_reader import CaptureDecoder
from drift_check.report import empty_report, make_report
from drift_check.report_html import render
from drift_check.stats import Accumulator, build_baseline
from tests.drift_check.drift_helpers import SCHEMA, capture_lines, make_columns

TOP_LEVEL = ["generated_at", "model", "window", "status", "dataset_drift", "drifted_features", "drift_share",
             "severity_counts", "rows_checked", "rows_rejected", "reject_reasons", "model_versions", "quality",
             "features", "prediction", "prediction_drift", "thresholds"]


@pytest.fixture(scope="module")
def report() -> DriftReport:
    """A drifted window with malformed lines and an extra column, as the handler reports it."""
    reference = make_columns(np.random.default_rng(0), 3000)
    predictions = np.where(reference["x"] > 0, "yes", "no").astype(object)
    baseline = build_baseline(SCHEMA, reference, task="binary", classes=["no", "yes"], predictions=predictions)
    bad = [b"{oops\n", b'{"features": {"x": 1.0, "n": 2, "color": "mauve", "zip": "1"}, "prediction": "yes"}\n']
    acc = Accumulator(baseline)
    lines = capture_lines(make_columns(np.random.default_rng(1), 1000, shift=1.0, blue=0.5))
    CaptureDecoder(baseline).decode(b"".join(lines + bad * 5)).add_to(acc)
    return make_report(baseline, acc, model=ModelRef(name="churn", version="3", sha256="0" * 64, url="s3://a/m.tar.gz"),
                       window=Window(start=None, end="2025-01-15T06:00:00Z", files=1,
                                     unreadable_files=[UnreadableFile(key="k", error="corrupt gzip")]))


def stored(report: DriftReport) -> DriftReport:
    return DriftReport.from_json(report.to_json(indent=1))


def test_report_round_trips_through_its_json(report):
    text = report.to_json(indent=1)
    assert stored(report) == report
    assert json.loads(text) == report.to_dict()
    assert stored(report).to_json(indent=1) == text


def test_fields_a_report_lacks_are_left_out_of_its_json(report):
    body = report.to_dict()
    assert list(body) == TOP_LEVEL
    assert "wrong_type_share" in body["features"]["x"]["quality"]
    assert "wrong_type_share" not in body["prediction"]["quality"]  # lines are checked per feature only
    assert "wasserstein" not in body["features"]["color"] and "max_share_change" not in body["features"]["x"]
    empty = empty_report("no_model", "nothing to compare with", model=ModelRef(name="churn")).to_dict()
    assert list(empty) == ["generated_at", "model", "window", "status", "reason", "dataset_drift", "drifted_features",
                           "drift_share", "rows_checked", "rows_rejected", "features", "prediction"]
    assert empty["model"] == {"name": "churn"} and empty["window"] is None


def test_a_non_finite_number_is_refused_not_written():
    broken = empty_report("no_data", "x")
    broken.drift_share = float("nan")
    with pytest.raises(ValueError):
        broken.to_json(indent=1)


def test_the_html_page_renders_the_stored_json(report):
    page = render(stored(report))
    assert page == render(report)
    assert page.count("<svg") == 4 and "corrupt gzip" in page and "unexpected_columns" in page


def test_metrics_are_published_from_the_stored_json(report, monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "drift-check")
    from drift_check import app

    app.publish_metrics(stored(report), "churn", "3")
    app.metrics.flush_metrics()
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    dataset = next(b for b in blobs if mn.DRIFT_DATASET in b)
    assert dataset[mn.DRIFT_DATASET] == [1.0] and dataset[mn.DRIFT_ROWS_CHECKED] == [float(report.rows_checked)]
    per_feature = {b[mn.DIM_FEATURE]: b[mn.DRIFT_FEATURE_PSI][0] for b in blobs if mn.DIM_FEATURE in b}
    assert per_feature == pytest.approx({name: f.psi for name, f in report.features.items()})
