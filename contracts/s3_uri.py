"""s3://bucket/key URIs: the one parser every module uses (standard library only, cheap to import)."""
from __future__ import annotations


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of s3://bucket/key; ValueError naming the URI otherwise."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme != "s3" or not bucket or not key.strip("/"):
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    return bucket, key
