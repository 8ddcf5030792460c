"""The loop's steps in order, shared by `make demo` (which prints them) and the end-to-end test (which asserts each hand-over)."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from contracts import names
from contracts.env import Var
from contracts.events import retraining_input
from contracts.s3_uri import split_s3_uri
from contracts.schema import FeatureSchema, FeatureType
from demo import traffic
from demo.data import DemoData, Shift, derived_drift
from demo.lambda_context import LocalContext
from demo.local_alarms import DriftAlarm, RetrainingRule, publish_emf
from demo.local_aws import LocalDeployment, scheduled_event
from demo.local_batch import BatchRun, batch_trigger, upload_and_score
from demo.local_pipeline import PipelineRun, run_pipeline
from demo.local_server import prediction_api
from training import registry
from training.dataset import Table, infer_schema, is_missing, parse_float, read_csv
from training.registry import ModelVersion

SEGMENT_ROWS = 800  # above the drift check's 500-row minimum
BATCH_SIZE = 100
SINGLES = 200
BATCH_JOB = "nightly"
# A quiet stretch: a few dozen predictions an hour, each hour below the drift check's 500-row minimum, so
# each scheduled run carries its counts over until the pool holds enough for a verdict.
LOW_TRAFFIC_HOURS = 8
LOW_TRAFFIC_ROWS = 64  # per simulated hour, in batches of 8: 8 hours pool 512 rows
BATCH_ROWS = 20_000  # a file of several parts (the demo's parts are 1 MB)
# Rows of the batch file given a value the model refuses, in a numeric column: to the errors file, not lost.
REFUSED_BATCH_ROWS = (17, 4242, 15000)

Step = Callable[[str], contextlib.AbstractContextManager]


class CandidateRejected(RuntimeError):
    """The first model failed the evaluation gate: there is nothing to approve, serve or monitor."""


@dataclass
class LoopResult:
    deployment: LocalDeployment
    data: DemoData
    drift: tuple[Shift, ...]
    first_run: PipelineRun
    approved: ModelVersion
    live: ModelVersion
    health: dict
    normal_traffic: traffic.TrafficResult
    first_check: dict
    low_traffic_checks: list[dict]
    drifted_traffic: traffic.TrafficResult
    second_check: dict
    captured_objects: int
    captured_lines: int
    html_report: Path | None
    alarm_states: list[str]
    retraining_input: dict | None
    retraining: PipelineRun | None
    batch: BatchRun | None = None
    batch_refused_on_purpose: int = 0
    versions: list[ModelVersion] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> str:
        """Every hand-over, for the end-to-end test and for anyone scripting the demo."""
        def default(value: Any) -> Any:
            if isinstance(value, traffic.TrafficResult):  # before asdict, which mangles its Counter
                return {"statuses": dict(value.statuses), "rows_predicted": value.rows_predicted,
                        "percentiles_ms": value.percentiles()}
            if hasattr(value, "model_dump"):
                return value.model_dump()
            if is_dataclass(value):
                return asdict(value)
            return str(value)

        body = {f.name: getattr(self, f.name) for f in fields(self)}
        return json.dumps(body, default=default, indent=2)


def feature_rows(table: Table, schema: FeatureSchema) -> list[dict[str, float | str | None]]:
    """The CSV's rows as a client sends them: numbers, category strings, null for a missing value."""

    def value(text: str, numeric: bool) -> float | str | None:
        if is_missing(text):
            return None
        return parse_float(text) if numeric else text.strip()

    columns = [(f.name, table.column(f.name), f.type is FeatureType.NUMERIC) for f in schema.features]
    return [{name: value(values[i], numeric) for name, values, numeric in columns} for i in range(table.n_rows)]


def drifted(rows: list[dict], segment: tuple[Shift, ...]) -> list[dict]:
    return [row | {shift.feature: shift.apply(row[shift.feature]) for shift in segment} for row in rows]


def segment_requests(rows: list[dict], rng: random.Random) -> list[tuple[str, bytes]]:
    """SINGLES single predictions, the rest in batches, plus one of each malformed request."""
    sample = [rng.choice(rows) for _ in range(SEGMENT_ROWS)]
    requests = traffic.single_requests(sample[:SINGLES]) + traffic.batch_requests(sample[SINGLES:], BATCH_SIZE)
    requests += traffic.malformed_requests(sample[0])
    rng.shuffle(requests)
    return requests


def refused_cells(schema: FeatureSchema) -> tuple[int, tuple[str, ...]] | None:
    """A numeric column and values the model refuses there: missing ones only where training had none;
    None when no column is numeric (an unseen category is scored, with a warning)."""
    for j, feature in enumerate(schema.features):
        if feature.type is FeatureType.NUMERIC:
            return j, ("not-a-number", "1e999", "-1e999") if feature.missing_rate > 0 else ("n/a", "", "1e999")
    return None


def batch_file(rows: list[dict], schema: FeatureSchema, rng: random.Random) -> tuple[bytes, int]:
    """BATCH_ROWS customers with an id column, REFUSED_BATCH_ROWS of them malformed; and how many are."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", *schema.names])
    refused = refused_cells(schema)
    for i in range(BATCH_ROWS):
        values = ["" if v is None else repr(v) if isinstance(v, float) else v for v in rng.choice(rows).values()]
        if refused and i in REFUSED_BATCH_ROWS:
            column, bad = refused
            values[column] = bad[REFUSED_BATCH_ROWS.index(i)]
        writer.writerow([f"customer-{i:05d}", *values])
    return out.getvalue().encode(), len(REFUSED_BATCH_ROWS) if refused else 0


def drift_check(deployment: LocalDeployment, live: ModelVersion) -> dict:
    """The drift-check handler on a scheduled event, with the function's environment; its EMF goes to CloudWatch."""
    os.environ.update(deployment.drift_env(live))
    from drift_check import app as drift_app  # its clients are created at import, after the endpoint is set

    event = scheduled_event(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # Lambda's stdout goes to CloudWatch Logs, not the terminal
        result = drift_app.handler(event, LocalContext("drift-check"))
    result["metrics_published"] = publish_emf(printed.getvalue())
    return result


def low_traffic_period(deployment: LocalDeployment, live: ModelVersion, url: str, rows: list[dict],
                       rng: random.Random, captured: int) -> tuple[list[dict], int]:
    """LOW_TRAFFIC_HOURS simulated hours of LOW_TRAFFIC_ROWS predictions, a scheduled drift check after each;
    returns the checks and the capture lines landed so far."""
    checks = []
    for hour in range(1, LOW_TRAFFIC_HOURS + 1):
        sample = [rng.choice(rows) for _ in range(LOW_TRAFFIC_ROWS)]
        captured += traffic.send(url, traffic.batch_requests(sample, 8)).rows_predicted
        wait_for_capture(deployment.capture_bucket, deployment.capture_prefix, captured)
        check = drift_check(deployment, live)
        checks.append(check)
        print(f"  hour {hour}: {LOW_TRAFFIC_ROWS} predictions → {check['status']}, pool {check.get('pool')}: "
              f"{check.get('rows_checked')} rows over {check.get('pooled_runs')} run(s)", flush=True)
    return checks, captured


def count_captured(bucket: str, prefix: str, known: dict[str, int] | None = None) -> tuple[int, int]:
    """(objects, JSON lines) under the capture prefix: every predicted row should be one line.

    known: lines per key already counted (capture objects never change), filled in as objects are read.
    """
    s3 = boto3.client("s3")
    known = {} if known is None else known
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"] not in known:
                known[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().count(b"\n")
    return len(known), sum(known.values())


def wait_for_capture(bucket: str, prefix: str, lines: int, timeout: float = 30.0) -> int:
    """Wait until `lines` capture lines have landed (uvicorn sends capture after the response, Lambda before it)."""
    deadline, known = time.monotonic() + timeout, {}
    while (landed := count_captured(bucket, prefix, known)[1]) < lines and time.monotonic() < deadline:
        time.sleep(0.1)
    return landed


def copy_html(report_uri: str, dest: Path) -> Path | None:
    """The HTML page written beside the JSON report."""
    bucket, key = split_s3_uri(report_uri)
    html_key = key.removesuffix(".json") + ".html"
    with contextlib.suppress(Exception):
        boto3.client("s3").download_file(bucket, html_key, str(dest))
        return dest
    return None


def run_loop(*, data: DemoData, workdir: Path, step: Step, rng: random.Random,
             choice: dict | None = None) -> LoopResult:
    model_name, target, categorical = data.model_name, data.target, list(data.categorical)
    data_key = names.training_data_key(model_name)
    deployment = LocalDeployment(model_name)
    with step("create the buckets and the capture stream; upload the training data"):
        deployment.create()
        alarm = DriftAlarm(model_name)
        rule = RetrainingRule()
        rule.create(alarm.create())
        trigger = batch_trigger(deployment)
        os.environ.update(deployment.pipeline_env())
        boto3.client("s3").upload_file(str(data.csv_path), deployment.data_bucket, data_key)
    data_uri = f"s3://{deployment.data_bucket}/{data_key}"

    with step("training pipeline: validate → train (SageMaker container contract) → evaluate → register"):
        first = run_pipeline(model_name=model_name, run_id="run-1", data_uri=data_uri, target=target, workdir=workdir,
                             categorical=categorical, task=data.task or "", choice=choice)
        print(f"  validation: {first.validation['rows']} rows, task {first.validation['task']}; "
              f"model {first.model_data_url}", flush=True)
        print(f"  evaluation: {json.dumps(first.evaluation['candidate'])}; {first.evaluation['reason']}", flush=True)
        print(f"  registered: {first.registration}", flush=True)
    if not first.registered:
        raise CandidateRejected(f"the first candidate was not registered: {first.evaluation['reason']}")

    sagemaker = boto3.client("sagemaker")
    version = first.registration["model_package_version"]
    with step(f"approve v{version} in the Model Registry and promote it"):
        approved = registry.approve(sagemaker, model_name, version, "approved by make demo")
        live = registry.resolve(sagemaker, model_name, version)
        print(f"  the function's configuration now names v{live.version}, sha256 {live.sha256[:12]}…", flush=True)

    table = read_csv(data.csv_path)
    schema = infer_schema(table, target, set(categorical))
    rows = feature_rows(table, schema)
    segment = data.drift or derived_drift(schema, rows)
    with prediction_api(deployment.serving_env(live), workdir / "api.log") as url:
        health = traffic.get_json(url, "/health")
        print(f"  API on {url}: {health}", flush=True)
        with step(f"send normal traffic ({SEGMENT_ROWS} rows: single, batch and malformed requests)"):
            normal = traffic.send(url, segment_requests(rows, rng))
            wait_for_capture(deployment.capture_bucket, deployment.capture_prefix, normal.rows_predicted)
        alarm_states = []
        with step("drift check on a scheduled event (normal traffic)"):
            first_check = drift_check(deployment, live)
            alarm_states.append(alarm.evaluate(datetime.now(UTC)))
            print(f"  {first_check['status']}: {first_check.get('rows_checked')} rows; "
                  f"{first_check['metrics_published']} metrics published; drift alarm {alarm_states[-1]}", flush=True)
        with step(f"low traffic: {LOW_TRAFFIC_HOURS} simulated hours of {LOW_TRAFFIC_ROWS} predictions, a drift check "
                  "after each (pooled until 500 rows)"):
            low_traffic_checks, captured = low_traffic_period(deployment, live, url, rows, rng, normal.rows_predicted)
        with step(f"send a drifted segment ({', '.join(map(str, segment))})"):
            drifted_traffic = traffic.send(url, segment_requests(drifted(rows, segment), rng))
            wait_for_capture(deployment.capture_bucket, deployment.capture_prefix,
                             captured + drifted_traffic.rows_predicted)
    with step("drift check on a scheduled event (drifted traffic)"):
        second_check = drift_check(deployment, live)
        now = datetime.now(UTC)
        alarm_states.append(alarm.evaluate(now))
        print(f"  {second_check['status']}: drifted {second_check.get('drifted_features')}; "
              f"drift alarm {alarm_states[-1]}", flush=True)

    retraining = started = None
    delivered = rule.deliver(alarm.state_change_event(alarm_states[-1], now))
    if delivered:
        print(f"  EventBridge matched the alarm's state change ({delivered[0]['detail-type']}, "
              f"{delivered[0]['detail']['state']['value']}) to the retraining rule", flush=True)
        started = retraining_input(model_name=model_name, data_uri=data_uri, target=target)
        # One process plays every function here, each with its own environment in the cloud: the drift check's
        # MIN_ROWS (captured rows per verdict) must not become the validate step's (training rows).
        os.environ.pop(Var.MIN_ROWS, None)
        os.environ.update(deployment.pipeline_env())
        with step("retraining: a pipeline run, the new candidate evaluated against production"):
            # The categorical columns and task come from the state machine's configured defaults in the cloud.
            retraining = run_pipeline(model_name=started["model_name"], run_id="run-2", data_uri=started["data_uri"],
                                      target=started["target"], workdir=workdir, categorical=categorical,
                                      task=data.task or "", choice=choice)
    with step(f"batch job: a {BATCH_ROWS:,}-row file lands in batch/{model_name}/input/{BATCH_JOB}/ → plan → "
              "Distributed Map children → summary"):
        batch_body, refused_on_purpose = batch_file(rows, schema, rng)
        batch = upload_and_score(deployment, live, trigger, job_id=BATCH_JOB, file_name="customers.csv",
                                 data=batch_body)
        s = batch.summary
        print(f"  trigger matched: {batch.matched}; {batch.plan.get('parts')} parts in {batch.children} children; "
              f"{s.get('status')}: {s.get('rows')} rows, {s.get('scored')} scored, {s.get('errors')} refused "
              f"(model v{s.get('model', {}).get('version')}, {s.get('rows_per_second')} rows/s)", flush=True)
    captured_objects, captured_lines = count_captured(deployment.capture_bucket, deployment.capture_prefix)
    return LoopResult(
        deployment=deployment, data=data, drift=segment, first_run=first, approved=approved, live=live, health=health,
        normal_traffic=normal, first_check=first_check, low_traffic_checks=low_traffic_checks,
        drifted_traffic=drifted_traffic, second_check=second_check,
        captured_objects=captured_objects, captured_lines=captured_lines,
        html_report=copy_html(second_check["report_uri"], workdir / "drift-report.html") if second_check.get("report_uri") else None,
        alarm_states=alarm_states, retraining_input=started, retraining=retraining, batch=batch,
        batch_refused_on_purpose=refused_on_purpose, versions=registry.list_versions(sagemaker, model_name),
    )


