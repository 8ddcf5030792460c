"""A bounded burst against the API served by uvicorn on loopback: no errors, every answer right, figures printed.

The request count defaults to 10,000 (RELIABILITY_LOAD_REQUESTS overrides it); latency percentiles and
requests/s are printed (pytest -s) and written to a JSON file, never asserted: speed is for bench/.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3
import pytest

from demo.emulator import embedded_aws
from demo.local_server import prediction_api
from tests.reliability.reliability_helpers import (
    STREAM,
    Request,
    captured_lines,
    firehose_to_s3,
    log_entries,
    send_burst,
)

REQUESTS = int(os.environ.get("RELIABILITY_LOAD_REQUESTS", "10000"))
CONCURRENCY = 16
MAX_BATCH = 64
CLOSE = 1e-6  # a row's probabilities alone and within a batch agree to float rounding


def mixed_requests(n: int, rows: list[dict[str, float]], prefix: str) -> list[Request]:
    """Three single-row requests to one batch of 2 to 32 rows, cycling through the data set (deterministic)."""
    requests, n_rows = [], len(rows)
    for i in range(n):
        if i % 4 == 3:
            size = 2 + (i // 4) % 31
            picked = [(i * 7 + k) % n_rows for k in range(size)]
            body = json.dumps({"instances": [rows[j] for j in picked]}).encode()
            requests.append(Request("/predict/batch", body, f"{prefix}-{i}", picked))
        else:
            picked = [i % n_rows]
            requests.append(Request("/predict", json.dumps({"features": rows[picked[0]]}).encode(), f"{prefix}-{i}", picked))
    return requests


def reference_answers(url: str, rows: list[dict[str, float]]) -> list[tuple[str, dict[str, float]]]:
    """(label, probabilities) of every row, asked sequentially before the burst."""
    import httpx

    answers = []
    for start in range(0, len(rows), MAX_BATCH):
        body = httpx.post(f"{url}/predict/batch", json={"instances": rows[start:start + MAX_BATCH]}, timeout=30).json()
        answers += list(zip(body["predictions"], body["probabilities"]))
    return answers


def answer_checker(reference: list[tuple[str, dict[str, float]]], version: str):
    """Each answer must be the one for its own rows (no cross-talk between concurrent requests) and well formed."""
    def differs(row: int, label: Any, probabilities: Any) -> bool:
        want_label, want = reference[row]
        return (label != want_label or not isinstance(probabilities, dict) or probabilities.keys() != want.keys()
                or any(abs(probabilities[k] - want[k]) > CLOSE for k in want))

    def check(req: Request, body: dict[str, Any]) -> str | None:
        if body.get("request_id") != req.request_id or body.get("model_version") != version:
            return f"{req.request_id}: answered as {body.get('request_id')!r} version {body.get('model_version')!r}"
        if req.path == "/predict":
            if differs(req.rows[0], body.get("prediction"), body.get("probabilities")):
                return f"{req.request_id}: wrong answer {body}"
            return None
        predictions, probabilities = body.get("predictions", []), body.get("probabilities", [])
        if body.get("count") != len(req.rows) or len(predictions) != len(req.rows) or len(probabilities) != len(req.rows):
            return f"{req.request_id}: {len(req.rows)} rows sent, count {body.get('count')}, {len(predictions)} predictions"
        bad = [k for k, row in enumerate(req.rows) if differs(row, predictions[k], probabilities[k])]
        return f"{req.request_id}: wrong answers for rows {bad}" if bad else None

    return check


def report(name: str, figures: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2))
    latency = figures["latency_ms"]
    print(f"\n{name}: {figures['requests']} requests ({figures['rows_predicted']} rows) at {CONCURRENCY} concurrent "
          f"in {figures['seconds']:.1f} s = {figures['requests_per_second']} requests/s; latency p50 "
          f"{latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms, p99 {latency['p99']:.1f} ms; figures in {path}")
    return path


@pytest.mark.slow
def test_burst_of_mixed_requests_all_answered_right(breast_cancer_dir, bc_rows, tmp_path_factory):
    out = tmp_path_factory.mktemp("load")
    env = {"MODEL_DIR": str(breast_cancer_dir), "MAX_BATCH": str(MAX_BATCH), "MODEL_VERSION": "7",
           "MODEL_WORK_DIR": str(out)}
    with prediction_api(env, out / "uvicorn.log") as url:
        reference = reference_answers(url, bc_rows)
        requests = mixed_requests(REQUESTS, bc_rows, "load")
        burst = send_burst(url, requests, answer_checker(reference, "7"), CONCURRENCY)
    figures = burst.figures() | {"concurrency": CONCURRENCY, "capture": "off"}
    report("load-burst", figures, out)
    assert burst.transport_errors == 0 and burst.error_count == 0, burst.errors
    assert dict(burst.traffic.statuses) == {200: REQUESTS}
    assert burst.traffic.rows_predicted == sum(len(r.rows) for r in requests)


@pytest.mark.slow
def test_burst_with_capture_loses_and_repeats_no_record(breast_cancer_dir, bc_rows, tmp_path_factory):
    """Capture on, to a Firehose stream of the embedded AWS: each predicted row lands in S3 once, or is counted dropped."""
    out = tmp_path_factory.mktemp("load-capture")
    requests = mixed_requests(256, bc_rows, "capture")
    with embedded_aws():
        s3 = boto3.client("s3")
        firehose_to_s3(s3, boto3.client("firehose"))
        env = {"MODEL_DIR": str(breast_cancer_dir), "MAX_BATCH": str(MAX_BATCH), "MODEL_VERSION": "7",
               "CAPTURE_STREAM": STREAM, "MODEL_WORK_DIR": str(out)}
        with prediction_api(env, out / "uvicorn.log") as url:
            burst = send_burst(url, requests, lambda req, body: None, CONCURRENCY)
        # The server has exited: uvicorn's graceful shutdown ran every pending capture task first.
        lines = captured_lines(s3)
    figures = burst.figures() | {"concurrency": CONCURRENCY, "capture": "firehose (moto server)"}
    report("load-burst-capture", figures, out)
    assert burst.error_count == 0 and dict(burst.traffic.statuses) == {200: len(requests)}, burst.errors

    by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        by_request[line["request_id"]].append(line["features"])
    dropped = sum(entry["dropped"] for entry in log_entries(out / "uvicorn.log", "capture records dropped"))
    missing = 0
    for req in requests:
        got = by_request.pop(req.request_id, [])
        if got:  # a request's lines travel in one Firehose record: all of them or none
            assert got == [bc_rows[i] for i in req.rows], req.request_id
        else:
            missing += len(req.rows)
    assert not by_request, f"capture records of requests never sent: {sorted(by_request)[:5]}"
    assert len(lines) + missing == burst.traffic.rows_predicted
    # Every row missing from S3 was counted. The count may be higher: a PutRecordBatch that timed out
    # (1 s read timeout, no retry) may still have been delivered, and is counted as dropped all the same.
    assert missing <= dropped, f"{missing} rows not captured, only {dropped} counted as dropped"
    print(f"capture: {len(lines)} records in S3 of {burst.traffic.rows_predicted} rows; {missing} missing, "
          f"{dropped} counted as dropped")
