"""Capture lines into columns: the fast path, malformed lines, extra columns, missing values."""
from __future__ import annotations

import numpy as np
import pytest

from drift_check.capture_reader import CaptureDecoder
from drift_check.stats import PREDICTION, Accumulator
from tests.drift_check.drift_helpers import capture_lines, make_columns


@pytest.fixture
def decoder(baseline) -> CaptureDecoder:
    return CaptureDecoder(baseline)


def test_valid_block_decodes_to_typed_columns(decoder):
    columns = make_columns(np.random.default_rng(0), 50)
    batch = decoder.decode(b"".join(capture_lines(columns, version="7")))
    assert batch.rows == 50 and not batch.rejects
    assert np.array_equal(batch.columns["x"], columns["x"])
    assert batch.columns["n"].dtype == np.float64 and np.array_equal(batch.columns["n"], columns["n"])
    assert batch.columns["color"] == list(columns["color"])
    assert set(batch.columns[PREDICTION]) <= {"yes", "no"}
    assert batch.versions == {"7": 50}


def test_malformed_lines_are_counted_and_skipped(decoder):
    good = capture_lines(make_columns(np.random.default_rng(1), 5))
    bad = [
        b"{not json\n",
        b"[1, 2]\n",
        b'{"features": "x"}\n',
        b'{"features": {"x": 1.0, "n": 2}}\n',  # color absent
        b'{"features": {"x": "1.5", "n": 2, "color": "red"}}\n',  # a number as a string
        b'{"features": {"x": true, "n": 2, "color": "red"}}\n',
        b'{"features": {"x": 1.0, "n": 2, "color": 3}}\n',
        b'{"a": 1}\n{"a": 2}\n'.replace(b"\n{", b",{", 1),  # two records on one line
        good[0].rstrip() + b" " + good[1],  # two valid records on one line
    ]
    batch = decoder.decode(b"".join(good[:2] + bad + good[2:]) + b"\n\n")
    assert batch.rows == 5
    assert batch.rejects == {"bad_json": 3, "not_an_object": 1, "no_features": 1, "missing_feature": 1, "wrong_type": 3}
    assert batch.issues == {"color": {"absent": 1, "wrong_type": 1}, "x": {"wrong_type": 2}}


def test_extra_columns_are_reported_but_the_row_is_kept(decoder):
    line = b'{"features": {"x": 1.0, "n": 2, "color": "red", "zip": "12345"}, "prediction": "yes"}\n'
    batch = decoder.decode(line * 3)
    assert batch.rows == 3 and not batch.rejects
    assert batch.unexpected == {"zip": 3}


def test_nulls_are_missing_values_not_errors(decoder, baseline):
    line = b'{"features": {"x": null, "n": 1, "color": null}, "prediction": "no"}\n'
    acc = Accumulator(baseline)
    decoder.decode(line * 4).add_to(acc)
    assert acc.rows == 4 and acc.missing["x"] == 4
    assert acc.counts["color"][-1] == 4  # the missing bin


def test_feature_names_need_not_be_identifiers():
    from contracts.schema import Feature, FeatureSchema, FeatureType
    from drift_check.stats import build_baseline

    schema = FeatureSchema(target="y", features=[Feature(name="sepal length (cm)", type=FeatureType.NUMERIC)])
    base = build_baseline(schema, {"sepal length (cm)": np.arange(10.0)}, task="regression", classes=None, predictions=None)
    batch = CaptureDecoder(base).decode(b'{"features": {"sepal length (cm)": 2.5}}\n')
    assert batch.rows == 1 and batch.columns["sepal length (cm)"].tolist() == [2.5]
