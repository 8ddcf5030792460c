"""The promotion history: which registry versions were deployed behind the `live` alias, in order.

`mlops promote`/`rollback` (stacks/rollout.py) append to it after a successful deploy; the training
pipeline's evaluate step reads it to compare a candidate with the model that is live. One JSON file
per model beside its artifacts: s3://<artifacts bucket>/models/<model name>/promotions.json
(versioned bucket, conditional writes).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts import names
from contracts.artifact import utc_now
from contracts.s3_uri import get_if_exists, split_s3_uri

PROMOTE, ROLLBACK = "promote", "rollback"


class PromotionError(Exception):
    """A rollout step cannot be done; the message says why and what to do."""


class PromotedVersion(Protocol):
    """What a history entry records of a registry version (training.registry.ModelVersion has it)."""

    version: int
    arn: str
    model_data_url: str
    sha256: str


@dataclass
class History:
    """The promotion log of one model, and the ETag it was read at (for a conditional write)."""

    bucket: str
    key: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    etag: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def live(self) -> list[int]:
        """Promoted versions as a stack: promote pushes (unless already live), rollback pops."""
        stack: list[int] = []
        for entry in self.entries:
            if entry["action"] == ROLLBACK and stack:
                stack.pop()
            if not stack or stack[-1] != entry["version"]:
                stack.append(entry["version"])
        return stack

    def live_entry(self) -> dict[str, Any] | None:
        """The latest entry of the version on top of live(): its tarball and sha256 are what serves."""
        live = self.live()
        if not live:
            return None
        return next(e for e in reversed(self.entries) if e["version"] == live[-1])

    def rollback_target(self) -> int:
        live = self.live()
        if len(live) < 2:
            raise PromotionError("nothing to roll back to: " + (
                f"version {live[0]} is the only one promoted" if live else "no version was promoted yet"))
        return live[-2]

    def record(self, action: str, version: PromotedVersion) -> dict[str, Any]:
        entry = {"action": action, "version": version.version, "model_package_arn": version.arn,
                 "model_data_url": version.model_data_url, "sha256": version.sha256,
                 "at": utc_now()}
        self.entries.append(entry)
        return entry


def history_location(model_data_url: str, model_name: str) -> tuple[str, str]:
    """The history sits in the bucket that holds the model's artifacts."""
    try:
        bucket, _ = split_s3_uri(model_data_url)
    except ValueError:
        raise PromotionError(f"cannot tell the artifacts bucket from {model_data_url!r}") from None
    return bucket, names.promotions_key(model_name)


def load_history(s3: Any, bucket: str, key: str) -> History:
    """The history, empty when the object does not exist (nothing promoted yet; the evaluate step may list only
    this key, see get_if_exists)."""
    obj = get_if_exists(s3, bucket, key)
    if obj is None:
        return History(bucket, key)
    return History(bucket, key, json.loads(obj["Body"].read())["entries"], obj["ETag"])


def save_history(s3: Any, history: History) -> None:
    """Write only if nobody else wrote since we read (S3 conditional write)."""
    from botocore.exceptions import ClientError

    condition = {"IfMatch": history.etag} if history.etag else {"IfNoneMatch": "*"}
    body = json.dumps({"entries": history.entries}, indent=2).encode()
    try:
        s3.put_object(Bucket=history.bucket, Key=history.key, Body=body, ContentType="application/json", **condition)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise PromotionError(f"{history.uri} changed while this rollout ran "
                                 "(another promotion?): check `status` and record it again") from exc
        raise


def record_promotion(s3: Any, model_name: str, version: PromotedVersion, action: str = PROMOTE) -> dict[str, Any]:
    """Append one deployed version to the model's history (read, record, conditional write); returns the entry.

    What `mlops promote` does after its deploy succeeded, for callers that deploy another way (the demo).
    """
    history = load_history(s3, *history_location(version.model_data_url, model_name))
    entry = history.record(action, version)
    save_history(s3, history)
    return entry
