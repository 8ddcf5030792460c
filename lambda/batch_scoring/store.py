"""Where a job reads and writes: an S3 bucket (the Lambda handlers) or a local folder (`mlops batch`).

Both speak in keys relative to their root, so planning and scoring code is the same for both.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol


class StoreError(Exception):
    """An object cannot be read or written; the message names it."""


class Store(Protocol):
    def list(self, prefix: str) -> Iterator[tuple[str, int]]: ...  # (key, size), in key order
    def size(self, key: str) -> int: ...
    def read_range(self, key: str, start: int, end: int) -> bytes: ...  # bytes [start, end)
    def open_stream(self, key: str) -> BinaryIO: ...
    def get(self, key: str) -> bytes | None: ...  # None when absent
    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def delete(self, keys: list[str]) -> None: ...
    def uri(self, key: str) -> str: ...


class S3Store:
    """One bucket through boto3 (AWS_ENDPOINT_URL points it at the emulator locally)."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.s3 = client or boto3.client("s3")

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["Size"]

    def size(self, key: str) -> int:
        return self._call("read", key, lambda: self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def read_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        return self._call("read", key, lambda: self.s3.get_object(
            Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"].read())

    def open_stream(self, key: str) -> BinaryIO:
        return self._call("read", key, lambda: self.s3.get_object(Bucket=self.bucket, Key=key)["Body"])

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise StoreError(f"cannot read {self.uri(key)}: {exc}") from exc

    def put(self, key: str, data: bytes) -> None:
        self._call("write", key, lambda: self.s3.put_object(Bucket=self.bucket, Key=key, Body=data))

    def put_file(self, key: str, path: Path) -> None:
        self._call("write", key, lambda: self.s3.upload_file(str(path), self.bucket, key))

    def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                               "Quiet": True})

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _call(self, what: str, key: str, call: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except ClientError as exc:
            raise StoreError(f"cannot {what} {self.uri(key)}: {exc.response['Error'].get('Message') or exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot {what} {self.uri(key)}: {exc}") from exc


class LocalStore:
    """A folder; keys are paths relative to it with '/' separators."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / key

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        base = self.root / prefix if prefix else self.root
        if base.is_file():
            yield prefix, base.stat().st_size
            return
        found = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for p in found:
            yield p.relative_to(self.root).as_posix(), p.stat().st_size

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except OSError as exc:
            raise StoreError(f"cannot read {self.uri(key)}: {exc.strerror}") from exc

    def read_range(self, key: str, start: int, end: int) -> bytes:
        try:
            with self.path(key).open("rb") as f:
                f.seek(start)
                return f.read(max(0, end - start))
        except OSError as exc:
            raise StoreError(f"cannot read {self.uri(key)}: {exc.strerror}") from exc

    def open_stream(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except OSError as exc:
            raise StoreError(f"cannot read {self.uri(key)}: {exc.strerror}") from exc

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        return path.read_bytes() if path.is_file() else None

    def put(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # whole or not at all

    def put_file(self, key: str, path: Path) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), dest)

    def delete(self, keys: list[str]) -> None:
        """Remove the files, and the folders they leave empty (up to the root)."""
        for key in keys:
            path = self.path(key)
            path.unlink(missing_ok=True)
            for folder in path.parents:
                if folder == self.root or not folder.is_relative_to(self.root) or any(folder.iterdir()):
                    break
                folder.rmdir()

    def uri(self, key: str) -> str:
        return str(self.path(key))
