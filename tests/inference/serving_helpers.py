"""Helpers for the serving tests: API Gateway events, invoking the handler, reloading the app, artifact copies."""
from __future__ import annotations

import base64
import contextlib
import copy
import http.server
import importlib
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import artifact

EVENTS = Path(__file__).resolve().parent.parent / "events"
EVENT_FILES = {"v1": "serving_rest_v1.json", "v2": "serving_http_v2.json"}
VERSIONS = tuple(EVENT_FILES)


def copy_artifact(src: Path, dest: Path, *, drop_onnx: bool = False, library_versions: dict[str, str] | None = None) -> Path:
    """A modified copy of an artifact, re-manifested (a legitimate artifact of another shape)."""
    shutil.copytree(src, dest)
    if drop_onnx:
        (dest / artifact.MODEL_ONNX).unlink()
    if library_versions is not None:
        meta = artifact.read_metadata(dest)
        meta.library_versions.update(library_versions)
        (dest / artifact.METADATA).write_text(meta.model_dump_json(indent=2))
    artifact.write_manifest(dest)
    return dest


# ------------------------------------------------------------------ the app under a given environment


def load_app(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """inference.app imported afresh under the given environment (its model loads at import)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import inference.app

    return importlib.reload(inference.app)


# ------------------------------------------------------------------ API Gateway events


def api_event(version: str, method: str, path: str, body: Any = None, *, raw: bytes | str | None = None,
              base64_body: bool = False, request_id: str | None = None) -> dict:
    """A real API Gateway event (REST payload v1 or HTTP API payload v2) with the given request."""
    event = copy.deepcopy(json.loads((EVENTS / EVENT_FILES[version]).read_text()))
    text = raw if raw is not None else (json.dumps(body) if body is not None else None)
    if isinstance(text, bytes):  # bytes that are not text travel base64-encoded, as API Gateway sends them
        base64_body = True
    if base64_body and text is not None:
        text = base64.b64encode(text if isinstance(text, bytes) else text.encode()).decode()
    event["body"] = text
    event["isBase64Encoded"] = base64_body
    if version == "v1":
        event["resource"] = event["path"] = event["requestContext"]["resourcePath"] = path
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
        event["requestContext"]["path"] = "/prod" + path
        if request_id:
            event["requestContext"]["requestId"] = request_id
    else:
        event["rawPath"] = path
        event["requestContext"]["http"]["method"] = method
        event["requestContext"]["http"]["path"] = path
        event["headers"].pop("content-length", None)
        if request_id:
            event["requestContext"]["requestId"] = request_id
    return event



def repeats_an_id(case: Any) -> bool:
    """A generated batch (or array of labels) where two items have the same id: the one rule JSON Schema cannot state
    (uniqueItems compares whole items), so a schema-valid body that breaks it is left out of the positive fuzz runs;
    its 422 is tests/inference/test_prediction_ids.py's (test_feedback.py's for labels)."""
    if isinstance(case.body, list):  # POST /feedback's array of {"id", "label"}
        ids = [item.get("id") for item in case.body if isinstance(item, dict)]
        given = [i for i in ids if isinstance(i, str)]
        return len(set(given)) < len(given)
    instances = case.body.get("instances") if isinstance(case.body, dict) else None
    if not isinstance(instances, list):
        return False
    ids = [item.get("id") for item in instances if isinstance(item, dict) and isinstance(item.get("features"), dict)]
    given = [i for i in ids if isinstance(i, str)]
    return len(set(given)) < len(given)


def invoke(module: Any, event: dict, context: Any) -> tuple[int, Any]:
    """Call the Lambda handler; (status, parsed JSON body)."""
    response = module.handler(event, context)
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body) if body else None


class StubHandler(http.server.BaseHTTPRequestHandler):
    """A loopback stub's request handler: silent, and one call sends a whole answer."""

    def reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def loopback_server(handler: type[http.server.BaseHTTPRequestHandler], **state: Any) -> Iterator[http.server.HTTPServer]:
    """An HTTP server on 127.0.0.1 answering with `handler` on a thread; `state` becomes attributes it can read."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for name, value in state.items():
        setattr(server, name, value)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def firehose_into_s3(stream: str, bucket: str, prefix: str) -> Any:
    """Inside mock_aws: a bucket and a DirectPut stream delivering into it under prefix (as demo/local_aws.py makes
    the capture and labels streams); the S3 client."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName=stream, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": prefix})
    return s3
