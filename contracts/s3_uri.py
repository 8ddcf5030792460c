"""s3://bucket/key URIs: the one parser every module uses, and reading a key that may not exist yet (standard
library only, cheap to import)."""
from __future__ import annotations

from typing import Any


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of s3://bucket/key; ValueError naming the URI otherwise."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme != "s3" or not bucket or not key.strip("/"):
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    return bucket, key


def get_if_exists(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The GetObject response of a key, or None when there is no such object.

    Asked by listing the key itself first: S3 answers a GET of a missing key with 404 only to a caller that may
    list the whole bucket, and with 403 to a role that may list one prefix (a condition on s3:prefix does not
    apply to a GET). So a least-privilege role can tell "not written yet" from "not allowed" this way; a key that
    vanishes between the two calls is still a NoSuchKey error.
    """
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    if not listed or listed[0]["Key"] != key:
        return None
    return s3.get_object(Bucket=bucket, Key=key)
