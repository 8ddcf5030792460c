"""The capture record: the fast writer and the validating reader agree."""
import json

import msgspec
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


def test_probability_is_left_out_when_there_is_none():
    line = capture_record.record_line(time="t", request_id="r", model_name="m", model_version="v",
                                      features={"a": 1}, prediction=2.5)
    assert list(json.loads(line)) == ["time", "request_id", "model_name", "model_version", "features", "prediction"]
    assert capture_record.parse_line(line).probability is None


def test_a_partial_record_decodes_only_the_fields_it_names():
    partial = capture_record.partial_record("Part", features=dict[str, float], model_version=str)
    line = capture_record.record_line(time="t", request_id="r", model_name="m", model_version="v",
                                      features={"a": 1.5}, prediction="x", probability={"x": 1.0})
    record = msgspec.json.decode(line, type=partial)
    assert (record.features, record.model_version) == ({"a": 1.5}, "v")
    assert not hasattr(record, "prediction") and not hasattr(record, "time")
    assert msgspec.json.decode(b'{"features": {}}', type=partial).model_version is None  # named fields are optional
    with pytest.raises(ValueError):
        msgspec.json.decode(b'{"model_version": "v"}', type=partial)  # features are not


def test_a_partial_record_names_only_fields_of_the_record():
    with pytest.raises(TypeError, match="modelversion"):
        capture_record.partial_record("Part", features=dict, modelversion=str)
