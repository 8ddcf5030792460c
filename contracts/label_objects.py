"""Ground-truth labels in S3: the label objects of a horizon, listed and read (the scheduled model-quality check,
and the retraining data set).

labels/<model>/feedback/YYYY/MM/DD/HH/ holds what the labels Firehose stream delivers (POST /feedback); any other
key under labels/<model>/ is a bulk file (CSV or JSON Lines, plain or gzip) a user dropped there. An object counts
when its LastModified is within the horizon; a bulk row without a time arrived when its object did. An object
that cannot be read is named in the run report and skipped, never fatal.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contracts import names
from contracts.drift_report import UnreadableFile
from contracts.ground_truth import GroundTruth, parse_object

DAY = timedelta(days=1)
# How long after a prediction its label may still arrive and be joined (MODEL_QUALITY_HORIZON_DAYS): the
# model-quality check and the retraining data set read the same horizon.
DEFAULT_HORIZON_DAYS = 14


@dataclass(frozen=True)
class InputObject:
    """An S3 object the check reads: the checkpoint remembers (key, etag) to tell a new or rewritten one."""

    key: str
    etag: str
    last_modified: datetime


@dataclass
class LabelsRead:
    """Every label record of the horizon's label objects, oldest object first, and what could not be used."""

    records: list[GroundTruth] = field(default_factory=list)
    malformed: int = 0
    unreadable: list[UnreadableFile] = field(default_factory=list)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def list_objects(s3: Any, bucket: str, prefix: str, *, since: datetime, delimiter: str = "") -> tuple[
        list[InputObject], list[str]]:
    """Objects under `prefix` modified at or after `since` (folder markers skipped), and the sub-prefixes when a
    delimiter is given."""
    found, folders = [], []
    request = {"Bucket": bucket, "Prefix": prefix} | ({"Delimiter": delimiter} if delimiter else {})
    for page in s3.get_paginator("list_objects_v2").paginate(**request):
        folders += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        for item in page.get("Contents", []):
            if item["LastModified"] >= since and not item["Key"].endswith("/"):
                found.append(InputObject(item["Key"], item["ETag"].strip('"'), item["LastModified"]))
    return found, folders


def day_prefixes(root: str, since: datetime, until: datetime) -> Iterator[str]:
    """root + YYYY/MM/DD/ for every UTC day from since's to until's: the Firehose partitions that may hold them."""
    day = since.replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= until:
        yield f"{root}{day:%Y/%m/%d}/"
        day += DAY


def list_labels(s3: Any, bucket: str, model_name: str, *, since: datetime, until: datetime) -> list[InputObject]:
    """The label objects modified since `since`, oldest first: Firehose's by day partition, bulk files anywhere
    else under labels/<model>/ (so months of feedback partitions are never listed)."""
    root = names.labels_prefix(model_name)
    feedback = names.feedback_prefix(model_name)
    found, folders = list_objects(s3, bucket, root, since=since, delimiter="/")
    for folder in folders:
        if folder == feedback:
            for prefix in day_prefixes(feedback, since, until):
                found += list_objects(s3, bucket, prefix, since=since)[0]
        else:
            found += list_objects(s3, bucket, folder, since=since)[0]
    return sorted(found, key=lambda o: (o.last_modified, o.key))


def read_labels(s3: Any, bucket: str, objects: list[InputObject]) -> LabelsRead:
    """Parse each object in order (a later label replaces an earlier: contracts.ground_truth.latest)."""
    read = LabelsRead()
    for obj in objects:
        try:
            body = s3.get_object(Bucket=bucket, Key=obj.key)["Body"].read()
            labels = parse_object(body, default_time=iso(obj.last_modified))
        except (ClientError, BotoCoreError, ValueError, csv.Error) as exc:  # LabelFileError is a ValueError
            read.unreadable.append(UnreadableFile(key=obj.key, error=str(exc)))
            continue
        read.records += labels.records
        read.malformed += labels.malformed
    return read
