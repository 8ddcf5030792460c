"""The capture record: one JSON line per prediction, written by serving and read by the drift check."""
from __future__ import annotations

from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict

Scalar = float | int | str | bool | None


class CaptureRecord(BaseModel):
    """What a captured prediction looks like in the capture bucket (JSON Lines)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    time: str  # ISO-8601, UTC
    request_id: str
    model_name: str
    model_version: str
    features: dict[str, Scalar]
    prediction: Scalar
    probability: dict[str, float] | None = None


def to_line(record: CaptureRecord) -> bytes:
    """One record as a newline-terminated JSON line."""
    return record.model_dump_json(exclude_none=True).encode() + b"\n"


_encoder = msgspec.json.Encoder()


def record_line(
    *,
    time: str,
    request_id: str,
    model_name: str,
    model_version: str,
    features: dict[str, Any],
    prediction: Any,
    probability: dict[str, float] | None = None,
) -> bytes:
    """Serialise a record without pydantic validation: the serving hot path already validated it.

    msgspec encodes a 1,000-row batch's records in ~3.5 ms where json.dumps takes ~19 ms. It writes
    a non-finite float as null (missing), so a line is always valid JSON.
    """
    body: dict[str, Any] = {
        "time": time,
        "request_id": request_id,
        "model_name": model_name,
        "model_version": model_version,
        "features": features,
        "prediction": prediction,
    }
    if probability is not None:
        body["probability"] = probability
    return _encoder.encode(body) + b"\n"


def parse_line(line: bytes | str) -> CaptureRecord:
    """Parse one line; raises ValueError (pydantic's ValidationError is one) when it is malformed."""
    return CaptureRecord.model_validate_json(line)
