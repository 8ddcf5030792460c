"""The batch state machine played locally: the S3 trigger, Plan, the Distributed Map's children, Summarize.

moto runs no Step Functions, so this plays the states in the order the CDK definition has them, with
the Lambda handlers the functions run: the upload's S3 event goes through the trigger's pattern on
moto's EventBridge, the plan's manifest is read as the Distributed Map's item reader reads it and cut
into batches as its item batcher does, and each batch is one child's invocation.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

import boto3

from contracts import names
from contracts.events import OBJECT_CREATED, batch_job_input, batch_upload_pattern
from demo.lambda_context import LocalContext
from demo.local_alarms import QueuedRule, publish_emf
from demo.local_aws import LocalDeployment
from training.registry import ModelVersion

ITEMS_PER_CHILD = 2  # the demo's batching: several children over a few parts


@dataclass
class BatchRun:
    object_key: str
    matched: bool
    plan: dict = field(default_factory=dict)
    children: int = 0
    summary: dict = field(default_factory=dict)
    metrics_published: int = 0


def batch_trigger(deployment: LocalDeployment) -> QueuedRule:
    """The stack's upload rule (contracts.events.batch_upload_pattern) on moto's bus."""
    rule = QueuedRule("local-batch-trigger")
    rule.create(batch_upload_pattern(deployment.data_bucket, deployment.model_name))
    return rule


def object_created(bucket: str, key: str, size: int) -> dict:
    """The event S3 sends EventBridge for a new object (a bucket with EventBridge notifications on)."""
    return {"version": "0", "id": "local", "detail-type": OBJECT_CREATED, "source": "aws.s3",
            "account": "123456789012", "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": size},
                       "reason": "PutObject"}}


def upload_and_score(deployment: LocalDeployment, live: ModelVersion, trigger: QueuedRule, *, job_id: str,
                     file_name: str, data: bytes) -> BatchRun:
    """Put a file in the job's input folder; if the trigger matches, run the job as the state machine would."""
    os.environ.update(deployment.batch_env(live))
    key = f"{names.batch_input_prefix(deployment.model_name, job_id)}{file_name}"
    s3 = boto3.client("s3")
    s3.put_object(Bucket=deployment.data_bucket, Key=key, Body=data)
    delivered = trigger.deliver(object_created(deployment.data_bucket, key, len(data)))
    run = BatchRun(object_key=key, matched=bool(delivered))
    if not delivered:
        return run
    from batch_scoring import app  # after the environment is set, as in the function

    execution_input = batch_job_input(delivered[0]["detail"]["object"]["key"])
    run.plan = app.plan_handler({"input": execution_input, "execution_name": f"local-{job_id}"}, LocalContext("batch-plan"))
    if not run.plan["parts"]:
        return run
    manifest = json.loads(s3.get_object(Bucket=deployment.data_bucket, Key=run.plan["manifest_key"])["Body"].read())
    for k in range(0, len(manifest), ITEMS_PER_CHILD):
        app.score_handler({"Items": manifest[k:k + ITEMS_PER_CHILD], "BatchInput": {"spec": run.plan["spec"]}},
                          LocalContext("batch-score"))
        run.children += 1
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the summary's metrics (EMF) go to CloudWatch, not the terminal
        run.summary = app.summarize_handler({"input": execution_input, "plan": run.plan}, LocalContext("batch-summarize"))
    run.metrics_published = publish_emf(printed.getvalue())
    return run
