"""Helpers for the reliability tests: loopback fault servers, injected AWS errors, a checked burst, EMF and logs."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from contracts import names
from demo.traffic import TrafficResult

MODEL_NAME = "breast-cancer"
STREAM = "capture-stream"
CAPTURE_BUCKET = "capture"
CAPTURE_PREFIX = names.capture_prefix(MODEL_NAME)


def breast_cancer_rows(names: list[str]) -> list[dict[str, float]]:
    """Every row of the data set as a request's feature object, in the schema's names."""
    from sklearn.datasets import load_breast_cancer

    return [dict(zip(names, map(float, row))) for row in load_breast_cancer().data]


# ------------------------------------------------------------------ faults on loopback


@contextmanager
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    """A loopback endpoint that accepts each connection and closes it unanswered; yields (URL, [connections])."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)  # lets the accept loop see the stop flag
    accepted = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted[0] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def client_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                       operation)


def fail_operation(client: Any, operation: str, error: Exception) -> None:
    """Make every call of one API operation of a (moto-backed) client raise `error`, paginated calls included."""
    def raise_error(**_: Any) -> None:
        raise error

    client.meta.events.register(f"before-call.{client.meta.service_model.service_name}.{operation}", raise_error)


# ------------------------------------------------------------------ AWS set-up and read-back


def firehose_to_s3(s3: Any, firehose: Any) -> None:
    """The capture bucket and a DirectPut stream delivering into the model's capture folder."""
    s3.create_bucket(Bucket=CAPTURE_BUCKET)
    firehose.create_delivery_stream(
        DeliveryStreamName=STREAM, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": f"arn:aws:s3:::{CAPTURE_BUCKET}",
            "Prefix": CAPTURE_PREFIX})


def captured_lines(s3: Any) -> list[dict[str, Any]]:
    """Every capture record in the capture bucket, parsed."""
    lines = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=CAPTURE_BUCKET, Prefix=CAPTURE_PREFIX):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=CAPTURE_BUCKET, Key=obj["Key"])["Body"].read()
            lines += [json.loads(line) for line in body.splitlines() if line.strip()]
    return lines


def emf_values(text: str, name: str) -> list[float]:
    """Every value of one metric in the EMF blobs printed to stdout."""
    blobs = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
    return [v for blob in blobs if name in blob for v in blob[name]]


def log_entries(path: Path, message: str) -> list[dict[str, Any]]:
    """The structured (Powertools) log lines of a server log with this message."""
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [entry for entry in entries if entry.get("message") == message]


# ------------------------------------------------------------------ a checked burst of requests


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    request_id: str
    rows: list[int]  # indices of the data set rows sent (one for /predict)


@dataclass
class Burst:
    """Latencies and statuses (demo.traffic's result) plus what was wrong with the answers."""

    traffic: TrafficResult = field(default_factory=TrafficResult)
    errors: list[str] = field(default_factory=list)  # transport errors and wrong answers, the first few
    error_count: int = 0
    transport_errors: int = 0
    seconds: float = 0.0

    def figures(self) -> dict[str, Any]:
        n = sum(self.traffic.statuses.values())
        return {"requests": n, "rows_predicted": self.traffic.rows_predicted, "seconds": round(self.seconds, 3),
                "requests_per_second": round(n / self.seconds, 1) if self.seconds else None,
                "latency_ms": {k: round(v, 2) for k, v in self.traffic.percentiles().items()},
                "statuses": {str(k): v for k, v in sorted(self.traffic.statuses.items())},
                "errors": self.error_count}


Checker = Callable[[Request, dict[str, Any]], str | None]


def send_burst(url: str, requests: list[Request], check: Checker, concurrency: int = 16) -> Burst:
    """POST every request, `concurrency` at a time, each worker on its own keep-alive connection; check each 200.

    http.client rather than httpx: on two cores the load generator competes with the server, and
    httpx spends about three times the CPU per request (1.1 ms against 0.35 ms measured here).
    """
    burst = Burst()
    parsed = urlsplit(url)
    local = threading.local()
    connections: list[http.client.HTTPConnection] = []
    lock = threading.Lock()

    def connection() -> http.client.HTTPConnection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            with lock:
                connections.append(conn)
        return conn

    def one(req: Request) -> tuple[int | None, float, int, str | None]:
        conn = connection()
        started = time.perf_counter()
        try:
            conn.request("POST", req.path, body=req.body,
                         headers={"content-type": "application/json", "x-request-id": req.request_id})
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # the next request on this worker reconnects
            return None, 0.0, 0, f"{req.request_id}: {type(exc).__name__}: {exc}"
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            return response.status, elapsed, 0, f"{req.request_id}: {response.status} {body[:200]!r}"
        return 200, elapsed, len(req.rows), check(req, json.loads(body))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for status, elapsed, rows, problem in pool.map(one, requests):
            if status is None:
                burst.transport_errors += 1
            else:
                burst.traffic.statuses[status] += 1
                burst.traffic.latencies_ms.append(elapsed)
            if problem:
                burst.error_count += 1
                if len(burst.errors) < 5:
                    burst.errors.append(problem)
            else:
                burst.traffic.rows_predicted += rows
    burst.seconds = time.perf_counter() - started
    for conn in connections:
        conn.close()
    return burst
