"""The deployed resources, made on the embedded AWS: buckets, the capture and labels streams, and each function's
environment.

Names and environment variables come from contracts.names and contracts.env, as the stacks' do, so
the handlers run here exactly as configured there.
"""
from __future__ import annotations

from dataclasses import dataclass

import boto3

from contracts import names
from contracts.env import Var
from training.registry import ModelVersion


@dataclass
class LocalDeployment:
    """Every name derives from the prefix and the model name, as the stacks derive theirs."""

    model_name: str
    prefix: str = "mlops-local"

    def __post_init__(self) -> None:
        self.data_bucket = f"{self.prefix}-data"
        self.artifacts_bucket = f"{self.prefix}-artifacts"
        self.capture_bucket = f"{self.prefix}-capture"
        self.reports_bucket = f"{self.prefix}-reports"
        self.capture_stream = f"{self.prefix}-capture"
        self.capture_prefix = names.capture_prefix(self.model_name)
        self.labels_stream = f"{self.prefix}-labels"
        self.feedback_prefix = names.feedback_prefix(self.model_name)

    def create(self) -> None:
        """Buckets and the two Firehose streams into the capture bucket (moto delivers on each put, under
        <prefix>YYYY/MM/DD/HH/ as Firehose's partition does in the stacks)."""
        s3 = boto3.client("s3")
        for bucket in (self.data_bucket, self.artifacts_bucket, self.capture_bucket, self.reports_bucket):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        firehose = boto3.client("firehose")
        for stream, prefix in ((self.capture_stream, self.capture_prefix), (self.labels_stream, self.feedback_prefix)):
            firehose.create_delivery_stream(
                DeliveryStreamName=stream, DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                    "BucketARN": f"arn:aws:s3:::{self.capture_bucket}",
                    "Prefix": prefix, "CompressionFormat": "UNCOMPRESSED",
                    "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60},
                })

    def pipeline_env(self) -> dict[str, str]:
        return {Var.DATA_BUCKET: self.data_bucket, Var.ARTIFACTS_BUCKET: self.artifacts_bucket,
                Var.REPORTS_BUCKET: self.reports_bucket}

    def serving_env(self, live: ModelVersion) -> dict[str, str]:
        """The inference function's environment after `promote` deployed this registry version."""
        return {Var.MODEL_NAME: self.model_name, Var.MODEL_VERSION: str(live.version), Var.MODEL_PACKAGE_ARN: live.arn,
                Var.MODEL_DATA_URL: live.model_data_url, Var.MODEL_SHA256: live.sha256,
                Var.CAPTURE_STREAM: self.capture_stream, Var.CAPTURE_SAMPLE_RATE: "1.0",
                Var.LABELS_STREAM: self.labels_stream}

    def drift_env(self, live: ModelVersion) -> dict[str, str]:
        return {Var.MODEL_NAME: self.model_name, Var.MODEL_DATA_URL: live.model_data_url, Var.MODEL_SHA256: live.sha256,
                Var.CAPTURE_BUCKET: self.capture_bucket, Var.REPORTS_BUCKET: self.reports_bucket, Var.MIN_ROWS: "500"}

    def quality_env(self, live: ModelVersion) -> dict[str, str]:
        """The model-quality check's environment: the live model (its version as serving stamps it on captures)."""
        return {Var.MODEL_NAME: self.model_name, Var.MODEL_VERSION: str(live.version),
                Var.MODEL_DATA_URL: live.model_data_url, Var.MODEL_SHA256: live.sha256,
                Var.CAPTURE_BUCKET: self.capture_bucket, Var.REPORTS_BUCKET: self.reports_bucket}

    def batch_env(self, live: ModelVersion) -> dict[str, str]:
        """The batch functions' environment: the live model as the default, small parts so the demo has several."""
        return {Var.MODEL_NAME: self.model_name, Var.MODEL_VERSION: str(live.version), Var.MODEL_PACKAGE_ARN: live.arn,
                Var.MODEL_DATA_URL: live.model_data_url, Var.MODEL_SHA256: live.sha256,
                Var.DATA_BUCKET: self.data_bucket, Var.ARTIFACTS_BUCKET: self.artifacts_bucket,
                Var.CAPTURE_BUCKET: self.capture_bucket, Var.BATCH_PART_MB: "1", Var.BATCH_FORMAT: "jsonl",
                Var.BATCH_CAPTURE_SAMPLE_RATE: "0"}


def scheduled_event(time: str, rule_arn: str = "arn:aws:events:us-east-1:123456789012:rule/drift-check") -> dict:
    """An EventBridge scheduled event as the drift schedule delivers it."""
    return {"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": time, "region": "us-east-1",
            "resources": [rule_arn], "detail": {}}
