"""The run record contract: what the pipeline writes is what `mlops runs` reads, and nothing else parses."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contracts.run_record import FORMAT_VERSION, STATUSES, Gate, RunRecord, parse_record


def test_a_record_round_trips_through_its_json():
    record = RunRecord(model_name="churn", run_id="run-7", status="rejected", finished_at="2026-12-01T09:00:00Z",
                       primary_metric="roc_auc", metrics={"roc_auc": 0.81},
                       gate=Gate(passed=False, reason="candidate roc_auc 0.8100 < floor 0.9", floor=0.9),
                       search_candidates=[{"params": {"C": 1.0}, "score": 0.8}])
    again = parse_record(record.to_json())
    assert again == record and again.format_version == FORMAT_VERSION and again.primary_value == 0.81


def test_what_is_not_a_record_is_refused():
    body = {"model_name": "churn", "run_id": "run-7", "finished_at": "2026-12-01T09:00:00Z"}
    with pytest.raises(ValidationError, match="status"):
        parse_record(json.dumps(body))
    with pytest.raises(ValidationError, match="status"):
        parse_record(json.dumps(body | {"status": "finished"}))
    assert set(STATUSES) == {"passed", "registered", "rejected", "failed"}
    failed = parse_record(json.dumps(body | {"status": "failed", "error": "too few rows"}))
    assert failed.primary_value is None and failed.gate is None
