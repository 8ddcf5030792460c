"""S3 unreachable while the function starts: it comes up, answers 503 naming the reason, and does not retry per request.

Covered elsewhere: a missing object, a hash mismatch, a tampered or incomplete tarball
(tests/inference/test_model_loader.py). Not covered there: S3 not answering at all.
"""
from __future__ import annotations

import importlib
import socket

import httpx
import pytest

from contracts import metric_names
from demo.local_server import free_port, prediction_api
from tests.inference.serving_helpers import api_event, invoke, load_app
from tests.reliability.reliability_helpers import dropping_server, emf_values, log_entries

URL = "s3://artifacts/models/breast-cancer/run-1/output/model.tar.gz"
SDK_ATTEMPTS = 2  # AWS_MAX_ATTEMPTS for the SDK's share of the download
# Lambda's init phase is cut at 10 s; a cold start that waits longer on S3 never gets to answer 503.
LAMBDA_INIT_SECONDS = 10


def test_s3_refusing_connections_serves_503_with_the_reason(bc_tarball, tmp_path):
    """uvicorn with the function's environment, boto3 pointed at a closed loopback port."""
    port = free_port()
    env = {"MODEL_DATA_URL": URL, "MODEL_SHA256": bc_tarball[1], "MODEL_WORK_DIR": str(tmp_path),
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_MAX_ATTEMPTS": str(SDK_ATTEMPTS),
           "AWS_RETRY_MODE": "standard"}
    log = tmp_path / "uvicorn.log"
    with prediction_api(env, log, timeout=30) as url, httpx.Client(base_url=url, timeout=10) as client:
        healths = [client.get("/health") for _ in range(3)]
        predict = client.post("/predict", json={"features": {"mean_radius": 1.0}})
        batch = client.post("/predict/batch", json={"instances": [{"mean_radius": 1.0}]})
        info = client.get("/model-info")
    reason = healths[0].json()["reason"]
    assert reason.startswith(f"cannot read {URL}: ") and f"127.0.0.1:{port}" in reason
    assert [(h.status_code, h.json()) for h in healths] == [(503, {"status": "unavailable", "model_loaded": False,
                                                                  "reason": reason})] * 3
    assert [(r.status_code, r.json()) for r in (predict, batch, info)] == [(503, {"detail": reason})] * 3
    refused = log_entries(log, "model refused")  # loaded once at start, never again per request
    assert [(e["level"], e["reason"]) for e in refused] == [("ERROR", reason)]


def test_s3_dropping_connections_is_tried_a_bounded_number_of_times(bc_tarball, monkeypatch, lambda_context, capsys):
    """The Lambda handler: S3 is tried at init only, a bounded number of times; every invocation is a 503."""
    importlib.import_module("inference.app")  # imported without a model first, so load_app's reload is the one load
    with dropping_server() as (endpoint, accepted):
        served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256=bc_tarball[1], AWS_ENDPOINT_URL=endpoint,
                          AWS_MAX_ATTEMPTS=str(SDK_ATTEMPTS), AWS_RETRY_MODE="standard")
        at_init = accepted[0]
        answers = [invoke(served, api_event(version, method, path, body), lambda_context)
                   for version in ("v1", "v2")
                   for method, path, body in (("GET", "/health", None), ("POST", "/predict", {"features": {}}),
                                              ("GET", "/model-info", None))]
        assert accepted[0] == at_init, "an invocation went to S3 again"
    assert 1 <= at_init <= 1 + SDK_ATTEMPTS  # the signed GET, then the SDK's attempts
    reason = answers[0][1]["reason"]
    assert reason.startswith(f"cannot read {URL}: ") and endpoint.removeprefix("http://") in reason
    assert [status for status, _ in answers] == [503] * 6
    assert all(body.get("reason", body.get("detail")) == reason for _, body in answers)
    assert emf_values(capsys.readouterr().out, metric_names.MODEL_LOAD_FAILURES) == [1.0]


def stall_budget(monkeypatch: pytest.MonkeyPatch, port: int) -> dict[int, float]:
    """Record, per connection to the port, the longest timeout its socket was given: what a stalled S3 costs it."""
    budgets: dict[int, float] = {}
    sockets: dict[int, socket.socket] = {}
    real_connect, real_settimeout = socket.socket.connect, socket.socket.settimeout

    def connect(sock, address):
        if isinstance(address, tuple) and address[1] == port:
            timeout = sock.gettimeout()
            budgets[id(sock)] = float("inf") if timeout is None else timeout  # None: waits forever
            sockets[id(sock)] = sock  # kept alive, so ids stay unique
        return real_connect(sock, address)

    def settimeout(sock, value):
        if id(sock) in budgets:
            budgets[id(sock)] = max(budgets[id(sock)], float("inf") if value is None else value)
        return real_settimeout(sock, value)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "settimeout", settimeout)
    return budgets


def test_cold_start_waits_on_a_stalled_s3_no_longer_than_lambda_init(bc_tarball, monkeypatch, lambda_context):
    """Every connection the load makes is cut at once (so this runs fast); the timeouts it set say how long a
    stall could have held it. Defaults only: no AWS_MAX_ATTEMPTS from the test."""
    importlib.import_module("inference.app")
    with dropping_server() as (endpoint, accepted):
        budgets = stall_budget(monkeypatch, int(endpoint.rsplit(":", 1)[1]))
        served = load_app(monkeypatch, MODEL_DATA_URL=URL, MODEL_SHA256=bc_tarball[1], AWS_ENDPOINT_URL=endpoint)
    assert invoke(served, api_event("v1", "GET", "/health"), lambda_context)[0] == 503
    assert accepted[0] == len(budgets) > 0
    worst = sum(budgets.values())
    print(f"\ncold start on a stalled S3: {len(budgets)} connections, up to {worst:.0f} s")
    assert worst <= LAMBDA_INIT_SECONDS
