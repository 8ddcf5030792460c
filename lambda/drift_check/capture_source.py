"""The capture files of a window: S3 listing with a resumable cursor, streamed newline-aligned blocks.

Files are read in (LastModified, key) order. The cursor remembers the newest LastModified seen and
the keys processed within LOOKBACK of it, so a file that becomes visible late is still read once.
"""
from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from isal import isal_zlib  # ISA-L inflates gzip about twice as fast as zlib

CORRUPT = (zlib.error, isal_zlib.error)  # what a damaged or truncated gzip file raises

BLOCK_BYTES = 1 << 19  # decoded bytes per block: small enough to stay in cache, big enough to amortise numpy calls
LOOKBACK = timedelta(hours=1)
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class CaptureObject:
    key: str
    last_modified: datetime
    size: int


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass
class Cursor:
    """Where the drift check stopped: the newest LastModified read and the keys read near it."""

    time: datetime | None = None
    keys: dict[str, str] = field(default_factory=dict)  # key -> LastModified (ISO)

    def is_new(self, obj: CaptureObject) -> bool:
        if obj.key in self.keys:
            return False
        return self.time is None or obj.last_modified >= self.time - LOOKBACK

    def advance(self, obj: CaptureObject) -> None:
        self.keys[obj.key] = iso(obj.last_modified)
        if self.time is None or obj.last_modified > self.time:
            # Only a later time moves the horizon: a key admitted by is_new is inside it already.
            self.time = obj.last_modified
            horizon = self.time - LOOKBACK
            self.keys = {k: t for k, t in self.keys.items() if datetime.fromisoformat(t) >= horizon}

    def to_dict(self) -> dict[str, Any]:
        return {"time": iso(self.time) if self.time else None, "keys": dict(self.keys)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Cursor:
        if not data:
            return cls()
        time = datetime.fromisoformat(data["time"]) if data.get("time") else None
        return cls(time=time, keys=dict(data.get("keys") or {}))


def list_window(s3: Any, bucket: str, prefix: str, cursor: Cursor, until: datetime) -> list[CaptureObject]:
    """Objects under `prefix` not yet read and modified no later than `until`, oldest first."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            obj = CaptureObject(item["Key"], item["LastModified"], int(item.get("Size", 0)))
            if obj.last_modified <= until and cursor.is_new(obj) and not obj.key.endswith("/"):
                found.append(obj)
    return sorted(found, key=lambda o: (o.last_modified, o.key))


def iter_blocks(chunks: Iterable[bytes], block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Re-cut a byte stream (gzip, possibly multi-member, or plain) into blocks of whole lines."""
    inflater: Any = None
    pending = b""
    first = True
    for chunk in chunks:
        if first and chunk:
            first = False
            if chunk[:2] == GZIP_MAGIC:
                inflater = isal_zlib.decompressobj(wbits=31)
        if inflater is not None:
            data = inflater.decompress(chunk)
            while inflater.eof and inflater.unused_data:  # Firehose may concatenate gzip members
                rest = inflater.unused_data
                inflater = isal_zlib.decompressobj(wbits=31)
                data += inflater.decompress(rest)
            chunk = data
        pending += chunk
        if len(pending) >= block_bytes:
            cut = pending.rfind(b"\n") + 1
            if cut:
                yield pending[:cut]
                pending = pending[cut:]
    if inflater is not None and not inflater.eof:
        raise zlib.error("the gzip stream is truncated")
    if pending:
        yield pending


def object_blocks(s3: Any, bucket: str, key: str, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield from iter_blocks(body.iter_chunks(chunk_size=block_bytes // 4), block_bytes)
    finally:
        body.close()


_END = object()


class Prefetcher:
    """Downloads and inflates the next files on a thread while the caller decodes (both release the GIL)."""

    def __init__(self, s3: Any, bucket: str, objects: list[CaptureObject], depth: int = 8):
        self._s3, self._bucket, self._objects = s3, bucket, objects
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-prefetch", daemon=True)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        for obj in self._objects:
            try:
                for block in object_blocks(self._s3, self._bucket, obj.key):
                    if not self._put((obj, block)):
                        return
                error = None
            except Exception as exc:
                error = exc
            if not self._put((obj, _END, error)):
                return

    def files(self) -> Iterator[tuple[CaptureObject, Iterator[bytes], list[Exception]]]:
        """Yield each object with an iterator over its blocks; after it, errors holds a read error, if any."""
        self._thread.start()
        try:
            for obj in self._objects:
                errors: list[Exception] = []
                yield obj, self._blocks(obj, errors), errors
        finally:
            self.close()

    def _blocks(self, obj: CaptureObject, errors: list[Exception]) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item[1] is _END:
                if item[2] is not None:
                    errors.append(item[2])
                return
            yield item[1]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
