"""What a job scores, from its execution input: a landed file, a job folder, or a list of objects.

    {"object_key": "batch/<model>/input/<job>/day.csv"}           a file landed (the S3 trigger)
    {"job_id": "nightly-2026-12-01"}                               the whole folder batch/<model>/input/<job>/
    {"job_id": "backfill", "objects": ["s3://<data bucket>/datasets/<model>/2025.csv.gz", ...]}
    optional: "model_version": 7 (a registry version; default the live model), "format": "jsonl"|"csv",
              "part_mb": 64
Objects must be in the data bucket, under the model's batch input folder or datasets/ (what the
functions may read). A landed file is its own job scope: its summary goes beside its outputs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from batch_scoring.planner import InputFile, PlanError, skipped
from batch_scoring.store import Store, StoreError
from contracts import names
from contracts.batch_job import OUTPUT_FORMATS
from contracts.s3_uri import split_s3_uri

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$")
FIELDS = {"object_key", "job_id", "objects", "model_version", "format", "part_mb"}


@dataclass(frozen=True)
class JobRequest:
    job_id: str
    files: list[InputFile]
    scope_name: str  # "" for the whole job, else the one file's name
    model_version: int | None
    output_format: str
    part_bytes: int
    skipped: str = ""  # why there is nothing to score (a marker file landed), else ""


def read_request(doc: Any, *, model_name: str, bucket: str, store: Store, execution_name: str,
                 default_format: str, default_part_mb: int) -> JobRequest:
    """The job the input asks for, its files listed; PlanError names the field or object that is wrong."""
    if not isinstance(doc, dict):
        raise PlanError(f"the execution input must be a JSON object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - FIELDS)
    if unknown:
        raise PlanError(f"unknown field(s) {', '.join(unknown)} in the execution input; expected {', '.join(sorted(FIELDS))}")
    version = doc.get("model_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int | str) or not str(version).isdigit()):
        raise PlanError(f"model_version must be a registry version number, got {version!r}")
    output_format = doc.get("format") or default_format
    if output_format not in OUTPUT_FORMATS:
        raise PlanError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    part_mb = doc.get("part_mb", default_part_mb)
    if isinstance(part_mb, bool) or not isinstance(part_mb, int) or not 1 <= part_mb <= 1024:
        raise PlanError(f"part_mb must be an integer from 1 to 1024, got {part_mb!r}")
    root = names.batch_input_prefix(model_name)
    if doc.get("object_key"):
        job_id, files, scope = _landed(doc["object_key"], root, store)
        if not files:
            return JobRequest(job_id, [], scope, None, output_format, part_mb << 20,
                              skipped=f"{doc['object_key']} is a marker or scratch file, not input")
    else:
        job_id = str(doc.get("job_id") or execution_name)
        if not _JOB_ID.match(job_id):
            raise PlanError(f"job_id {job_id!r}: use up to 128 letters, digits, '.', '_', '=' or '-'")
        files = _objects(doc["objects"], bucket, model_name, store) if "objects" in doc else _folder(root, job_id, store)
        scope = ""
    return JobRequest(job_id, files, scope, int(version) if version is not None else None, output_format,
                      part_mb << 20)


def _landed(key: Any, root: str, store: Store) -> tuple[str, list[InputFile], str]:
    if not isinstance(key, str) or not key.startswith(root) or key.count("/") < root.count("/") + 1:
        raise PlanError(f"object_key {key!r}: a landed file must be under {root}<job>/")
    job_id, name = key[len(root):].split("/", 1)
    if skipped(name):  # e.g. a writer's _temporary/ file: the job starts when the real file lands
        return job_id, [], name
    try:
        size = store.size(key)
    except StoreError:
        # S3's notifications URL-encode keys; EventBridge's are plain, but a key given by hand may be either.
        decoded = unquote_plus(key)
        if decoded == key:
            raise
        return _landed(decoded, root, store)
    return job_id, [InputFile(key, name, size)], name


def _folder(root: str, job_id: str, store: Store) -> list[InputFile]:
    prefix = f"{root}{job_id}/"
    files = [InputFile(key, key[len(prefix):], size) for key, size in store.list(prefix)
             if not key.endswith("/") and not skipped(key[len(prefix):])]
    if not files:
        raise PlanError(f"no input files under {store.uri(prefix)}")
    return files


def _objects(objects: Any, bucket: str, model_name: str, store: Store) -> list[InputFile]:
    if not isinstance(objects, list) or not objects or not all(isinstance(o, str) for o in objects):
        raise PlanError("objects must be a non-empty list of s3:// URIs or keys in the data bucket")
    allowed = (names.batch_input_prefix(model_name), names.DATASETS)
    files, seen = [], set()
    for item in objects:
        key = item
        if item.startswith("s3://"):
            try:
                item_bucket, key = split_s3_uri(item)
            except ValueError:
                raise PlanError(f"objects: {item!r} is not an s3://bucket/key URI") from None
            if item_bucket != bucket:
                raise PlanError(f"objects: {item} is not in the data bucket {bucket}")
        if not key.startswith(allowed):
            raise PlanError(f"objects: {key} is outside {' and '.join(allowed)} (what batch jobs may read)")
        name = key.rsplit("/", 1)[-1]
        if name in seen:
            raise PlanError(f"objects: two files are named {name}; their outputs would collide")
        seen.add(name)
        files.append(InputFile(key, name, store.size(key)))
    return files
