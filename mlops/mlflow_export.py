"""Copy run records into an MLflow tracking server through its REST API (no mlflow package needed).

Each record becomes one MLflow run in an experiment (default: the model's name): hyperparameters
and data as params, held-out metrics (and production's, prefixed `production_`) as metrics, the
gate decision, registry version and artifact as tags. The tag `mlops.run` (<model>/<run id>) is
set last; records whose tag is already in the experiment are skipped, so exporting again is safe.

Authentication, as the MLflow client reads it: MLFLOW_TRACKING_TOKEN (bearer) or
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (basic). A SageMaker managed tracking server
is addressed by its ARN (arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>):
requests go to https://<region>.experiments.sagemaker.aws, signed with SigV4 with the AWS credentials
boto3 finds, as the sagemaker-mlflow plugin does.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.run_record import RunRecord
from mlops.runs_view import flatten

API = "/api/2.0/mlflow/"
RUN_TAG = "mlops.run"
SAGEMAKER_SERVICE = "sagemaker-mlflow"
# The header that routes a request to the resource, by the ARN's resource type (as the sagemaker-mlflow plugin sends it).
SAGEMAKER_ARN_HEADERS = {"mlflow-tracking-server": "x-mlflow-sm-tracking-server-arn", "mlflow-app": "x-sm-mlflow-app-arn"}
# MLflow's limits per log-batch request and per param value.
MAX_PARAMS, MAX_METRICS, MAX_TAGS, MAX_VALUE = 100, 1000, 100, 6000


class MlflowError(Exception):
    """The tracking server refused a request or cannot be reached; the message names the endpoint."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the server answered


def run_key(record: RunRecord) -> str:
    return f"{record.model_name}/{record.run_id}"


def millis(stamp: str | None) -> int | None:
    """Milliseconds since the epoch of an ISO 8601 time (MLflow's timestamps); None when absent or unreadable."""
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000) if stamp else None
    except ValueError:
        return None


# ------------------------------------------------------------------ what one record becomes (pure)


def params_of(record: RunRecord) -> dict[str, str]:
    values: dict[str, Any] = {
        "algorithm": record.algorithm, "task": record.task, "data_uri": record.data.uri, "data_sha256": record.data.sha256,
        **{f"rows_{part}": n for part, n in record.data.rows.items()},
        "model_version": record.model_version, "artifact_sha256": record.artifact_sha256,
        "search_candidates": len(record.search_candidates) if record.search_candidates else None,
        **flatten(record.hyperparameters),
    }
    return {k: (v if isinstance(v, str) else json.dumps(v, default=str))[:MAX_VALUE]
            for k, v in values.items() if v is not None}


def metrics_of(record: RunRecord) -> dict[str, float]:
    gate = record.gate
    metrics = dict(record.metrics)
    if gate:
        metrics |= {f"production_{k}": v for k, v in (gate.production_metrics or {}).items()}
        if gate.threshold is not None:
            metrics["gate_threshold"] = gate.threshold
    return metrics


def tags_of(record: RunRecord) -> dict[str, str]:
    gate, registration = record.gate, record.registration
    reason = gate.reason if gate else (record.error or "")
    tags = {
        "mlops.model_name": record.model_name, "mlops.run_id": record.run_id, "mlops.status": record.status,
        "mlops.gate_reason": reason, "mlflow.note.content": f"{record.status}: {reason}",
        "mlops.artifact_uri": record.artifact_uri, "mlops.training_job_name": record.training_job_name,
        "mlops.evaluation_report": gate.report_uri if gate else None,
        "mlops.production_version": str(gate.production_version) if gate and gate.production_version else None,
        "mlops.registry_version": str(registration.version) if registration else None,
        "mlops.model_package_arn": registration.arn if registration else None,
        "mlops.approval_status": registration.approval_status if registration else None,
    }
    return {k: v[:MAX_VALUE] for k, v in tags.items() if v}


def _pairs(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in values.items()]


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


# ------------------------------------------------------------------ the REST client


@dataclass
class Client:
    """GET/POST JSON to one tracking server (urllib), with its auth headers or SigV4 signing."""

    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    sign: Callable[[str, str, bytes, dict[str, str]], dict[str, str]] | None = None  # SigV4 for SageMaker
    timeout: float = 30.0

    @classmethod
    def from_uri(cls, uri: str, env: Mapping[str, str] | None = None) -> Client:
        env = os.environ if env is None else env
        if uri.startswith("arn:"):
            return _sagemaker_client(uri)
        if not uri.startswith(("http://", "https://")):
            raise MlflowError(f"--mlflow {uri!r}: give the tracking server's http(s):// URL or its SageMaker ARN")
        headers = {}
        if env.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
        elif env.get("MLFLOW_TRACKING_USERNAME"):
            pair = f"{env['MLFLOW_TRACKING_USERNAME']}:{env.get('MLFLOW_TRACKING_PASSWORD', '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return cls(uri.rstrip("/"), headers)

    def call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}{API}{endpoint}"
        data = b""
        if method == "GET" and body:
            url += "?" + urllib.parse.urlencode(body)
        elif body is not None:
            data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **self.headers}
        if self.sign:
            headers = self.sign(method, url, data, headers)
        request = urllib.request.Request(url, data=data or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # http(s) only: from_uri checks
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise MlflowError(f"MLflow {endpoint}: HTTP {exc.code}: {_message(exc.read())}", exc.code) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MlflowError(f"cannot reach the MLflow tracking server at {self.base_url}: {reason}") from exc


def _message(body: bytes) -> str:
    """MLflow's error message from its JSON error body, else the body's start."""
    text = body.decode(errors="replace")[:500]
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return str(parsed.get("message", text)) if isinstance(parsed, dict) else text


def _sagemaker_client(arn: str) -> Client:
    """A SageMaker managed tracking server: the regional endpoint, the ARN header, SigV4 (service sagemaker-mlflow)."""
    parts = arn.split(":")
    resource = parts[5].split("/", 1)[0] if len(parts) >= 6 else ""
    if len(parts) < 6 or parts[2] != "sagemaker" or resource not in SAGEMAKER_ARN_HEADERS:
        raise MlflowError(f"{arn!r} is not a SageMaker MLflow tracking server ARN "
                          "(arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)")
    region = parts[3]
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise MlflowError("no AWS credentials to sign the SageMaker MLflow requests with: configure them (aws configure)")

    def sign(method: str, url: str, data: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), SAGEMAKER_SERVICE, region).add_auth(request)
        return dict(request.headers.items())

    return Client(f"https://{region}.experiments.sagemaker.aws", {SAGEMAKER_ARN_HEADERS[resource]: arn}, sign=sign)


# ------------------------------------------------------------------ export


def experiment_id(client: Client, name: str) -> str:
    """The experiment's id, creating it when it does not exist."""
    try:
        return client.call("GET", "experiments/get-by-name", {"experiment_name": name})["experiment"]["experiment_id"]
    except MlflowError as exc:
        if exc.status != 404:
            raise
    return client.call("POST", "experiments/create", {"name": name})["experiment_id"]


def exported_keys(client: Client, experiment: str) -> set[str]:
    """The records already in the experiment (their mlops.run tag)."""
    keys, token = set(), None
    while True:
        body: dict[str, Any] = {"experiment_ids": [experiment], "filter": f"tags.`{RUN_TAG}` LIKE '%'",
                                "max_results": 1000, "run_view_type": "ALL"}
        page = client.call("POST", "runs/search", body | ({"page_token": token} if token else {}))
        for run in page.get("runs", []):
            keys |= {t["value"] for t in run.get("data", {}).get("tags", []) if t.get("key") == RUN_TAG}
        token = page.get("next_page_token")
        if not token:
            return keys


def export_record(client: Client, experiment: str, record: RunRecord) -> str:
    """Create one finished MLflow run from the record; its mlops.run tag is written last. Returns the run id."""
    start = millis(record.started_at) or millis(record.finished_at)
    end = millis(record.finished_at)
    created = client.call("POST", "runs/create", {"experiment_id": experiment, "run_name": record.run_id,
                                                  "start_time": start, "tags": _pairs(tags_of(record))})
    run_id = created["run"]["info"]["run_id"]
    try:
        metrics = [{"key": k, "value": v, "timestamp": end, "step": 0} for k, v in metrics_of(record).items()]
        params = _pairs(params_of(record))
        for chunk in _chunks(params, MAX_PARAMS):
            client.call("POST", "runs/log-batch", {"run_id": run_id, "params": chunk})
        for chunk in _chunks(metrics, MAX_METRICS):
            client.call("POST", "runs/log-batch", {"run_id": run_id, "metrics": chunk})
        client.call("POST", "runs/log-batch", {"run_id": run_id, "tags": [{"key": RUN_TAG, "value": run_key(record)}]})
        status = "FAILED" if record.status == "failed" else "FINISHED"
        client.call("POST", "runs/update", {"run_id": run_id, "status": status, "end_time": end})
    except MlflowError:
        # Without its mlops.run tag the next export makes it again; mark this one so it is not taken for a result.
        with contextlib.suppress(MlflowError):
            client.call("POST", "runs/update", {"run_id": run_id, "status": "KILLED", "end_time": end})
        raise
    return run_id


def export(client: Client, records: Sequence[RunRecord], experiment: str | None = None) -> dict[str, list[str]]:
    """Export the records not yet in their experiment (`experiment`, else each model's name)."""
    result: dict[str, list[str]] = {"exported": [], "skipped": []}
    by_experiment: dict[str, list[RunRecord]] = {}
    for record in records:
        by_experiment.setdefault(experiment or record.model_name, []).append(record)
    for name, group in by_experiment.items():
        exp_id = experiment_id(client, name)
        done = exported_keys(client, exp_id)
        for record in group:
            key = run_key(record)
            if key in done:
                result["skipped"].append(key)
                continue
            export_record(client, exp_id, record)
            result["exported"].append(key)
    return result
