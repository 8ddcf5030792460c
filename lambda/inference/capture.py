"""Request capture: a sample of predictions as JSON lines to a Firehose delivery stream.

Several lines share one Firehose record (Firehose concatenates record data into the S3
object, and the lines end in newlines), so a 1,000-row batch costs one or two records,
not a thousand. Delivery never fails a prediction: a record that cannot be delivered is
counted in CaptureRecordsDropped and logged.
"""
from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from contracts import metric_names
from inference import firehose_put
from inference.firehose_put import signed_client
from inference.observability import logger, metrics

MAX_RECORD_BYTES = 1_000 * 1024  # Firehose: one record's data
MAX_BATCH_RECORDS = 500  # PutRecordBatch: records per call
MAX_BATCH_BYTES = 4 * 1024 * 1024  # PutRecordBatch: bytes per call


def firehose_client() -> Any:
    """botocore's client, for settings the signed call leaves to it: the same timeouts, no retry. Made by
    botocore itself: boto3 would add its own and s3transfer's imports for nothing used here."""
    from botocore.config import Config
    from botocore.session import get_session

    return get_session().create_client("firehose", config=Config(
        connect_timeout=firehose_put.CONNECT_TIMEOUT, read_timeout=firehose_put.READ_TIMEOUT,
        retries={"total_max_attempts": 1, "mode": "standard"}))


def pack(lines: Sequence[bytes]) -> tuple[list[list[bytes]], int]:
    """Group lines into Firehose records, and those into PutRecordBatch calls; also the lines too big to send."""
    batches: list[list[bytes]] = []
    records: list[bytes] = []
    record: list[bytes] = []
    size = batch_bytes = too_big = 0

    def close_record() -> None:
        nonlocal record, size, batch_bytes, records
        if not record:
            return
        data = b"".join(record)
        if len(records) == MAX_BATCH_RECORDS or batch_bytes + len(data) > MAX_BATCH_BYTES:
            batches.append(records)
            records, batch_bytes = [], 0
        records.append(data)
        batch_bytes += len(data)
        record, size = [], 0

    for line in lines:
        if len(line) > MAX_RECORD_BYTES:
            too_big += 1
            continue
        if size + len(line) > MAX_RECORD_BYTES:
            close_record()
        record.append(line)
        size += len(line)
    close_record()
    if records:
        batches.append(records)
    return batches, too_big


class CaptureSink:
    """Samples predictions and delivers their capture lines to Firehose."""

    def __init__(self, stream: str, sample_rate: float, client: Any = None) -> None:
        self.stream = stream
        self.sample_rate = sample_rate
        self.enabled = bool(stream) and sample_rate > 0
        if client is None and self.enabled:  # the signed call imports nothing at init; botocore only where it must
            client = signed_client(os.environ) or firehose_client()
        self._client = client

    def sampled(self, n: int) -> list[int]:
        """Which of n predictions to capture."""
        if not self.enabled:
            return []
        if self.sample_rate >= 1.0:
            return list(range(n))
        return [i for i in range(n) if random.random() < self.sample_rate]

    def send(self, lines: Sequence[bytes]) -> None:
        """Deliver the lines; count and log what could not be delivered, never raise."""
        batches, dropped = pack(lines)
        sent = 0
        for records in batches:
            delivered, lost = self._put(records)
            sent += delivered
            dropped += lost
        if sent:
            metrics.add_metric(name=metric_names.CAPTURE_SENT, unit=MetricUnit.Count, value=sent)
        if dropped:
            metrics.add_metric(name=metric_names.CAPTURE_DROPPED, unit=MetricUnit.Count, value=dropped)
            logger.warning("capture records dropped", extra={"dropped": dropped, "stream": self.stream})

    def _put(self, records: list[bytes]) -> tuple[int, int]:
        """One PutRecordBatch call: (lines delivered, lines lost)."""
        counts = [data.count(b"\n") for data in records]
        try:
            response = self._client.put_record_batch(
                DeliveryStreamName=self.stream, Records=[{"Data": data} for data in records])
        except Exception as exc:  # any failure loses these lines, never the prediction
            logger.warning("capture delivery failed", extra={"error": repr(exc), "stream": self.stream})
            return 0, sum(counts)
        if not response.get("FailedPutCount"):
            return sum(counts), 0
        lost = sum(n for n, result in zip(counts, response["RequestResponses"]) if result.get("ErrorCode"))
        codes = sorted({r["ErrorCode"] for r in response["RequestResponses"] if r.get("ErrorCode")})
        logger.warning("capture records rejected by Firehose", extra={"error_codes": codes, "stream": self.stream})
        return sum(counts) - lost, lost
