"""Real HTTP traffic against the local API: single and batch predictions, some malformed, bounded in count."""
from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import numpy as np


@dataclass
class TrafficResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    rows_predicted: int = 0
    # Per request, in the order sent: the prediction ids the API answered with (none for a refused request),
    # which a label refers to later.
    ids: list[list[str]] = field(default_factory=list)

    def percentiles(self) -> dict[str, float]:
        if not self.latencies_ms:
            return {}
        values = np.percentile(self.latencies_ms, [50, 95, 99])
        return {"p50": float(values[0]), "p95": float(values[1]), "p99": float(values[2])}

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def client_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if 400 <= status < 500)


def _send(client: httpx.Client, path: str, body: bytes) -> tuple[int, float, list[str]]:
    started = time.perf_counter()
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    elapsed = (time.perf_counter() - started) * 1000
    ids = []
    if response.status_code == 200:
        payload = response.json()
        ids = payload["ids"] if "ids" in payload else [payload["id"]]
    return response.status_code, elapsed, ids


def send(url: str, requests: list[tuple[str, bytes]], concurrency: int = 8) -> TrafficResult:
    """POST each (path, body) with `concurrency` workers; one connection pool, loopback only."""
    result = TrafficResult()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=url, timeout=30, limits=limits) as client, \
            ThreadPoolExecutor(max_workers=concurrency) as pool:
        for status, elapsed, ids in pool.map(lambda req: _send(client, *req), requests):
            result.statuses[status] += 1
            result.latencies_ms.append(elapsed)
            result.rows_predicted += len(ids)
            result.ids.append(ids)
    return result


_client_ids = itertools.count()  # distinct across requests too, as a client's order numbers would be


def _client_id() -> str:
    return f"demo-{next(_client_ids):06d}"


def single_requests(rows: list[dict]) -> list[tuple[str, bytes]]:
    """Every other request with the client's own prediction id, the rest left to the API's default."""
    return [("/predict", json.dumps({"id": _client_id(), "features": row} if k % 2 else {"features": row}).encode())
            for k, row in enumerate(rows)]


def batch_requests(rows: list[dict], size: int) -> list[tuple[str, bytes]]:
    """Every other batch as {"id", "features"} pairs, the rest as plain rows (what clients sent before ids)."""
    batches = [rows[i:i + size] for i in range(0, len(rows), size)]
    return [("/predict/batch", json.dumps({"instances": [{"id": _client_id(), "features": row} for row in batch]
                                           if k % 2 else batch}).encode())
            for k, batch in enumerate(batches)]


def malformed_requests(example: dict) -> list[tuple[str, bytes]]:
    """One of each kind of bad input the API must answer with a 4xx naming the problem."""
    # A numeric feature where there is one: a string in a categorical feature is an unseen category, served.
    name = next((k for k, v in example.items() if type(v) is float), next(iter(example)))
    wrong_type = "a string" if type(example[name]) is float else True
    missing = {k: v for k, v in example.items() if k != name}
    return [
        ("/predict", b"{not json"),
        ("/predict", json.dumps({"features": missing}).encode()),
        ("/predict", json.dumps({"features": example | {"unknown_feature": 1.0}}).encode()),
        ("/predict", json.dumps({"features": example | {name: wrong_type}}).encode()),
        ("/predict", json.dumps({"features": example | {name: 1e400}}).encode().replace(b"Infinity", b"1e400")),
        ("/predict", json.dumps({"rows": [example]}).encode()),
        ("/predict/batch", json.dumps({"instances": []}).encode()),
        ("/predict/batch", json.dumps({"instances": [example, missing]}).encode()),
        ("/predict/batch", json.dumps({"instances": [{"id": "twice", "features": example}] * 2}).encode()),
    ]


def send_labels(url: str, labels: list[dict], per_request: int = 500) -> Counter:
    """POST /feedback the {"id", "label"} records in requests of `per_request`; the statuses answered."""
    statuses: Counter = Counter()
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(0, len(labels), per_request):
            response = client.post("/feedback", json=labels[i:i + per_request])
            statuses[response.status_code] += 1
    return statuses


def get_json(url: str, path: str) -> dict:
    response = httpx.get(f"{url}{path}", timeout=10)
    return {"status_code": response.status_code, **response.json()}
