"""The input rules' renderings agree: JSON Schema, the typed msgspec decoder and the lenient checks take the same rows."""
from __future__ import annotations

import json

import pytest
from jsonschema import Draft4Validator, Draft202012Validator

from contracts.schema import Feature, FeatureSchema, FeatureType
from inference.decoding import TypedBodies, parse_json
from inference.input_rules import (
    BATCH_FIELD,
    ID_FIELD,
    SINGLE_FIELD,
    RowRules,
    as_category,
    body_schemas,
    edge_body_schemas,
    integer_codes,
    row_schema,
)
from inference.validation import FeatureReader, RequestError

NUMERIC, CATEGORICAL = FeatureType.NUMERIC, FeatureType.CATEGORICAL
SCHEMA = FeatureSchema(target="y", features=[
    Feature(name="x", type=NUMERIC, min=0.0, max=3.0, missing_rate=0.1),  # nullable number
    Feature(name="n", type=NUMERIC, min=0.0, max=9.0, integer=True),  # number, never null
    Feature(name="c", type=CATEGORICAL, categories=["blue", "red"], missing_rate=0.2),  # nullable category
    Feature(name="k", type=CATEGORICAL, categories=["07", "1", "2"]),  # category codes, never null
])
BASE = {"x": 1.5, "n": 2, "c": "red", "k": "1"}
MAX_BATCH = 2

TYPED, LENIENT, REFUSED = "typed", "lenient", "refused"  # accepted by the typed decoder / by the lenient checks only
# (changes to BASE, each value as JSON text; verdict; verdict with strict categories)
CASES = [
    ({}, TYPED, TYPED),
    ({"x": "null"}, TYPED, TYPED),
    ({"c": "null"}, TYPED, TYPED),
    ({"x": "1e100", "n": "-1e100"}, TYPED, TYPED),
    ({"n": "0", "c": '"blue"', "k": '"07"'}, TYPED, TYPED),
    ({"k": "2"}, LENIENT, LENIENT),  # an integer code of a known category
    ({"k": "2.0"}, LENIENT, LENIENT),
    ({"k": "7"}, LENIENT, REFUSED),  # read as "7", not "07": unseen
    ({"c": '"mauve"'}, LENIENT, REFUSED),
    ({"k": "1e300"}, LENIENT, REFUSED),  # an integer, however large, names a category
    ({"n": "null"}, REFUSED, REFUSED),
    ({"k": "null"}, REFUSED, REFUSED),
    ({"x": '"1"'}, REFUSED, REFUSED),
    ({"x": "true"}, REFUSED, REFUSED),
    ({"n": "[]"}, REFUSED, REFUSED),
    ({"x": "1e101"}, REFUSED, REFUSED),
    ({"x": "1.0000001e100"}, REFUSED, REFUSED),
    ({"n": "-1.0000001e100"}, REFUSED, REFUSED),
    ({"x": "1e999"}, REFUSED, REFUSED),  # valid JSON, infinite as a double
    ({"n": "-1e999"}, REFUSED, REFUSED),
    ({"n": "9" * 120}, REFUSED, REFUSED),  # an integer past the bound
    ({"c": "1.5"}, REFUSED, REFUSED),
    ({"c": "true"}, REFUSED, REFUSED),
    ({"k": "{}"}, REFUSED, REFUSED),
    ({"k": '"2"', "extra": "1"}, REFUSED, REFUSED),
]
IDS = [" ".join(f"{name}={text[:12]}" for name, text in change.items()) or "base" for change, _, _ in CASES]


def _row_text(change: dict[str, str]) -> str:
    """BASE with the changes, as JSON text: values such as 1e999 reach every parser as sent."""
    fields = {name: json.dumps(value) for name, value in BASE.items()} | change
    return "{" + ", ".join(f"{json.dumps(name)}: {text}" for name, text in fields.items()) + "}"


def _verdicts(row: str, strict: bool) -> tuple[bool, bool, bool]:
    """(JSON Schema accepts, the typed decoder accepts, the lenient checks accept) for one /predict row."""
    reader = FeatureReader(SCHEMA, strict_categories=strict)
    single, _ = body_schemas(row_schema(RowRules(SCHEMA, strict)), MAX_BATCH)
    body = f'{{"{SINGLE_FIELD}": {row}}}'
    by_schema = Draft202012Validator(single).is_valid(json.loads(body))
    typed = TypedBodies(SCHEMA, MAX_BATCH).one(body.encode()) is not None
    try:
        reader.read([parse_json(row.encode())], ("body", SINGLE_FIELD), indexed=False)
        lenient = True
    except RequestError:
        lenient = False
    return by_schema, typed, lenient


@pytest.mark.parametrize("strict", [False, True], ids=["lenient-categories", "strict-categories"])
@pytest.mark.parametrize("change, verdict, strict_verdict", CASES, ids=IDS)
def test_json_schema_typed_decoder_and_lenient_checks_agree(change, verdict, strict_verdict, strict):
    row = _row_text(change)
    by_schema, typed, lenient = _verdicts(row, strict)
    expected = strict_verdict if strict else verdict
    assert by_schema is lenient is (expected != REFUSED), row
    assert typed is (expected == TYPED), row


@pytest.mark.parametrize("change", [change for change, verdict, _ in CASES if verdict == TYPED])
def test_where_the_typed_decoder_accepts_it_reads_what_the_lenient_checks_read(change):
    row = _row_text(change)
    reader = FeatureReader(SCHEMA)
    values, _ = TypedBodies(SCHEMA, MAX_BATCH).one(f'{{"{SINGLE_FIELD}": {row}}}'.encode())
    typed = reader.from_values(values)
    lenient = reader.read([json.loads(row)], ("body", SINGLE_FIELD), indexed=False)
    assert typed.features(0) == lenient.features(0)


def test_missing_features_are_refused_everywhere():
    row = json.dumps({name: value for name, value in BASE.items() if name != "c"})
    assert _verdicts(row, strict=False) == (False, False, False)


@pytest.mark.parametrize("instances, accepted", [(0, False), (1, True), (MAX_BATCH, True), (MAX_BATCH + 1, False)])
def test_batch_bounds_agree(instances, accepted):
    _, batch = body_schemas(row_schema(RowRules(SCHEMA)), MAX_BATCH)
    body = {BATCH_FIELD: [BASE] * instances}
    assert Draft202012Validator(batch).is_valid(body) is accepted
    assert (TypedBodies(SCHEMA, MAX_BATCH).batch(json.dumps(body).encode()) is not None) is accepted


@pytest.mark.parametrize("body", [{SINGLE_FIELD: BASE, "extra": 1}, {BATCH_FIELD: [BASE]}, {}])
def test_the_single_envelope_takes_exactly_its_field(body):
    single, _ = body_schemas(row_schema(RowRules(SCHEMA)), MAX_BATCH)
    assert not Draft202012Validator(single).is_valid(body)
    assert TypedBodies(SCHEMA, MAX_BATCH).one(json.dumps(body).encode()) is None


def test_renderings_are_valid_json_schema_of_their_drafts():
    for strict in (False, True):
        for body in body_schemas(row_schema(RowRules(SCHEMA, strict)), MAX_BATCH):
            Draft202012Validator.check_schema(body)
    for body in edge_body_schemas():
        Draft4Validator.check_schema(body)


def test_the_edge_refuses_no_body_the_app_accepts():
    edge_single, edge_batch = map(Draft4Validator, edge_body_schemas())
    for change, verdict, _ in CASES:
        row = json.loads(_row_text(change))
        if verdict != REFUSED:
            assert edge_single.is_valid({SINGLE_FIELD: row}) and edge_batch.is_valid({BATCH_FIELD: [row] * MAX_BATCH})
            pair = {ID_FIELD: "order-1", SINGLE_FIELD: row}  # a prediction id beside the row, per instance too
            assert edge_single.is_valid(pair) and edge_batch.is_valid({BATCH_FIELD: [pair, row]})
    assert not edge_single.is_valid({SINGLE_FIELD: [BASE]}) and not edge_batch.is_valid({BATCH_FIELD: BASE})


def test_rules_follow_the_schema():
    rules = {rule.name: rule for rule in RowRules(SCHEMA).features}
    assert [name for name, rule in rules.items() if rule.nullable] == ["x", "c"]
    assert [name for name, rule in rules.items() if rule.categorical] == ["c", "k"]
    assert rules["k"].categories == ("07", "1", "2") and rules["k"].allowed == {"07", "1", "2"}
    assert rules["x"].training_range == (0.0, 3.0) and rules["c"].training_range is None


@pytest.mark.parametrize("value, category", [("a", "a"), (3, "3"), (3.0, "3"), (-2, "-2"), (True, None), (1.5, None),
                                             (float("inf"), None), (None, None), ([], None)])
def test_category_reading(value, category):
    assert as_category(value) == category


def test_integer_codes_are_the_categories_an_integer_reads_as():
    assert integer_codes(("07", "1", "-2", "+3", "1_0", "x", " 4")) == [1, -2]


@pytest.mark.parametrize("value", ["order-1", "x" * 128, "tab\tin", "ends\n", "\x7f", "\u0085", "", "x" * 129, 12, None])
def test_json_schema_and_the_id_checks_agree(value):
    from inference.prediction_ids import assign

    single, batch = body_schemas(row_schema(RowRules(SCHEMA)), MAX_BATCH)
    by_schema = Draft202012Validator(single).is_valid({ID_FIELD: value, SINGLE_FIELD: BASE})
    assert Draft202012Validator(batch).is_valid({BATCH_FIELD: [{ID_FIELD: value, SINGLE_FIELD: BASE}]}) is by_schema
    ids, issues = assign([value], "req", lambda i: ("body", ID_FIELD))
    assert by_schema is (not issues), value
    assert ids == ([value] if by_schema and value is not None else ["req-0"])  # refused or null: the default
