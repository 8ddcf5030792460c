"""Where `mlops runs` reads run records from: the deployed reports bucket, another bucket, or a local folder.

The reports bucket is found through the storage stack's output (the same lookup promotion and batch
jobs use). A folder may hold the records themselves or a copy of the bucket (then its runs/ folder is read).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contracts import names
from contracts.run_record import RunRecord, parse_record


class RunStoreError(Exception):
    """The records cannot be read or the run is not there; the message says which and what to do."""


@dataclass(frozen=True)
class Location:
    """A folder (`path`) or a bucket (`bucket`, read with the `s3` client)."""

    path: Path | None = None
    bucket: str | None = None
    s3: Any = None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"s3://{self.bucket}/{names.RUNS}"


def reports_bucket(project: str, cloudformation: Any) -> str:
    """The reports bucket's name from the storage stack's outputs."""
    from stacks.rollout import PromotionError, stack_outputs

    stack = names.stack_name(project, names.STORAGE)
    try:
        outputs = stack_outputs(cloudformation, stack)
    except PromotionError as exc:
        raise RunStoreError(f"{exc}; or read records with --bucket NAME or --dir DIR") from exc
    key = names.bucket_output("reports", "Name")
    if key not in outputs:
        raise RunStoreError(f"stack {stack} has no output {key}: deploy the storage stack, or pass --bucket NAME")
    return outputs[key]


def _parse(body: bytes, where: str) -> RunRecord:
    try:
        return parse_record(body)
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        detail = f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}" if first else str(exc)
        raise RunStoreError(f"{where} is not a readable run record ({detail})") from exc


def _folder_records(root: Path, model_name: str | None) -> Iterable[RunRecord]:
    if not root.is_dir():
        raise RunStoreError(f"{root}: no such folder")
    base = root / names.RUNS if (root / names.RUNS).is_dir() else root  # a copy of the bucket, or the records
    for path in sorted(base.rglob("*.json")):
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise RunStoreError(f"{path}: cannot be read ({exc.strerror})") from exc
        record = _parse(body, str(path))
        if model_name is None or record.model_name == model_name:
            yield record


def _bucket_records(location: Location, model_name: str | None) -> Iterable[RunRecord]:
    prefix = names.runs_prefix(model_name) if model_name else names.RUNS
    pages = location.s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            if item["Key"].endswith(".json"):
                body = location.s3.get_object(Bucket=location.bucket, Key=item["Key"])["Body"].read()
                yield _parse(body, f"s3://{location.bucket}/{item['Key']}")


def load_records(location: Location, model_name: str | None = None) -> list[RunRecord]:
    """Every record (of one model when given), oldest first; an error when there is none."""
    found = list(_folder_records(location.path, model_name) if location.path is not None
                 else _bucket_records(location, model_name))
    if not found:
        scope = f" of model {model_name!r}" if model_name else ""
        raise RunStoreError(f"no run records{scope} in {location}: a pipeline run writes one when its "
                            "candidate is evaluated")
    return sorted(found, key=lambda r: (r.started_at or r.finished_at, r.finished_at, r.run_id))


def find_run(records: list[RunRecord], run_id: str) -> RunRecord:
    """The record of one run id; an error naming close ids, or the models, when it is unknown or ambiguous."""
    matches = [r for r in records if r.run_id == run_id]
    if len(matches) == 1:
        return matches[0]
    if matches:
        models = ", ".join(sorted(r.model_name for r in matches))
        raise RunStoreError(f"run {run_id!r} exists for several models ({models}): pass --model-name")
    close = difflib.get_close_matches(run_id, [r.run_id for r in records], n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else "; `mlops runs list` shows the runs"
    raise RunStoreError(f"no run {run_id!r} among {len(records)} records{hint}")
