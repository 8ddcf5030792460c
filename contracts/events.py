"""EventBridge patterns and the inputs their rules pass on, shared by the stacks and the local loop.

Drift or model-quality alarm → retraining (monitoring stack); a file landing in a batch job's folder → a batch job
(batch stack).
"""
from __future__ import annotations

from typing import Any

from contracts import names
from contracts.batch_job import EXTENSIONS, GZIP_SUFFIX

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
OBJECT_CREATED = "Object Created"
# Where the batch trigger finds the landed object's key in the S3 event (the rule's input path).
OBJECT_KEY_PATH = "$.detail.object.key"


# What started a retraining run (the training input's "trigger"): the rule on each alarm says which.
DRIFT_TRIGGER = "drift-alarm"
QUALITY_TRIGGER = "quality-alarm"


def alarm_pattern(alarm_arn: str) -> dict:
    """Matches one CloudWatch alarm entering ALARM (EventBridge pattern syntax)."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_STATE_CHANGE],
        "resources": [alarm_arn],
        "detail": {"state": {"value": ["ALARM"]}},
    }


def retraining_input(*, model_name: str, data_uri: str, target: str, trigger: str = DRIFT_TRIGGER) -> dict:
    """What a retraining rule passes to the training state machine."""
    return {"model_name": model_name, "data_uri": data_uri, "target": target, "trigger": trigger}


def batch_upload_pattern(bucket_name: str, model_name: str) -> dict:
    """Matches a data file (by extension, so markers such as _SUCCESS do not) landing in a job folder.

    EventBridge's `*` matches any characters, '/' included: batch/<model>/input/<job>/[sub/]name.csv.
    """
    root = names.batch_input_prefix(model_name)
    keys = [{"wildcard": f"{root}*/*{extension}{gz}"} for extension in EXTENSIONS for gz in ("", GZIP_SUFFIX)]
    return {
        "source": ["aws.s3"],
        "detail-type": [OBJECT_CREATED],
        "detail": {"bucket": {"name": [bucket_name]}, "object": {"key": keys}},
    }


def batch_job_input(object_key: Any) -> dict:
    """What the trigger passes to the batch state machine: the landed object (batch_scoring.job_input)."""
    return {"object_key": object_key}
