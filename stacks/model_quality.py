"""The scheduled model-quality check: its function, its schedule, and the metric its ModelQuality alarm watches."""
from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from contracts import metric_names, names
from contracts.env import Var
from stacks.config import Config
from stacks.image_function import ImageFunction
from stacks.model_registry import LIST_MODEL_PACKAGES, grant_registry
from stacks.shared_buckets import SharedBuckets

QUALITY_TIMEOUT_MINUTES = 15  # Lambda's limit: one run reads the horizon's predictions and labels


def quality_environment(config: Config, buckets: SharedBuckets) -> dict[str, str]:
    """What drift_check.quality_check reads (contracts.env.Var); where it reads and writes follows from MODEL_NAME."""
    return {
        Var.CAPTURE_BUCKET: buckets.capture.bucket.bucket_name,
        Var.REPORTS_BUCKET: buckets.reports.bucket.bucket_name,
        Var.MODEL_NAME: config.model_name,
        Var.MODEL_DATA_URL: config.model_data_url,
        Var.MODEL_SHA256: config.model_sha256,
        Var.MODEL_VERSION: config.model_version,
        Var.MODEL_QUALITY_WINDOW_HOURS: str(config.model_quality_window_hours),
        Var.MODEL_QUALITY_HORIZON_DAYS: str(config.model_quality_horizon_days),
        Var.MODEL_QUALITY_MIN_LABELS: str(config.model_quality_min_labels),
        Var.MODEL_QUALITY_TOLERANCE: str(config.model_quality_tolerance),
        Var.MODEL_QUALITY_FLOORS: json.dumps(dict(config.model_quality_floors), sort_keys=True),
    }


class ModelQuality(Construct):
    """The model-quality check every `model_quality_schedule`, reading only the model's capture, labels, quality
    reports, artifacts and registry entries; its failed events go to the monitoring dead-letter queue."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, image: ecr_assets.DockerImageAsset,
                 buckets: SharedBuckets, dead_letters: sqs.IQueue, dead_letter_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.period = Duration.minutes(config.model_quality_period_minutes)
        self.check = ImageFunction(
            self, "Function",
            image=image, handler="drift_check.quality_check.handler", service="model-quality",
            log_retention=config.log_retention,
            memory_size=config.model_quality_memory_mb, timeout=Duration.minutes(QUALITY_TIMEOUT_MINUTES),
            # One run at a time: runs share a checkpoint and rewrite the same window reports.
            reserved_concurrent_executions=1,
            retry_attempts=2,
            dead_letter_queue=dead_letters,
            environment=quality_environment(config, buckets),
        )
        self.function = self.check.function
        self._grant(config, buckets, dead_letter_key)
        self.schedule = events.Rule(
            self, "Schedule",
            description="Run the model-quality check",
            schedule=events.Schedule.expression(config.model_quality_schedule),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2, max_event_age=Duration.hours(1),
                                            dead_letter_queue=dead_letters)],
        )

    def _grant(self, config: Config, buckets: SharedBuckets, dead_letter_key: kms.IKey) -> None:
        role, model = self.check.role, config.model_name
        buckets.capture.grant(role, names.capture_prefix(model), read=True, list_objects=True)
        buckets.capture.grant(role, names.labels_prefix(model), read=True, list_objects=True)
        # Listing its own prefix: a checkpoint not written yet is told apart by listing its key
        # (contracts.s3_uri.get_if_exists), not by a GET, which S3 answers with 403 to this role.
        buckets.reports.grant(role, names.quality_prefix(model), read=True, write=True, list_objects=True)
        buckets.artifacts.grant(role, names.models_prefix(model), read=True)  # the live and earlier versions
        grant_registry(role, model, "sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage",
                       LIST_MODEL_PACKAGES)
        # Lambda's dead-letter grant is sqs:SendMessage alone; sending to the KMS-encrypted queue needs its key.
        dead_letter_key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")

    def degraded_metric(self, config: Config) -> cloudwatch.Metric:
        """ModelQualityDegraded per model across versions (1 degraded, 0 ok; nothing without a verdict)."""
        return cloudwatch.Metric(namespace=metric_names.NAMESPACE, metric_name=metric_names.QUALITY_DEGRADED,
                                 dimensions_map={metric_names.DIM_MODEL_NAME: config.model_name},
                                 statistic="Maximum", period=self.period)
