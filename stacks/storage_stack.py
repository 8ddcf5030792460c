"""Stateful resources, retained when the stack is deleted: the buckets, the model registry group, the image."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from contracts.names import BUCKETS, Output, bucket_output
from stacks.config import Config
from stacks.nag import acknowledge

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCESS_LOG_DAYS = 365
# Every bucket: private, TLS-only, encrypted, versioned, and kept when the stack goes.
SECURE_BUCKET = {
    "encryption": s3.BucketEncryption.S3_MANAGED,
    "enforce_ssl": True,
    "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
    "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    "versioned": True,
    "removal_policy": RemovalPolicy.RETAIN,
}


class StorageStack(Stack):
    """Buckets for training data, model artifacts, captured requests and reports; access logs; the image."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        # SSE-S3 everywhere: the access-log bucket can only use it, and the data buckets are read and
        # written by SageMaker, Firehose and four functions whose access is already scoped by prefix in
        # IAM; a KMS key would add a grant per consumer and a KMS request per captured file for no
        # additional separation of duty in a single-account deployment.
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            **SECURE_BUCKET,
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-access-logs",
                expiration=Duration.days(ACCESS_LOG_DAYS),
                noncurrent_version_expiration=Duration.days(config.noncurrent_version_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )],
        )
        acknowledge(self.access_logs, "AwsSolutions-S1",
                    "This is the server-access-log target; logging it into itself would loop.")
        self.data_bucket = self._bucket("Data", "data/")
        # Object-created events go to EventBridge, where batch scoring's upload trigger matches its input prefix.
        # Set on the bucket resource itself: `event_bridge_enabled=True` would add a custom resource and its
        # Lambda function to do the same.
        data = self.data_bucket.node.default_child
        data.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True))
        self.artifacts_bucket = self._bucket("Artifacts", "artifacts/")
        self.capture_bucket = self._bucket("Capture", "capture/", s3.LifecycleRule(
            id="age-out-captured-requests",
            transitions=[s3.Transition(storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                                       transition_after=Duration.days(30))],
            expiration=Duration.days(config.capture_retention_days),
        ))
        self.reports_bucket = self._bucket("Reports", "reports/")

        # Versions of one model live in one group; retained with the artifacts they point to.
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup",
            model_package_group_name=config.model_name,
            model_package_group_description=f"Versions of the {config.model_name} model",
        )
        self.model_package_group.apply_removal_policy(RemovalPolicy.RETAIN)

        # One image for training, evaluation, serving and the drift check (see the Dockerfile).
        self.image = ecr_assets.DockerImageAsset(
            self, "Image",
            directory=str(REPO_ROOT),
            platform=ecr_assets.Platform.LINUX_AMD64,
            display_name=f"{config.project_name} image",
        )

        # The other stacks import the buckets through these outputs (stacks/shared_buckets.py).
        buckets = {"data": self.data_bucket, "artifacts": self.artifacts_bucket, "capture": self.capture_bucket,
                   "reports": self.reports_bucket}
        for kind in BUCKETS:
            CfnOutput(self, bucket_output(kind, "Name"), value=buckets[kind].bucket_name)
            CfnOutput(self, bucket_output(kind, "Arn"), value=buckets[kind].bucket_arn)
        CfnOutput(self, Output.TRAINING_DATA_URI, value=f"s3://{self.data_bucket.bucket_name}/{config.training_data_key}",
                  description="Upload the training CSV here (the pipeline's default data_uri).")

    def _bucket(self, construct_id: str, log_prefix: str, *extra_rules: s3.LifecycleRule) -> s3.Bucket:
        return s3.Bucket(
            self, construct_id,
            **SECURE_BUCKET,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(self._config.noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                *extra_rules,
            ],
        )
