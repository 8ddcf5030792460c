"""baseline.json and its typed form: a file written before the types still loads and dumps to the same bytes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from contracts.baseline import BASELINE_FORMAT, Baseline, CategoricalBaseline, NumericBaseline, baseline_json
from drift_check.stats import build_baseline
from tests.drift_check.drift_helpers import SCHEMA, make_columns

# Written by the dict code path (build_baseline's dict, json.dumps) before the baseline had types: a discrete
# numeric feature with a missing value, a categorical one with a non-ASCII category, a classifier's predictions.
WRITTEN_BEFORE = (
    '{"format":"drift-baseline/1","task":"binary","classes":["no","yes"],"rows":4,"features":{"n":{"type":"numeric",'
    '"count":4,"missing":1,"missing_rate":0.25,"min":0.0,"max":1.0,"mean":0.6666666666666666,"std":0.4714045207910317,'
    '"integer":true,"discrete":true,"edges":[0.0,5e-324,1.0,1.0000000000000002],"counts":[0,1,0,2,0],'
    '"psi_groups":[0,1,2,3,4]},"c":{"type":"categorical","count":4,"missing":1,"missing_rate":0.25,'
    '"categories":["a","caf\\u00e9"],"counts":[2,1,0,0,1],"n_categories":3,"known":["a","caf\\u00e9","z"]}},'
    '"prediction":{"type":"categorical","count":4,"missing":0,"missing_rate":0.0,"categories":["yes","no"],'
    '"counts":[3,1,0,0,0],"n_categories":2,"known":["no","yes"]}}'
)


def test_a_baseline_written_before_loads_and_dumps_to_the_same_bytes():
    baseline = Baseline.from_json(WRITTEN_BEFORE)
    n, c = baseline.features["n"], baseline.features["c"]
    assert isinstance(n, NumericBaseline) and n.discrete and n.edges[:1] == [0.0] and n.counts == [0, 1, 0, 2, 0]
    assert isinstance(c, CategoricalBaseline) and c.categories == ["a", "café"] and c.known == ["a", "café", "z"]
    assert isinstance(baseline.prediction, CategoricalBaseline) and baseline.classes == ["no", "yes"]
    assert baseline_json(baseline) == WRITTEN_BEFORE
    assert Baseline.from_dict(json.loads(WRITTEN_BEFORE)) == baseline


def test_build_baseline_round_trips_through_its_json():
    columns = make_columns(np.random.default_rng(0), 2000)
    predictions = np.where(columns["x"] > 0, "yes", "no").astype(object)
    built = build_baseline(SCHEMA, columns, task="binary", classes=["no", "yes"], predictions=predictions)
    text = baseline_json(built)
    assert built.format == BASELINE_FORMAT
    assert Baseline.from_json(text) == built
    assert baseline_json(Baseline.from_json(text)) == text
    assert list(json.loads(text)["features"]["x"])[:4] == ["type", "count", "missing", "missing_rate"]  # the tag first


@pytest.mark.parametrize("damage", ["no edges", "unknown type", "counts not numbers"])
def test_a_malformed_baseline_is_refused_with_the_field_named(damage):
    body = json.loads(WRITTEN_BEFORE)
    if damage == "no edges":
        del body["features"]["n"]["edges"]
        field = "edges"
    elif damage == "unknown type":
        body["features"]["c"]["type"] = "text"
        field = "type"
    else:
        body["prediction"]["counts"] = ["3", "1"]
        field = "counts"
    with pytest.raises(ValueError, match=field):
        Baseline.from_dict(body)
