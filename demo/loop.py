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
from contracts.events import QUALITY_TRIGGER, retraining_input
from contracts.promotions import record_promotion
from contracts.s3_uri import split_s3_uri
from contracts.schema import FeatureSchema, FeatureType
from demo import traffic
from demo.data import DemoData, Shift, concept_drift, derived_drift
from demo.labels import Delivery, Segment, deliver, labels_for, relabelled
from demo.lambda_context import LocalContext
from demo.local_alarms import RetrainingRule, VerdictAlarm, publish_emf, quality_alarm
from demo.local_aws import LocalDeployment, scheduled_event
from demo.local_batch import BatchRun, batch_trigger, upload_and_score
from demo.local_pipeline import PipelineRun, build_env, run_pipeline
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
    concept: str
    first_labels: Delivery
    first_quality: dict
    second_labels: Delivery
    second_quality: dict
    quality_rerun: dict
    quality_states: list[str]
    quality_html: Path | None
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


def segment_requests(rows: list[dict], truths: list[str], rng: random.Random) -> Segment:
    """SINGLES single predictions, the rest in batches, plus one of each malformed request; with each row's label."""
    picks = [rng.randrange(len(rows)) for _ in range(SEGMENT_ROWS)]
    sample, labels = [rows[i] for i in picks], [truths[i] for i in picks]
    segment = Segment()
    segment.add(traffic.single_requests(sample[:SINGLES]), [[label] for label in labels[:SINGLES]])
    segment.add(traffic.batch_requests(sample[SINGLES:], BATCH_SIZE),
                [labels[i:i + BATCH_SIZE] for i in range(SINGLES, SEGMENT_ROWS, BATCH_SIZE)])
    malformed = traffic.malformed_requests(sample[0])
    segment.add(malformed, [[] for _ in malformed])
    return segment.shuffled(rng)


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


def scheduled(handler: Callable[[dict, Any], dict], function_name: str) -> dict:
    """A handler on a scheduled event; its EMF goes to CloudWatch (Lambda's stdout goes to Logs, not the terminal)."""
    event = scheduled_event(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = handler(event, LocalContext(function_name))
    result["metrics_published"] = publish_emf(printed.getvalue())
    return result


def drift_check(deployment: LocalDeployment, live: ModelVersion) -> dict:
    """The drift-check handler with the function's environment."""
    os.environ.update(deployment.drift_env(live))
    from drift_check import app as drift_app  # its clients are created at import, after the endpoint is set

    return scheduled(drift_app.handler, "drift-check")


def quality_check(deployment: LocalDeployment, live: ModelVersion, alarm: VerdictAlarm, states: list[str]) -> dict:
    """The model-quality check with the function's environment, then its alarm evaluated; prints the windows."""
    os.environ.update(deployment.quality_env(live))
    from drift_check import quality_check as quality_app  # clients created at import, after the endpoint is set

    result = scheduled(quality_app.handler, "model-quality")
    states.append(alarm.evaluate(datetime.now(UTC)))
    print(f"  {result['status']}: {result.get('windows_changed', 0)} window(s) changed, unmatched labels "
          f"{result.get('unmatched_labels', 0)}; model-quality alarm {states[-1]}", flush=True)
    if result.get("report_uri"):
        run = read_json(result["report_uri"])
        bucket = split_s3_uri(result["report_uri"])[0]
        result["windows_reports"] = [read_json(f"s3://{bucket}/{w['report_key']}") for w in run["windows"]]
        for report in result["windows_reports"]:
            print(f"  {side_by_side(report)}", flush=True)
    return result


def read_json(uri: str) -> dict:
    bucket, key = split_s3_uri(uri)
    return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def side_by_side(report: dict) -> str:
    """A window's training, estimated and realized primary metric and accuracy on one line."""
    parts = []
    for metric in dict.fromkeys([report["primary_metric"], "accuracy"]):
        values = [("training", report["baseline"].get(metric)), ("estimated", (report.get("estimated") or {}).get(metric)),
                  ("realized", report["realized"].get(metric))]
        shown = [f"{source} {value:.3f}" for source, value in values if value is not None]
        if metric in report["intervals"]:
            shown[-1] += " [{:.3f}, {:.3f}]".format(*report["intervals"][metric])
        if shown:
            parts.append(f"{metric}: " + ", ".join(shown))
    window = report["window"]
    return (f"v{window.get('model_version')} window from {window.get('period_start')}: {report['predictions']} "
            f"predictions, {report['matched']} labelled → {report['status']}; " + "; ".join(parts))


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


def copy_quality_pages(report_uri: str, model_name: str, dest: Path) -> Path | None:
    """Every HTML page under quality/<model>/ into dest with the same layout, so the run page's links to its
    windows' pages work; the path of the run's page."""
    bucket, key = split_s3_uri(report_uri)
    root = names.quality_prefix(model_name)
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".html"):
                target = dest / obj["Key"].removeprefix(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(target))
    run_page = dest / (key.removeprefix(root).removesuffix(".json") + ".html")
    return run_page if run_page.exists() else None


def run_loop(*, data: DemoData, workdir: Path, step: Step, rng: random.Random,
             choice: dict | None = None) -> LoopResult:
    model_name, target, categorical = data.model_name, data.target, list(data.categorical)
    data_key = names.training_data_key(model_name)
    deployment = LocalDeployment(model_name)
    with step("create the buckets and the capture and labels streams; upload the training data"):
        deployment.create()
        drift_alarm = VerdictAlarm(model_name)
        drift_alarm.create()
        quality = quality_alarm(model_name)
        rule = RetrainingRule()
        rule.create(quality.create())
        trigger = batch_trigger(deployment)
        os.environ.update(deployment.pipeline_env())
        boto3.client("s3").upload_file(str(data.csv_path), deployment.data_bucket, data_key)
    data_uri = f"s3://{deployment.data_bucket}/{data_key}"
    # Every run builds its data set: the configured CSV plus the labelled production rows found (none yet).
    build = build_env(deployment.capture_bucket)

    with step("training pipeline: build the data set → validate → train (SageMaker container contract) → evaluate "
              "→ register"):
        first = run_pipeline(model_name=model_name, run_id="run-1", data_uri=data_uri, target=target, workdir=workdir,
                             categorical=categorical, task=data.task or "", choice=choice, environment=build)
        print(f"  data set: {first.dataset['lineage'].get('rows')} rows, "
              f"{first.dataset['lineage'].get('production_rows', 0)} from production "
              f"({first.dataset['lineage'].get('note') or 'labelled production rows added'})", flush=True)
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
        record_promotion(boto3.client("s3"), model_name, live)  # what `mlops promote` records after its deploy
        print(f"  the function's configuration now names v{live.version}, sha256 {live.sha256[:12]}…; the promotion "
              f"history says it is live", flush=True)

    table = read_csv(data.csv_path)
    schema = infer_schema(table, target, set(categorical))
    rows = feature_rows(table, schema)
    truths = [value.strip() for value in table.column(target)]
    segment = data.drift or derived_drift(schema, rows)
    drifted_rows = drifted(rows, segment)
    concept = concept_drift(schema, rows, truths, segment, first.validation["task"] == "regression")
    alarm_states, quality_states = [], []
    with prediction_api(deployment.serving_env(live), workdir / "api.log") as url:
        health = traffic.get_json(url, "/health")
        print(f"  API on {url}: {health}", flush=True)
        with step(f"send normal traffic ({SEGMENT_ROWS} rows: single, batch and malformed requests)"):
            normal_segment = segment_requests(rows, truths, rng)
            normal = traffic.send(url, normal_segment.requests)
            wait_for_capture(deployment.capture_bucket, deployment.capture_prefix, normal.rows_predicted)
        with step("drift check on a scheduled event (normal traffic)"):
            first_check = drift_check(deployment, live)
            alarm_states.append(drift_alarm.evaluate(datetime.now(UTC)))
            print(f"  {first_check['status']}: {first_check.get('rows_checked')} rows; "
                  f"{first_check['metrics_published']} metrics published; drift alarm {alarm_states[-1]}", flush=True)
        with step("labels arrive later for part of the normal traffic (POST /feedback and a bulk CSV); model-quality "
                  "check on a scheduled event"):
            first_labels = deliver(url, deployment.capture_bucket, model_name, labels_for(normal, normal_segment, rng),
                                   "normal", rng)
            print(f"  {first_labels.feedback} labels through POST /feedback {first_labels.feedback_statuses}, "
                  f"{first_labels.bulk} in s3://{deployment.capture_bucket}/{first_labels.bulk_key}", flush=True)
            first_quality = quality_check(deployment, live, quality, quality_states)
        with step(f"low traffic: {LOW_TRAFFIC_HOURS} simulated hours of {LOW_TRAFFIC_ROWS} predictions, a drift check "
                  "after each (pooled until 500 rows)"):
            low_traffic_checks, captured = low_traffic_period(deployment, live, url, rows, rng, normal.rows_predicted)
        with step(f"send a drifted segment ({', '.join(map(str, segment))}); the world changed too: {concept}"):
            drifted_segment = segment_requests(drifted_rows, relabelled(drifted_rows, truths, concept), rng)
            drifted_traffic = traffic.send(url, drifted_segment.requests)
            wait_for_capture(deployment.capture_bucket, deployment.capture_prefix,
                             captured + drifted_traffic.rows_predicted)
        with step("drift check on a scheduled event (drifted traffic)"):
            second_check = drift_check(deployment, live)
            alarm_states.append(drift_alarm.evaluate(datetime.now(UTC)))
            print(f"  {second_check['status']}: drifted {second_check.get('drifted_features')}; "
                  f"drift alarm {alarm_states[-1]} (a proxy: notified, retraining waits for the labels)", flush=True)
        with step("labels arrive for the drifted segment; model-quality check (the window is judged again)"):
            second_labels = deliver(url, deployment.capture_bucket, model_name,
                                    labels_for(drifted_traffic, drifted_segment, rng), "drifted", rng)
            print(f"  {second_labels.feedback} labels through POST /feedback {second_labels.feedback_statuses}, "
                  f"{second_labels.bulk} in s3://{deployment.capture_bucket}/{second_labels.bulk_key}", flush=True)
            second_quality = quality_check(deployment, live, quality, quality_states)
        with step("model-quality check again, nothing new: nothing counted twice"):
            quality_rerun = quality_check(deployment, live, quality, quality_states)

    retraining = started = None
    now = datetime.now(UTC)
    delivered = rule.deliver(quality.state_change_event(quality_states[-1], now))
    if delivered:
        print(f"  EventBridge matched the model-quality alarm's state change ({delivered[0]['detail-type']}, "
              f"{delivered[0]['detail']['state']['value']}) to the retraining rule", flush=True)
        started = retraining_input(model_name=model_name, data_uri=data_uri, target=target, trigger=QUALITY_TRIGGER)
        # One process plays every function here, each with its own environment in the cloud: the drift check's
        # MIN_ROWS (captured rows per verdict) must not become the validate step's (training rows).
        os.environ.pop(Var.MIN_ROWS, None)
        os.environ.update(deployment.pipeline_env())
        with step("retraining: the data set gains the labelled production rows; the candidate is judged against the "
                  "live model on the hold-out and on the most recent labelled rows"):
            # The categorical columns and task come from the state machine's configured defaults in the cloud.
            retraining = run_pipeline(model_name=started["model_name"], run_id="run-2", data_uri=started["data_uri"],
                                      target=started["target"], workdir=workdir, categorical=categorical,
                                      task=data.task or "", choice=choice, environment=build)
            lineage = retraining.dataset["lineage"]
            print(f"  data set: {lineage.get('rows')} rows, {lineage.get('production_rows')} labelled production rows "
                  f"added, {lineage.get('recent_rows')} most recent kept out for the gate", flush=True)
            print(f"  {retraining.evaluation['reason']}", flush=True)
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
        alarm_states=alarm_states, concept=str(concept), first_labels=first_labels, first_quality=first_quality,
        second_labels=second_labels, second_quality=second_quality, quality_rerun=quality_rerun,
        quality_states=quality_states,
        quality_html=copy_quality_pages(second_quality["report_uri"], model_name, workdir / "quality")
        if second_quality.get("report_uri") else None,
        retraining_input=started, retraining=retraining, batch=batch,
        batch_refused_on_purpose=refused_on_purpose, versions=registry.list_versions(sagemaker, model_name),
    )
