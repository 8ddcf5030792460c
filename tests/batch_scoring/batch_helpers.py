"""Writing batch inputs and reading batch outputs back, for the tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from contracts.artifact import read_metadata
from contracts.batch_job import ErrorRow, OutputRow


def feature_names(model_dir: Path) -> list[str]:
    return read_metadata(model_dir).feature_schema.names


def csv_text(header: list[str], rows: list[list[Any]], *, newline: str = "\n", final_newline: bool = True) -> bytes:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    return (newline.join(lines) + (newline if final_newline else "")).encode()


def jsonl_text(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def outputs(folder: Path) -> list[OutputRow]:
    """Every scored row under a file's output folder, parts in order, each line checked against the contract."""
    rows = []
    for path in sorted(folder.glob("part-*.jsonl")):
        rows += [msgspec.json.decode(line, type=OutputRow) for line in path.read_bytes().splitlines()]
    return rows


def errors(folder: Path) -> list[ErrorRow]:
    rows = []
    for path in sorted(folder.glob("errors-*.jsonl")):
        rows += [msgspec.json.decode(line, type=ErrorRow) for line in path.read_bytes().splitlines()]
    return rows


def row_number(row_id: str) -> int:
    return int(row_id.rsplit(":", 1)[1])
