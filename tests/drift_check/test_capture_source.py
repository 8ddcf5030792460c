"""Capture files into blocks of whole lines (gzip or not), and the cursor that reads each file once."""
from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from drift_check.capture_source import LOOKBACK, CaptureObject, Cursor, iter_blocks


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
