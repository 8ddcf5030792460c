"""Planning: parts of bounded size, exact row numbers across parts, every line scored exactly once."""
from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from batch_scoring.part_reader import part_chunks
from batch_scoring.planner import InputFile, PlanError, plan_parts, skipped
from batch_scoring.store import LocalStore


def _file(root: Path, name: str, data: bytes) -> InputFile:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
    return InputFile(name, name, len(data))


def _rows(store: LocalStore, parts) -> list[tuple[int, bytes]]:
    """(row number, line) of every non-blank line the parts yield, in order."""
    found = []
    for part in parts:
        for first, block, lines in part_chunks(store, part, chunk_bytes=64):
            split = block.split(b"\n")
            assert len(split) == lines
            found += [(first + k, line) for k, line in enumerate(split) if line.strip()]
    return found


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_every_row_once_with_its_number_for_any_part_size(tmp_path: Path, newline: bytes, final_newline: bool) -> None:
    rng = random.Random(3)
    lines = [b"a,b"] + [b"%d,%s" % (i, b"x" * rng.randrange(0, 40)) for i in range(1, 301)]
    lines[57] = b""  # a blank line keeps its number but is no row
    data = newline.join(lines) + (newline if final_newline else b"")
    store = LocalStore(tmp_path)
    f = _file(tmp_path, "d.csv", data)
    expected = [(k, line.rstrip(b"\r")) for k, line in enumerate(data.split(b"\n")) if k and line.strip()]
    for part_bytes in (1, 7, 64, 100, 1000, len(data) - 1, len(data), 10 * len(data)):
        parts = plan_parts(store, [f], part_bytes)
        assert all(p.end - p.start <= part_bytes for p in parts)
        assert parts[0].header == ["a", "b"]
        got = [(n, line.rstrip(b"\r")) for n, line in _rows(store, parts)]
        assert got == expected, part_bytes


def test_json_lines_are_numbered_from_one(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    f = _file(tmp_path, "d.jsonl", b"".join(b'{"x": %d}\n' % i for i in range(1, 51)))
    parts = plan_parts(store, [f], 30)
    assert len(parts) > 5 and all(p.header is None for p in parts)
    assert [(n, int(line[6:-1])) for n, line in _rows(store, parts)] == [(i, i) for i in range(1, 51)]


def test_gzip_is_one_part_streamed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = b"a,b\n" + b"".join(b"%d,2\n" % i for i in range(1, 1001))
    f = _file(tmp_path, "d.csv.gz", gzip.compress(data))
    (part,) = plan_parts(store, [f], 10)
    assert part.compressed and part.header == ["a", "b"] and part.format == "csv"
    assert [n for n, _ in _rows(store, [part])] == list(range(1, 1001))


def test_unknown_type_and_headerless_csv_are_refused_by_name(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(PlanError, match=r"d\.parquet: unknown file type"):
        plan_parts(store, [_file(tmp_path, "d.parquet", b"PAR1")], 100)
    with pytest.raises(PlanError, match=r"e\.csv: a CSV file needs a header"):
        plan_parts(store, [_file(tmp_path, "e.csv", b"\n1,2\n")], 100)
    with pytest.raises(PlanError, match=r"f\.csv\.gz: not a readable gzip file"):
        plan_parts(store, [_file(tmp_path, "f.csv.gz", b"not gzip at all")], 100)


def test_markers_and_hidden_files_are_not_input() -> None:
    assert skipped("_SUCCESS") and skipped("day/.keep") and skipped("day/_manifest.json") and skipped("day/")
    assert skipped("_temporary/0/task/part-0.csv")
    assert not skipped("day/part-1.csv")
