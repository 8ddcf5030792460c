"""Run records as text tables: the runs list, one run's fields, runs side by side."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from contracts.run_record import RunRecord

MISSING = "–"


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys ({"params": {"C": 1}} → {"params.C": 1}); lists stay values."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flat |= flatten(item, f"{name}.")
        else:
            flat[name] = item
    return flat


def text(value: Any, digits: int | None = 4) -> str:
    """One cell: floats to `digits` significant digits (None: all), lists and mappings as compact JSON, None as a dash."""
    if value is None or value == {} or value == []:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value) if digits is None else f"{value:.{digits}g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int | None = 4) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [list(headers)] + [[text(c, digits) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def registry_version(record: RunRecord) -> int | None:
    return record.registration.version if record.registration else None


def production_value(record: RunRecord) -> float | None:
    """The production model's primary metric the run was compared with, when there was one."""
    compared = record.gate.production_metrics if record.gate else None
    return (compared or {}).get(record.primary_metric or "")


LIST_HEADERS = ("run", "model", "finished", "status", "algorithm", "metric", "value", "production", "version")


def list_rows(records: Sequence[RunRecord]) -> list[list[Any]]:
    return [[r.run_id, r.model_name, r.finished_at, r.status, r.algorithm, r.primary_metric, r.primary_value,
             production_value(r), registry_version(r)] for r in records]


def fields(record: RunRecord) -> dict[str, Any]:
    """Every field of the record, nested ones dotted, in the record's order."""
    return flatten(record.model_dump(mode="json"))


def show(record: RunRecord) -> str:
    return table(("field", "value"), list(fields(record).items()), digits=None)  # every digit of one run


def compare_rows(records: Sequence[RunRecord]) -> list[list[Any]]:
    """One row per field any of the runs has, its value in each run; "*" marks the rows that differ."""
    per_run = [fields(r) for r in records]
    keys = list(dict.fromkeys(k for f in per_run for k in f if k not in ("run_id", "search_candidates")))
    rows = []
    for key in keys:
        values = [f.get(key) for f in per_run]
        same = all(json.dumps(v, sort_keys=True, default=str) == json.dumps(values[0], sort_keys=True, default=str)
                   for v in values)
        rows.append([" " if same else "*", key, *values])
    return rows


def compare(records: Sequence[RunRecord]) -> str:
    return table(("", "field", *(r.run_id for r in records)), compare_rows(records), digits=6)
