"""AWS Signature Version 4 for the two requests serving sends itself: the model's S3 GET and capture's PutRecordBatch.

boto3 signs the same way; building a client costs a cold start 0.1-0.2 s of imports and endpoint rules for
one or two request kinds, so these requests are signed here with the standard library only.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from contracts.env import TRUE_VALUES

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d+")  # the aws, aws-cn and aws-us-gov partitions


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str = ""


def env_credentials(env: Mapping[str, str]) -> Credentials | None:
    """The credentials Lambda puts in every function's environment; None when they are not there (a profile)."""
    access, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not access or not secret:
        return None
    return Credentials(access, secret, env.get("AWS_SESSION_TOKEN", ""))


def plain_region(env: Mapping[str, str]) -> str | None:
    """The region, when requests may go straight to the service; None for settings left to botocore.

    FIPS and dual-stack endpoints and proxies are left to botocore, which knows them all.
    """
    region = env.get("AWS_DEFAULT_REGION", "")  # boto3's setting (Lambda sets it, and AWS_REGION, to the function's)
    if not _REGION.fullmatch(region) or any(env.get(name, "").lower() in TRUE_VALUES for name in (
            "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")):
        return None
    if any(env.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return None
    return region


def configured_endpoint(env: Mapping[str, str], service: str) -> SplitResult | None:
    """AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL (an emulator: moto, LocalStack) as boto3 reads them; None when unset."""
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() in TRUE_VALUES:
        return None
    endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL") or ""
    return urlsplit(endpoint) if endpoint else None


def aws_domain(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def sign(method: str, host: str, path: str, *, service: str, region: str, credentials: Credentials, amz_date: str,
         headers: Mapping[str, str] | None = None, body: bytes = b"", content_sha256_header: bool = False) -> dict[str, str]:
    """The request's headers, every one signed, with `authorization` added (amz_date: YYYYMMDDTHHMMSSZ).

    path is already percent-encoded and has no query string; S3 wants the payload hash as a header too.
    """
    payload_hash = EMPTY_SHA256 if not body else hashlib.sha256(body).hexdigest()
    signed = {name.lower(): str(value).strip() for name, value in (headers or {}).items()}
    signed |= {"host": host, "x-amz-date": amz_date}
    if content_sha256_header:
        signed["x-amz-content-sha256"] = payload_hash
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    names = sorted(signed)
    signed_names = ";".join(names)
    canonical = "\n".join([method, path, "", *(f"{n}:{signed[n]}" for n in names), "", signed_names, payload_hash])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + credentials.secret_key).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                               f"SignedHeaders={signed_names}, Signature={signature}")
    return signed
