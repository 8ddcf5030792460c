"""Lambda handlers of the batch state machine: plan → score parts (Distributed Map children) → summarize.

Environment (contracts.env.Var): DATA_BUCKET, ARTIFACTS_BUCKET, CAPTURE_BUCKET, MODEL_NAME, the
promoted model (MODEL_DATA_URL, MODEL_SHA256, MODEL_VERSION, MODEL_PACKAGE_ARN: the live model),
BATCH_PART_MB (64), BATCH_FORMAT (jsonl), BATCH_CAPTURE_SAMPLE_RATE (0: off). Inputs are read and
outputs written where contracts.names puts them for MODEL_NAME.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import msgspec
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from batch_scoring import model_pin
from batch_scoring.job_input import read_request
from batch_scoring.part_run import score_part
from batch_scoring.planner import PlanError, plan_parts
from batch_scoring.store import S3Store, StoreError
from batch_scoring.summary import summarize, utc_stamp
from contracts import env, names
from contracts import metric_names as mn
from contracts.batch_job import OUTPUT_FORMATS, JobSpec, JobSummary, Part, encode
from contracts.env import Var

logger = Logger()
metrics = Metrics(namespace=mn.NAMESPACE)
WORKDIR = Path("/tmp/batch")


def _model_name() -> str:
    return env.required(Var.MODEL_NAME)


def plan_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The job's parts in a manifest for the Distributed Map, and the spec every child shares.

    parts 0 (with `skipped` saying why): nothing to score, the state machine ends there.
    """
    model_name, bucket = _model_name(), env.required(Var.DATA_BUCKET)
    store = S3Store(bucket)
    try:
        request = read_request(event.get("input"), model_name=model_name, bucket=bucket, store=store,
                               execution_name=event.get("execution_name", ""),
                               default_format=env.choice(Var.BATCH_FORMAT, "jsonl", OUTPUT_FORMATS),
                               default_part_mb=env.integer(Var.BATCH_PART_MB, 64, minimum=1))
        if request.skipped:
            logger.info("nothing to score", extra={"reason": request.skipped})
            return {"spec": None, "manifest_key": "", "bucket": bucket, "parts": 0, "files": 0,
                    "skipped": request.skipped}
        pin = (model_pin.registry_pin(boto3.client("sagemaker"), model_name, request.model_version)
               if request.model_version is not None else model_pin.live_pin())
        parts = plan_parts(store, request.files, request.part_bytes)
    except (StoreError, model_pin.ModelError) as exc:
        raise PlanError(str(exc)) from exc
    output_prefix = names.batch_output_prefix(model_name, request.job_id)
    spec = JobSpec(job_id=request.job_id, model_name=model_name, output_prefix=output_prefix,
                   scope=names.batch_scope_prefix(output_prefix, request.scope_name),
                   output_format=request.output_format, model=pin, started_at=utc_stamp(),
                   capture_sample_rate=env.number(Var.BATCH_CAPTURE_SAMPLE_RATE, 0.0, minimum=0.0, maximum=1.0),
                   run_id=uuid.uuid4().hex)
    manifest_key = f"{spec.scope}{names.BATCH_MANIFEST}"
    store.put(manifest_key, encode(parts))
    logger.info("planned", extra={"job_id": spec.job_id, "files": len(request.files), "parts": len(parts),
                                  "model": pin.source})
    return {"spec": msgspec.to_builtins(spec), "manifest_key": manifest_key, "bucket": bucket,
            "parts": len(parts), "files": len(request.files), "skipped": ""}


def score_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A Distributed Map child: {"Items": [part, ...], "BatchInput": {"spec": …}} → each part scored and recorded."""
    spec = msgspec.convert(event["BatchInput"]["spec"], JobSpec)
    parts = msgspec.convert(event["Items"], list[Part])
    store = S3Store(env.required(Var.DATA_BUCKET))
    capture = S3Store(env.required(Var.CAPTURE_BUCKET)) if spec.capture_sample_rate > 0 else None
    model = model_pin.load(spec.model, WORKDIR, store.s3)
    results = [score_part(store, store, part, spec, model, workdir=WORKDIR, capture=capture,
                          capture_prefix=names.capture_prefix(spec.model_name)) for part in parts]
    return {"parts": [{"name": r.name, "index": r.index, "rows": r.rows, "errors": r.errors, "error": r.error}
                      for r in results]}


def summarize_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Add the parts up, write the summary last, publish the job's metrics; returns the summary."""
    plan = event["plan"]
    spec = msgspec.convert(plan["spec"], JobSpec)
    store = S3Store(plan["bucket"])
    manifest = store.get(plan["manifest_key"])
    if manifest is None:
        raise PlanError(f"the job's manifest {store.uri(plan['manifest_key'])} is gone")
    failure = (event.get("map_error") or {}).get("Cause") or (event.get("map_error") or {}).get("Error") or ""
    summary = summarize(store, spec, msgspec.json.decode(manifest, type=list[Part]), failure=str(failure)[:500])
    publish(summary)
    return msgspec.to_builtins(summary)


def publish(summary: JobSummary) -> None:
    metrics.add_dimension(mn.DIM_MODEL_NAME, summary.model_name)
    metrics.add_metric(name=mn.BATCH_ROWS, unit=MetricUnit.Count, value=summary.rows)
    metrics.add_metric(name=mn.BATCH_ROW_ERRORS, unit=MetricUnit.Count, value=summary.errors)
    metrics.add_metric(name=mn.BATCH_DURATION, unit=MetricUnit.Seconds, value=summary.seconds)
    metrics.add_metric(name=mn.BATCH_PARTS_FAILED, unit=MetricUnit.Count, value=len(summary.parts_failed))
    metrics.flush_metrics()
    logger.info("job finished", extra={"summary": msgspec.to_builtins(summary)})
