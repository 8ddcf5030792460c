"""A Lambda function run from the project image, with its own log group and a role that can only write there."""
from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from contracts import metric_names
from contracts.env import Var
from stacks.nag import acknowledge


class ImageFunction(Construct):
    """`DockerImageFunction` from the shared image asset, the handler chosen by overriding the image CMD."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ecr_assets.DockerImageAsset,
        handler: str,
        service: str,
        log_retention: logs.RetentionDays,
        memory_size: int,
        timeout: Duration,
        environment: dict[str, str] | None = None,
        description: str = "",
        **function_props: Any,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        # An explicit role instead of AWSLambdaBasicExecutionRole: log writes to this group only.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"{service} function")
        self.log_group.grant_write(self.role)
        self.function = lambda_.DockerImageFunction(
            self, "Function",
            code=lambda_.DockerImageCode.from_ecr(image.repository, tag_or_digest=image.image_tag, cmd=[handler]),
            architecture=lambda_.Architecture.X86_64,
            role=self.role,
            log_group=self.log_group,
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            description=description or f"{service} ({handler})",
            environment={
                Var.SERVICE_NAME: service,
                Var.METRICS_NAMESPACE: metric_names.NAMESPACE,
                **(environment or {}),
            },
            **function_props,
        )
        acknowledge(self.role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",
                    "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions.",
                    "Resource::*")
