"""The typed one-pass decoder is only a shortcut: where it accepts a body, the lenient checks build the same rows."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from contracts import artifact
from contracts.schema import MISSING_CATEGORY, Feature, FeatureSchema, FeatureType
from inference.decoding import TypedBodies, parse_json
from inference.validation import FeatureReader, RequestError


@pytest.fixture(scope="module")
def mixed_schema(mixed_dir):
    return artifact.read_metadata(mixed_dir).feature_schema


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and all(
        (x == y) or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))


ROWS = [{"size": 12.5, "color": "red", "count": 3, "code": "1"},
        {"size": None, "color": None, "count": 0, "code": "2"},
        {"size": -1e100, "color": "blue", "count": 4.0, "code": "1"}]


def test_typed_and_lenient_paths_build_the_same_matrix(mixed_schema):
    reader, bodies = FeatureReader(mixed_schema), TypedBodies(mixed_schema, max_batch=10)
    body = json.dumps({"instances": ROWS}).encode()
    values, ids = bodies.batch(body)
    typed = reader.from_values(values)
    assert ids is None  # plain rows: ids are defaults
    lenient = reader.read(parse_json(body)["instances"], ("body", "instances"), indexed=True)
    assert _same(typed.X, lenient.X)
    assert typed.X[1, 1] == MISSING_CATEGORY and math.isnan(typed.X[1, 0])
    assert [typed.features(i) for i in range(3)] == [lenient.features(i) for i in range(3)] == ROWS
    assert typed.features(1) == {"size": None, "color": None, "count": 0.0, "code": "2"}


@pytest.mark.parametrize("change", [
    {"code": 1},  # an integer category code: accepted, by the lenient path
    {"color": "mauve"},  # an unseen category: accepted with a warning, by the lenient path
    {"count": None},  # null where training had no missing values: refused
    {"size": "12"},
    {"size": 1e101},
    {"extra": 1},
])
def test_typed_decoder_leaves_everything_else_to_the_lenient_path(mixed_schema, change):
    bodies = TypedBodies(mixed_schema, max_batch=10)
    body = json.dumps({"instances": [ROWS[0], ROWS[0] | change]}).encode()
    assert bodies.batch(body) is None
    assert bodies.one(json.dumps({"features": ROWS[0] | change}).encode()) is None


def test_typed_decoder_respects_the_batch_bounds(mixed_schema):
    bodies = TypedBodies(mixed_schema, max_batch=2)
    assert bodies.batch(b'{"instances": []}') is None
    assert bodies.batch(json.dumps({"instances": [ROWS[0]] * 3}).encode()) is None
    assert len(bodies.batch(json.dumps({"instances": [ROWS[0]] * 2}).encode())[0]) == 2


def test_a_categorical_feature_without_known_categories_always_takes_the_lenient_path():
    schema = FeatureSchema(target="y", features=[Feature(name="c", type=FeatureType.CATEGORICAL, categories=[]),
                                                 Feature(name="x", type=FeatureType.NUMERIC)])
    assert TypedBodies(schema, 10).one(b'{"features": {"c": "a", "x": 1}}') is None
    rows = FeatureReader(schema).read([{"c": "a", "x": 1}], ("body", "features"), indexed=False)
    assert rows.warnings == ["c: category 'a' was not seen in training; the model ignores it"]


def test_issues_are_capped_for_a_batch_of_bad_rows(mixed_schema):
    with pytest.raises(RequestError) as raised:
        FeatureReader(mixed_schema).read([{"size": "x"}] * 100, ("body", "instances"), indexed=True)
    assert raised.value.status == 422 and len(raised.value.issues) == 50
