"""Prediction ids through the Lambda handler: the client's own or <request_id>-<row>, returned, checked, distinct."""
from __future__ import annotations

import json

import pytest

from contracts.schema import Feature, FeatureSchema, FeatureType
from inference.decoding import TypedBodies
from tests.inference.serving_helpers import VERSIONS, api_event, invoke, load_app


@pytest.fixture
def served(monkeypatch, breast_cancer_dir):
    return load_app(monkeypatch, MODEL_DIR=str(breast_cancer_dir), MAX_BATCH="5")


@pytest.fixture
def rows(breast_cancer_rows):
    return [dict(r) for r in breast_cancer_rows[:4]]


def _post(served, lambda_context, path, body, version="v2", request_id="req-7"):
    return invoke(served, api_event(version, "POST", path, body, request_id=request_id), lambda_context)


def _locs(body):
    return {tuple(issue["loc"]): issue["msg"] for issue in body["detail"]}


@pytest.mark.parametrize("version", VERSIONS)
def test_single_returns_the_client_id_else_one_from_the_request_id(served, rows, lambda_context, version):
    status, given = _post(served, lambda_context, "/predict", {"id": "order-123", "features": rows[0]}, version)
    assert status == 200 and given["id"] == "order-123" and given["request_id"] == "req-7"
    for body in ({"features": rows[0]}, {"id": None, "features": rows[0]}):  # null: no id sent
        status, derived = _post(served, lambda_context, "/predict", body, version)
        assert status == 200 and derived["id"] == "req-7-0"
        assert derived["prediction"] == given["prediction"] and derived["probabilities"] == given["probabilities"]


def test_batch_rows_get_distinct_default_ids(served, rows, lambda_context):
    status, body = _post(served, lambda_context, "/predict/batch", {"instances": rows})
    assert status == 200
    assert body["ids"] == ["req-7-0", "req-7-1", "req-7-2", "req-7-3"]


@pytest.mark.parametrize("mixed", [False, True], ids=["all-pairs", "pairs-and-rows"])
def test_batch_instances_carry_their_own_ids(served, rows, lambda_context, mixed):
    """All pairs take the typed decoder, a mix the lenient path: both answer the same."""
    instances = [{"id": f"order-{i}", "features": row} for i, row in enumerate(rows)]
    if mixed:
        instances[1] = rows[1]  # an existing client's plain row, beside pairs
        instances[2] = {"features": rows[2]}  # a pair without an id
    status, body = _post(served, lambda_context, "/predict/batch", {"instances": instances})
    assert status == 200
    expected = ["order-0", "req-7-1", "req-7-2", "order-3"] if mixed else [f"order-{i}" for i in range(4)]
    assert body["ids"] == expected
    _, plain = _post(served, lambda_context, "/predict/batch", {"instances": rows})
    assert body["predictions"] == plain["predictions"] and body["count"] == 4


@pytest.mark.parametrize("mixed", [False, True], ids=["all-pairs", "pairs-and-rows"])
def test_duplicate_ids_are_a_422_naming_the_rows(served, rows, lambda_context, mixed):
    instances = [{"id": "a", "features": rows[0]}, {"id": "b", "features": rows[1]},
                 {"id": "a", "features": rows[2]}, rows[3] if mixed else {"id": "a", "features": rows[3]}]
    status, body = _post(served, lambda_context, "/predict/batch", {"instances": instances})
    assert status == 422
    locs = _locs(body)
    assert locs.pop(("body", "instances", 2, "id")).startswith("duplicate id 'a': rows 0 and 2")
    if not mixed:
        assert locs.pop(("body", "instances", 3, "id")).startswith("duplicate id 'a': rows 0 and 3")
    assert locs == {}


def test_a_client_id_equal_to_another_rows_default_is_a_duplicate(served, rows, lambda_context):
    status, body = _post(served, lambda_context, "/predict/batch",
                         {"instances": [{"id": "req-7-1", "features": rows[0]}, rows[1]]})
    assert status == 422
    assert _locs(body)[("body", "instances", 0, "id")].startswith("duplicate id 'req-7-1': rows 0 and 1")


BAD_IDS = [
    ("", "an id must not be empty"),
    ("x" * 129, "an id is at most 128 characters, got 129"),
    ("line\nbreak", "an id must not contain control characters"),
    ("bell\u0085", "an id must not contain control characters"),
    (123, 'expected a string, got integer: send it as a string, e.g. "123"'),
    (True, "expected a string, got boolean"),
    ({"order": 1}, "expected a string, got object"),
]


@pytest.mark.parametrize("bad, message", BAD_IDS, ids=[m[:20] for _, m in BAD_IDS])
def test_a_bad_id_is_a_422_naming_it(served, rows, lambda_context, bad, message):
    status, body = _post(served, lambda_context, "/predict", {"id": bad, "features": rows[0]})
    assert status == 422 and _locs(body)[("body", "id")].startswith(message)
    instances = [{"id": "ok", "features": rows[0]}, {"id": bad, "features": rows[1]}]
    status, body = _post(served, lambda_context, "/predict/batch", {"instances": instances})
    assert status == 422 and list(_locs(body)) == [("body", "instances", 1, "id")]
    assert _locs(body)[("body", "instances", 1, "id")].startswith(message)


def test_an_id_of_128_characters_any_script_is_accepted(served, rows, lambda_context):
    long_id = "注文-" + "é" * 125
    status, body = _post(served, lambda_context, "/predict", {"id": long_id, "features": rows[0]})
    assert status == 200 and body["id"] == long_id


def test_id_and_feature_problems_are_named_together(served, rows, lambda_context):
    broken = dict(rows[1], mean_radius="big")
    status, body = _post(served, lambda_context, "/predict", {"id": "", "features": broken})
    assert status == 422
    assert set(_locs(body)) == {("body", "id"), ("body", "features", "mean_radius")}
    instances = [{"id": "", "features": rows[0]}, {"id": "b", "features": broken, "note": "x"}, rows[2]]
    status, body = _post(served, lambda_context, "/predict/batch", {"instances": instances})
    assert status == 422
    assert set(_locs(body)) == {("body", "instances", 0, "id"), ("body", "instances", 1, "note"),
                                ("body", "instances", 1, "features", "mean_radius")}


def test_unexpected_top_level_field_beside_id_is_still_refused(served, rows, lambda_context):
    status, body = _post(served, lambda_context, "/predict", {"id": "a", "features": rows[0], "ids": ["a"]})
    assert status == 422 and _locs(body) == {("body", "ids"): "unexpected field"}


def test_warnings_of_a_pair_name_its_row(monkeypatch, mixed_dir, lambda_context):
    served = load_app(monkeypatch, MODEL_DIR=str(mixed_dir))
    row = {"size": 12.5, "color": "mauve", "count": 3, "code": "1"}
    status, body = _post(served, lambda_context, "/predict/batch",
                         {"instances": [{"id": "p", "features": dict(row, color="red")}, {"id": "q", "features": row}]})
    assert status == 200 and body["ids"] == ["p", "q"]
    assert body["warnings"] == ["row 1, color: category 'mauve' was not seen in training; the model ignores it"]


def test_a_model_with_features_named_features_and_id_reads_rows_and_pairs_apart():
    """Feature values are never objects: an instance is a pair exactly when its "features" is one."""
    schema = FeatureSchema(target="y", features=[Feature(name="features", type=FeatureType.NUMERIC),
                                                 Feature(name="id", type=FeatureType.NUMERIC)])
    bodies = TypedBodies(schema, max_batch=5)
    row = {"features": 1.5, "id": 2.0}
    assert bodies.batch(json.dumps({"instances": [row]}).encode()) == ([(1.5, 2.0)], None)
    assert bodies.batch(json.dumps({"instances": [{"id": "k", "features": row}]}).encode()) == ([(1.5, 2.0)], ["k"])
    assert bodies.one(json.dumps({"id": "k", "features": row}).encode()) == ([(1.5, 2.0)], ["k"])
