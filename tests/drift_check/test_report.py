"""Report builders: compare()'s verdict with its header, the report without a model, the summary for a person."""
from __future__ import annotations

import re

import numpy as np

from contracts.drift_report import ModelRef, Window
from drift_check.report import empty_report, make_report, summary
from drift_check.stats import PREDICTION, Accumulator
from drift_check.stats_compare import Thresholds, compare
from tests.drift_check.drift_helpers import make_columns


def counted(baseline, columns: dict) -> Accumulator:
    acc = Accumulator(baseline)
    acc.update(columns, len(columns["x"]))
    return acc


def test_make_report_adds_when_what_and_against_what_to_the_verdict(baseline):
    acc = counted(baseline, make_columns(np.random.default_rng(0), 1000, shift=1.0))
    model, window = ModelRef(name="churn", version="3"), Window(reference="ref.csv", current="cur.csv")
    report = make_report(baseline, acc, Thresholds(min_rows=10), model=model, window=window)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report.generated_at)
    assert report.model == model and report.window == window
    body = report.to_dict()
    verdict = compare(baseline, acc, Thresholds(min_rows=10)).to_dict()
    assert {k: v for k, v in body.items() if k not in ("generated_at", "model", "window")} == verdict


def test_empty_report_says_why_and_flags_nothing():
    report = empty_report("no_model", "no promoted model", model=ModelRef(name="churn"))
    assert (report.status, report.dataset_drift, report.features, report.prediction) == ("no_model", False, {}, None)
    assert summary(report).splitlines() == [
        "status: no_model  dataset drift: no  rows checked: 0  rejected: 0", "  no promoted model"]


def test_summary_names_drifted_features_quality_issues_and_the_prediction(baseline):
    columns = make_columns(np.random.default_rng(1), 2000, shift=1.5)
    columns["color"][:800] = "purple"
    acc = counted(baseline, columns | {PREDICTION: np.array(["yes"] * 2000, dtype=object)})
    lines = summary(make_report(baseline, acc)).splitlines()
    assert lines[0] == "status: drift  dataset drift: yes  rows checked: 2000  rejected: 0"
    assert any(line.startswith("  drift critical x: PSI ") for line in lines)
    assert "  quality fail  color: unseen_share 0.400" in lines
    assert lines[-1] == "  the prediction's distribution drifted"
