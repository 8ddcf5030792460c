"""JSON lines to a Firehose delivery stream: packed into records and PutRecordBatch calls, what was lost counted.

Several lines share one Firehose record (Firehose concatenates record data into the S3 object, and the
lines end in newlines), so a 1,000-row batch costs one or two records, not a thousand. Request capture
(capture.py) and POST /feedback's labels (feedback.py) both deliver through a LineStream.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from inference import firehose_put
from inference.firehose_put import signed_client
from inference.observability import logger

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


def environment_client() -> Any:
    """The signed call when the environment holds the credentials and region (Lambda's case), else botocore's."""
    return signed_client(os.environ) or firehose_client()


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


class LineStream:
    """One delivery stream's PutRecordBatch calls: (lines delivered, lines lost), never raising.

    what: the lines' kind in log messages ("capture", "label"). retries: how many times records that
    Firehose rejected (FailedPutCount) are sent again before they count as lost.
    """

    def __init__(self, stream: str, client: Any, *, what: str, retries: int = 0) -> None:
        self.stream = stream
        self.what = what
        self.retries = retries
        self._client = client

    def deliver(self, lines: Sequence[bytes]) -> tuple[int, int]:
        """Send the lines; (delivered, lost), the lost ones logged."""
        batches, lost = pack(lines)
        if lost:
            logger.warning(f"{self.what} lines over Firehose's record size", extra={"lines": lost, "stream": self.stream})
        sent = 0
        for records in batches:
            delivered, failed = self._put(records)
            sent += delivered
            lost += failed
        return sent, lost

    def _put(self, records: list[bytes], retries: int | None = None) -> tuple[int, int]:
        """One PutRecordBatch call, then the rejected records again while retries last: (lines delivered, lines lost)."""
        retries = self.retries if retries is None else retries
        total = sum(data.count(b"\n") for data in records)
        try:
            response = self._client.put_record_batch(
                DeliveryStreamName=self.stream, Records=[{"Data": data} for data in records])
        except Exception as exc:  # any failure loses these lines; the caller decides what that costs
            logger.warning(f"{self.what} delivery failed", extra={"error": repr(exc), "stream": self.stream})
            return 0, total
        if not response.get("FailedPutCount"):
            return total, 0
        rejected = [data for data, result in zip(records, response["RequestResponses"]) if result.get("ErrorCode")]
        codes = sorted({r["ErrorCode"] for r in response["RequestResponses"] if r.get("ErrorCode")})
        logger.warning(f"{self.what} records rejected by Firehose", extra={
            "error_codes": codes, "stream": self.stream, "records": len(rejected), "retrying": retries > 0})
        if retries > 0:
            _, lost = self._put(rejected, retries - 1)
        else:
            lost = sum(data.count(b"\n") for data in rejected)
        return total - lost, lost
