"""Firehose PutRecordBatch as one SigV4-signed POST on a kept-alive connection (no botocore on the cold start).

A botocore Firehose client costs a cold start ~0.15 s of imports and endpoint rules for this one call. With
the credentials and the region in the environment, as Lambda always sets them, capture sends the call
itself; capture.py falls back to a botocore client for anything else (a profile, FIPS, a proxy).
"""
from __future__ import annotations

import http.client
import select
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from inference import sigv4

SERVICE = "firehose"
OPERATION = "Firehose_20150804.PutRecordBatch"
CONTENT_TYPE = "application/x-amz-json-1.1"
# As the botocore client had them: on Lambda the caller waits for the delivery, and a record dropped (and
# counted) costs less than a prediction held for seconds.
CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 1.0


class PutFailed(Exception):
    """Firehose answered with an error (its type and message), or the request could not be completed."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str  # host[:port]
    path: str
    region: str


class _Record(msgspec.Struct):
    Data: bytes  # msgspec writes bytes as base64, as the JSON protocol wants


class _Request(msgspec.Struct):
    DeliveryStreamName: str
    Records: list[_Record]


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def endpoint_for(env: Mapping[str, str]) -> Endpoint | None:
    """Where boto3 would send the call, or None for settings left to botocore."""
    region = sigv4.plain_region(env)
    if region is None:
        return None
    url = sigv4.configured_endpoint(env, SERVICE)
    if url is None:
        return Endpoint("https", f"{SERVICE}.{region}.{sigv4.aws_domain(region)}", "/", region)
    if url.scheme not in ("http", "https") or not url.netloc:
        return None
    return Endpoint(url.scheme, url.netloc, url.path or "/", region)


def signed_client(env: Mapping[str, str]) -> SignedFirehose | None:
    """A client for the environment's credentials and region; None when botocore must do it."""
    credentials, endpoint = sigv4.env_credentials(env), endpoint_for(env)
    if credentials is None or endpoint is None:
        return None
    return SignedFirehose(endpoint, credentials, ca_bundle=env.get("AWS_CA_BUNDLE") or None)


class SignedFirehose:
    """put_record_batch with botocore's arguments and response shape, on a kept-alive connection per thread.

    Lambda calls from one thread; uvicorn (the demo, the load tests) runs background tasks on several.
    """

    def __init__(self, endpoint: Endpoint, credentials: sigv4.Credentials, ca_bundle: str | None = None) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.ca_bundle = ca_bundle  # as botocore honours AWS_CA_BUNDLE
        self._local = threading.local()

    def put_record_batch(self, DeliveryStreamName: str, Records: Sequence[Mapping[str, bytes]]) -> dict[str, Any]:
        body = _encode(_Request(DeliveryStreamName, [_Record(r["Data"]) for r in Records]))
        headers = sigv4.sign("POST", self.endpoint.host, self.endpoint.path, service=SERVICE, region=self.endpoint.region,
                             credentials=self.credentials, amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                             headers={"content-type": CONTENT_TYPE, "x-amz-target": OPERATION}, body=body)
        status, answer = self._post(body, headers)
        if status == 200 and "RequestResponses" not in answer:  # a proxy's page, not Firehose: nothing is known delivered
            raise PutFailed(f"200 without a PutRecordBatch answer: {str(answer.get('message', ''))[:100]}")
        if status != 200:
            kind = str(answer.get("__type", "")).rpartition("#")[2] or "error"
            raise PutFailed(f"{status} {kind}: {answer.get('message') or answer.get('Message') or ''}".rstrip(": "))
        return answer

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        conn = self._connection()
        try:
            conn.request("POST", self.endpoint.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except Exception:
            self.close()  # a half-used connection is never reused
            raise
        try:
            answer = _decode(data) if data else {}
        except msgspec.DecodeError:
            answer = {"message": data[:200].decode(errors="replace")}
        return response.status, answer if isinstance(answer, dict) else {}

    def _connection(self) -> http.client.HTTPConnection:
        """The open connection, unless the server has closed it since (readable while idle), else a new one."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and not _readable(conn.sock):
            return conn
        self.close()
        if self.endpoint.scheme == "https":
            import ssl

            conn = http.client.HTTPSConnection(self.endpoint.host, timeout=CONNECT_TIMEOUT,
                                               context=ssl.create_default_context(cafile=self.ca_bundle))
        else:
            conn = http.client.HTTPConnection(self.endpoint.host, timeout=CONNECT_TIMEOUT)
        conn.connect()
        conn.sock.settimeout(READ_TIMEOUT)
        self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _readable(sock: Any) -> bool:
    """An idle kept-alive socket that is readable was closed by the server (or holds junk): never reuse it.
    poll, not select.select (which fails on descriptors past 1023) nor a selector (an epoll descriptor per call)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
