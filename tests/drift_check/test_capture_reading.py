"""Capture lines into columns: the fast path, malformed lines, gzip streams, the cursor."""
from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from drift_check.capture_reader import CaptureDecoder
from drift_check.capture_source import LOOKBACK, CaptureObject, Cursor, iter_blocks
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


@pytest.mark.parametrize("compress", [False, True])
def test_blocks_hold_whole_lines_gzip_or_not(compress):
    lines = [f'{{"i": {i}}}\n'.encode() for i in range(1000)]
    data = b"".join(lines)
    if compress:  # two gzip members, as concatenated Firehose output can be
        data = gzip.compress(data[:5000]) + gzip.compress(data[5000:])
    chunks = [data[i:i + 333] for i in range(0, len(data), 333)]
    blocks = list(iter_blocks(chunks, block_bytes=1000))
    assert len(blocks) > 5
    assert all(b.endswith(b"\n") for b in blocks)
    assert b"".join(blocks) == b"".join(lines)


def test_truncated_gzip_is_an_error():
    data = gzip.compress(b'{"i": 1}\n' * 1000)
    with pytest.raises(zlib.error, match="truncated"):
        list(iter_blocks([data[: len(data) // 2]]))


def test_cursor_reads_late_files_once_and_forgets_old_keys():
    t0 = datetime(2025, 1, 15, 5, tzinfo=UTC)
    a, b = CaptureObject("k/b", t0, 1), CaptureObject("k/a", t0 + timedelta(minutes=5), 1)
    cursor = Cursor()
    cursor.advance(a)
    cursor.advance(b)
    late = CaptureObject("k/0-late", t0 - timedelta(minutes=1), 1)  # lower key, older time, seen late
    assert not cursor.is_new(a) and not cursor.is_new(b) and cursor.is_new(late)
    assert not cursor.is_new(CaptureObject("k/ancient", t0 - LOOKBACK - timedelta(hours=1), 1))
    cursor.advance(CaptureObject("k/c", t0 + LOOKBACK + timedelta(hours=1), 1))
    assert list(cursor.keys) == ["k/c"]
    restored = Cursor.from_dict(cursor.to_dict())
    assert restored == cursor
