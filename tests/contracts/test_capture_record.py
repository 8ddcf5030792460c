"""The capture record: the fast writer and the validating reader agree."""
import json

import pytest

from contracts import capture_record


def test_fast_line_parses_back():
    line = capture_record.record_line(
        time="2026-11-23T00:00:00Z", request_id="r1", model_name="m", model_version="v1",
        features={"a": 1.5, "b": "x"}, prediction="1", probability={"0": 0.25, "1": 0.75},
    )
    assert line.endswith(b"\n")
    record = capture_record.parse_line(line)
    assert record.features == {"a": 1.5, "b": "x"} and record.probability == {"0": 0.25, "1": 0.75}
    assert capture_record.to_line(record) == line


def test_malformed_lines_raise_value_error():
    with pytest.raises(ValueError):
        capture_record.parse_line(b"{not json")
    with pytest.raises(ValueError):
        capture_record.parse_line(json.dumps({"time": "t", "request_id": "r"}))


def test_non_finite_values_are_written_as_missing_never_as_invalid_json():
    line = capture_record.record_line(time="t", request_id="r", model_name="m", model_version="v",
                                      features={"a": float("nan"), "b": float("inf")}, prediction=1.0)
    assert json.loads(line)["features"] == {"a": None, "b": None}
