"""Serving: the inference function, its `live` alias and canary deployments, the API, request capture and the labels stream."""
from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from contracts import metric_names, names
from contracts.env import Var, flag_value
from contracts.names import Output
from stacks.capture_stream import capture_stream, labels_stream
from stacks.config import DEPLOYMENT_CONFIGS, Config
from stacks.image_function import ImageFunction
from stacks.nag import acknowledge
from stacks.prediction_api import PredictionApi
from stacks.shared_buckets import SharedBuckets
from stacks.storage_stack import StorageStack

SERVICE = "inference"  # POWERTOOLS_SERVICE_NAME: the `service` dimension of the function's metrics


class ServingStack(Stack):
    """A new function version per promoted model (or code change); CodeDeploy shifts `live` and rolls back on alarms."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, storage: StorageStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = config.log_retention
        buckets = SharedBuckets.import_from(self, storage)
        self.capture = capture_stream(self, bucket=buckets.capture, model_name=config.model_name)
        # POST /feedback's labels: into the same bucket, under labels/<model>/feedback/.
        self.labels = labels_stream(self, bucket=buckets.capture, model_name=config.model_name)
        self.inference = ImageFunction(
            self, "Inference",
            image=storage.image, handler="inference.app.handler", service=SERVICE,
            log_retention=retention,
            memory_size=config.inference_memory_mb,
            timeout=Duration.seconds(config.inference_timeout_seconds),
            reserved_concurrent_executions=config.reserved_concurrency or None,
            description=f"{config.model_name} predictions, model version {config.model_version or 'none'}",
            # The model is configuration: a new model version is a new function version (see the design brief).
            environment={
                Var.MODEL_NAME: config.model_name,
                Var.MODEL_VERSION: config.model_version,
                Var.MODEL_PACKAGE_ARN: config.model_package_arn,
                Var.MODEL_DATA_URL: config.model_data_url,
                Var.MODEL_SHA256: config.model_sha256,
                Var.CAPTURE_STREAM: self.capture.stream_name,
                Var.CAPTURE_SAMPLE_RATE: str(config.capture_sample_rate),
                Var.LABELS_STREAM: self.labels.stream_name,
                Var.FEEDBACK_MAX_LABELS: str(config.feedback_max_labels),
                Var.MAX_BATCH: str(config.max_batch),
                Var.MODEL_RETRY_SECONDS: str(config.model_retry_seconds),
                Var.STRICT_CATEGORIES: flag_value(config.strict_categories),
                Var.SERVING_RUNTIME: config.serving_runtime,
            },
        )
        self.function = self.inference.function
        # The dimensions the function publishes its own metrics with (inference.observability): an alarm on
        # one of them must name all three, or it watches a metric nobody publishes.
        self.metric_dimensions = {metric_names.DIM_MODEL_NAME: config.model_name,
                                  metric_names.DIM_MODEL_VERSION: config.model_version or "unknown",
                                  metric_names.DIM_SERVICE: SERVICE}
        buckets.artifacts.grant(self.inference.role, names.models_prefix(config.model_name), read=True)
        self.capture.grant_put_batch(self.function)
        self.labels.grant_put_batch(self.function)

        self.alias = lambda_.Alias(
            self, "LiveAlias", alias_name=names.ALIAS, version=self.function.current_version,
            provisioned_concurrent_executions=config.provisioned_concurrency or None,
        )
        self.rollback_alarms = self._rollback_alarms(config)
        self.deployment_group = codedeploy.LambdaDeploymentGroup(
            self, "Deployment",
            alias=self.alias,
            deployment_config=DEPLOYMENT_CONFIGS[config.canary](),
            alarms=self.rollback_alarms,
            auto_rollback=codedeploy.AutoRollbackConfig(failed_deployment=True, stopped_deployment=True,
                                                        deployment_in_alarm=True),
        )
        self.api = PredictionApi(self, "Prediction", config=config, alias=self.alias, log_retention=retention)
        self._acknowledge(config)

        CfnOutput(self, Output.API_URL, value=self.api.api.url)
        if self.api.api_key is not None:
            CfnOutput(self, Output.API_KEY_ID, value=self.api.api_key.key_id,
                      description="aws apigateway get-api-key --include-value --api-key <id> prints the key")
        CfnOutput(self, Output.FUNCTION_NAME, value=self.function.function_name)
        CfnOutput(self, Output.ALIAS_ARN, value=self.alias.function_arn)
        # For the promote CLI: stop or inspect a running canary deployment.
        CfnOutput(self, Output.DEPLOYMENT_APPLICATION, value=self.deployment_group.application.application_name)
        CfnOutput(self, Output.DEPLOYMENT_GROUP, value=self.deployment_group.deployment_group_name)
        CfnOutput(self, Output.CAPTURE_STREAM, value=self.capture.stream_name)
        CfnOutput(self, Output.LABELS_STREAM, value=self.labels.stream_name,
                  description="POST /feedback's Firehose stream: labels land under labels/<model>/feedback/")

    def _rollback_alarms(self, config: Config) -> list[cloudwatch.IAlarm]:
        """Alarms that stop a deployment: any unhandled error, p99 latency over the limit, or no model to serve."""
        errors = cloudwatch.Alarm(
            self, "AliasErrors",
            alarm_description="Unhandled errors on the live alias (stops and rolls back a deployment)",
            metric=self.alias.metric_errors(period=Duration.minutes(1), statistic="Sum"),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = cloudwatch.Alarm(
            self, "AliasLatencyP99",
            alarm_description=f"p99 duration of the live alias above {config.p99_latency_alarm_ms} ms",
            metric=self.alias.metric_duration(period=Duration.minutes(1), statistic="p99"),
            threshold=config.p99_latency_alarm_ms, evaluation_periods=2, datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # A refused or missing artifact is not a Lambda error: the new version answers 503 to every
        # request. Its error count carries the model version the function is configured with.
        unavailable = cloudwatch.Alarm(
            self, "ModelUnavailable",
            alarm_description="The live alias answers 503: its model was refused or is missing (stops and rolls back a deployment)",
            metric=self.model_metric(metric_names.PREDICTION_ERRORS, statistic="Sum", period=Duration.minutes(1),
                                     **{metric_names.DIM_ERROR_KIND: "model_unavailable"}),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return [errors, latency, unavailable]

    def model_metric(self, metric_name: str, *, statistic: str, period: Duration, **dimensions: str) -> cloudwatch.Metric:
        """One of the function's own metrics, for the model version it is configured with (plus `dimensions`)."""
        return cloudwatch.Metric(namespace=metric_names.NAMESPACE, metric_name=metric_name,
                                 dimensions_map={**self.metric_dimensions, **dimensions}, statistic=statistic,
                                 period=period)

    def _acknowledge(self, config: Config) -> None:
        acknowledge(
            self.deployment_group, "AwsSolutions-IAM4",
            "CodeDeploy's Lambda service role uses the AWS-managed AWSCodeDeployRoleForLambdaLimited policy, "
            "which is limited to alias updates and the hook functions.",
            "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited",
        )
