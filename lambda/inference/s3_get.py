"""S3 GetObject to a file: one SigV4-signed HTTP GET (standard library only), boto3 for anything unusual.

Importing boto3 and building an S3 client costs ~0.2 s of a cold start (s3transfer, the S3 service
model, the endpoint rules) for a single GET. With the credentials and the region in the environment,
as Lambda always sets them, this module signs that GET itself; the boto3 client takes over when they
are not (a profile), for proxies and FIPS/dual-stack endpoints, and whenever S3 answers anything but
the object or a definite "no" (a redirect to another region, a 5xx its retries may get past).
Only standard-library modules (and contracts.env, which imports only those) are imported here, so the download can start before the heavy imports.
"""
from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from inference import sigv4
from inference.sigv4 import Credentials, env_credentials

# Answers the SDK would give too (same credentials, same object): reported, not retried through boto3.
FINAL_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "AccessDenied"})
# Lambda cuts the init phase at 10 s: a stalled S3 must end in the 503 with the reason well before. At worst
# the signed GET waits TIMEOUT, then boto3 makes SDK_ATTEMPTS attempts of TIMEOUT connecting and TIMEOUT reading
# (per socket operation: a healthy S3 sends the first byte in well under a second).
TIMEOUT = 2.0
# S3's answers that mean "not now" rather than "no" (besides any 5xx and HTTP 429).
THROTTLING_CODES = frozenset({"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException", "RequestLimitExceeded"})
SDK_ATTEMPTS = 2
_DNS_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")  # usable as a host name label (no dots)
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


class FetchError(Exception):
    """The object cannot be read; the message is S3's error code or the transport's complaint.

    transient: a passing fault (throttling, a 5xx, a timeout or a dropped connection) that another try
    may get past, as opposed to a definite answer (no such key or bucket, access denied).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Target:
    """Where the signed GET goes: http or https, host[:port], the encoded path, and the signing region."""

    scheme: str
    host: str
    path: str
    region: str


def fetch(bucket: str, key: str, dest: Path, env: Mapping[str, str] | None = None) -> str:
    """Write the object to dest; returns how it was read ("signed GET" or "boto3: <why>"), raises FetchError."""
    env = os.environ if env is None else env
    credentials, target = env_credentials(env), target_for(bucket, key, env)
    with open(dest, "wb") as fh:  # a local problem (no space, read-only) is raised here, not blamed on S3
        if credentials is None:
            return _sdk_fetch(bucket, key, fh, "no credentials in the environment")
        if target is None:
            return _sdk_fetch(bucket, key, fh, "region or endpoint settings this module does not handle")
        try:
            status, code = _signed_get(target, credentials, fh, env)
        except Exception as exc:  # refused, reset, timed out, cut short, TLS...: the signed GET is only a shortcut
            return _sdk_fetch(bucket, key, fh, f"signed GET failed: {exc!r}")
        if status == 200:
            return "signed GET"
        if code in FINAL_CODES:
            raise FetchError(code)
        return _sdk_fetch(bucket, key, fh, f"signed GET answered {status} {code}".rstrip())


def target_for(bucket: str, key: str, env: Mapping[str, str]) -> Target | None:
    """The URL boto3 would use for this object, or None for settings left to boto3.

    In us-east-1, the regional endpoint AWS recommends, where boto3 still uses the legacy global one.
    """
    region = sigv4.plain_region(env)
    if region is None:
        return None
    object_path = "/" + quote(key, safe="/~")
    url = sigv4.configured_endpoint(env, "s3")
    if url is not None:  # an emulator: path-style, as boto3 addresses any configured endpoint
        if url.scheme not in ("http", "https") or not url.netloc:
            return None
        return Target(url.scheme, url.netloc, f"{url.path.rstrip('/')}/{quote(bucket)}{object_path}", region)
    domain = sigv4.aws_domain(region)
    if _DNS_BUCKET.fullmatch(bucket):
        return Target("https", f"{bucket}.s3.{region}.{domain}", object_path, region)
    return Target("https", f"s3.{region}.{domain}", f"/{quote(bucket)}{object_path}", region)


def sign(target: Target, credentials: Credentials, amz_date: str) -> dict[str, str]:
    """The headers of a SigV4-signed GET without a body (amz_date: YYYYMMDDTHHMMSSZ)."""
    return sigv4.sign("GET", target.host, target.path, service="s3", region=target.region, credentials=credentials,
                      amz_date=amz_date, content_sha256_header=True)


def _signed_get(target: Target, credentials: Credentials, fh: BinaryIO, env: Mapping[str, str]) -> tuple[int, str]:
    """(status, S3 error code or ""); the body goes to fh on 200. Transport failures raise (OSError, HTTPException)."""
    import http.client

    if target.scheme == "https":
        import ssl

        context = ssl.create_default_context(cafile=env.get("AWS_CA_BUNDLE") or None)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(target.host, timeout=TIMEOUT, context=context)
    else:
        conn = http.client.HTTPConnection(target.host, timeout=TIMEOUT)
    try:
        conn.request("GET", target.path, headers=sign(target, credentials, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())))
        response = conn.getresponse()
        if response.status != 200:
            match = _CODE.search(response.read(4096))
            return response.status, match.group(1).decode(errors="replace") if match else ""
        shutil.copyfileobj(response, fh, 1 << 20)
        if response.length:  # bytes of Content-Length never received: read(n) does not raise for those
            raise http.client.IncompleteRead(b"", response.length)
        return 200, ""
    finally:
        conn.close()


def _sdk_fetch(bucket: str, key: str, fh: BinaryIO, why: str) -> str:
    """get_object through boto3 (its retry, redirects, credential chain), streamed to fh; raises FetchError."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    fh.seek(0)
    fh.truncate()  # whatever a failed signed GET wrote
    config = Config(connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
                    retries={"total_max_attempts": SDK_ATTEMPTS, "mode": "standard"})
    try:
        body = boto3.client("s3", config=config).get_object(Bucket=bucket, Key=key)["Body"]
        shutil.copyfileobj(body, fh, 1 << 20)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        raise FetchError(code, transient=code not in FINAL_CODES and (status >= 500 or status == 429
                                                                       or code in THROTTLING_CODES)) from exc
    except BotoCoreError as exc:  # connection refused or reset, timeouts, endpoint trouble
        raise FetchError(str(exc), transient=True) from exc
    return f"boto3: {why}"


class Download:
    """fetch() in a background thread, started at once, so the download overlaps the imports of a cold start."""

    def __init__(self, bucket: str, key: str, dest: Path, env: Mapping[str, str] | None = None) -> None:
        self.bucket, self.key, self.dest = bucket, key, dest
        self._via = ""
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(dict(os.environ if env is None else env),),
                                        name="model-download", daemon=True)
        self._thread.start()

    def _run(self, env: dict[str, str]) -> None:
        try:
            self._via = fetch(self.bucket, self.key, self.dest, env)
        except BaseException as exc:  # handed to the waiting thread, which decides
            self._error = exc

    def wait(self) -> str:
        """How the object was read; raises what the download raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._via
