"""Monitoring: the scheduled drift check, alarms to SNS, the dashboard, and the optional drift → retrain rule."""
from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from contracts import metric_names, names
from contracts.env import Var
from contracts.events import drift_alarm_pattern, retraining_input
from contracts.names import Output
from stacks.batch_stack import BatchStack
from stacks.config import Config
from stacks.dashboard import build_dashboard
from stacks.image_function import ImageFunction
from stacks.nag import acknowledge
from stacks.notification_topic import NotificationTopic
from stacks.serving_stack import ServingStack
from stacks.shared_buckets import SharedBuckets
from stacks.storage_stack import StorageStack
from stacks.training_stack import TrainingStack

FIVE_MINUTES = Duration.minutes(5)


class MonitoringStack(Stack):
    """Drift check every `drift_schedule`; alarms on drift, API errors and latency, Lambda errors, failed training
    and failed batch jobs."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, storage: StorageStack,
                 training: TrainingStack, serving: ServingStack, batch: BatchStack, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.alarm_topic = NotificationTopic(self, "Alarms", display_name=f"{config.project_name} alarms",
                                             email=config.alarm_email, service_publishers=["cloudwatch.amazonaws.com"])
        self.dead_letters = sqs.Queue(
            self, "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.dead_letters, "AwsSolutions-SQS3",
                    "This queue is the dead-letter queue of the drift check (function and schedule target).")
        self.drift_check = self._drift_function(config, storage, capture_prefix=serving.capture.prefix)
        self.schedule = events.Rule(
            self, "DriftSchedule",
            description="Run the drift check",
            schedule=events.Schedule.expression(config.drift_schedule),
            targets=[targets.LambdaFunction(self.drift_check.function, retry_attempts=2,
                                            max_event_age=Duration.hours(1), dead_letter_queue=self.dead_letters)],
        )
        self.alarms = self._alarms(config, training, serving, batch)
        action = cw_actions.SnsAction(self.alarm_topic.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
        self.alarms["drift"].add_ok_action(action)
        self.retrain_rule = self._retrain_rule(config, training) if config.retrain_on_drift else None
        self.dashboard = build_dashboard(self, config=config, serving=serving, training=training,
                                         drift_check=self.drift_check.function, dead_letters=self.dead_letters,
                                         batch_jobs=batch.state_machine,
                                         alarms=list(self.alarms.values()))
        CfnOutput(self, Output.ALARM_TOPIC_ARN, value=self.alarm_topic.topic.topic_arn)
        CfnOutput(self, Output.DRIFT_CHECK_FUNCTION, value=self.drift_check.function.function_name)

    def _drift_function(self, config: Config, storage: StorageStack, *, capture_prefix: str) -> ImageFunction:
        buckets = SharedBuckets.import_from(self, storage)
        drift = ImageFunction(
            self, "DriftCheck",
            image=storage.image, handler="drift_check.app.handler", service="drift-check",
            log_retention=config.log_retention,
            memory_size=2048, timeout=Duration.minutes(10),
            # One run at a time: runs advance a checkpoint; a second concurrent run would double count.
            reserved_concurrent_executions=1,
            retry_attempts=2,
            dead_letter_queue=self.dead_letters,
            environment={
                # Where it reads and writes in these buckets is contracts.names' layout for MODEL_NAME.
                Var.CAPTURE_BUCKET: buckets.capture.bucket.bucket_name,
                Var.REPORTS_BUCKET: buckets.reports.bucket.bucket_name,
                Var.MODEL_NAME: config.model_name,
                Var.MODEL_DATA_URL: config.model_data_url,
                Var.MODEL_SHA256: config.model_sha256,
                Var.MIN_ROWS: str(config.drift_min_rows),
            },
        )
        model = config.model_name
        buckets.capture.grant(drift.role, capture_prefix, read=True, list_objects=True)  # what Firehose writes
        buckets.artifacts.grant(drift.role, names.models_prefix(model), read=True)
        buckets.reports.grant(drift.role, names.drift_prefix(model), read=True, write=True)
        # The first run reads a checkpoint that does not exist yet: S3 answers NoSuchKey (not AccessDenied)
        # only to a caller with ListBucket on the bucket itself, without a prefix condition.
        drift.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"],
                                                               resources=[buckets.reports.bucket.bucket_arn]))
        return drift

    def _alarms(self, config: Config, training: TrainingStack, serving: ServingStack,
                batch: BatchStack) -> dict[str, cloudwatch.Alarm]:
        api = serving.api.api
        function = serving.function
        gte = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD

        def alarm(name: str, description: str, metric: cloudwatch.IMetric, threshold: float, *,
                  periods: int = 1, datapoints: int | None = None,
                  operator: cloudwatch.ComparisonOperator = gte) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(self, name, alarm_description=description, metric=metric, threshold=threshold,
                                    evaluation_periods=periods, datapoints_to_alarm=datapoints or periods,
                                    comparison_operator=operator,
                                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)

        error_rate = cloudwatch.MathExpression(
            label="5xx % of requests",
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={"errors": api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
                           "requests": api.metric_count(period=FIVE_MINUTES, statistic="Sum")},
            period=FIVE_MINUTES,
        )
        return {
            "drift": alarm(
                "DatasetDrift", f"The drift check found dataset drift for {config.model_name}",
                cloudwatch.Metric(namespace=metric_names.NAMESPACE, metric_name=metric_names.DRIFT_DATASET,
                                  dimensions_map={metric_names.DIM_MODEL_NAME: config.model_name},
                                  statistic=metric_names.DRIFT_ALARM_STATISTIC,
                                  period=Duration.minutes(config.drift_period_minutes)),
                metric_names.DRIFT_ALARM_THRESHOLD),
            "api_5xx": alarm("Api5xxRate", f"API 5xx responses above {config.error_rate_alarm_percent}% of requests",
                             error_rate, config.error_rate_alarm_percent, periods=3, datapoints=2,
                             operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD),
            "api_latency": alarm("ApiLatencyP99", f"API p99 latency above {config.p99_latency_alarm_ms} ms",
                                 api.metric_latency(period=FIVE_MINUTES, statistic="p99"),
                                 config.p99_latency_alarm_ms, periods=3, datapoints=2,
                                 operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD),
            "inference_errors": alarm("InferenceErrors", "Unhandled errors in the inference function",
                                      function.metric_errors(period=FIVE_MINUTES, statistic="Sum"), 5),
            "inference_throttles": alarm("InferenceThrottles", "Inference invocations throttled",
                                         function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"), 1),
            "drift_errors": alarm("DriftCheckErrors", "The drift check failed",
                                  self.drift_check.function.metric_errors(period=FIVE_MINUTES, statistic="Sum"), 1),
            "dead_letters": alarm("DeadLetterMessages", "Drift check events gave up after retries",
                                  self.dead_letters.metric_approximate_number_of_messages_visible(
                                      period=FIVE_MINUTES, statistic="Maximum"), 1),
            "training_failed": alarm("TrainingFailed", "A training pipeline execution failed",
                                     training.state_machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"), 1),
            "batch_failed": alarm("BatchJobFailed", "A batch scoring job failed (a part could not be scored, or it "
                                  "could not be planned)",
                                  batch.state_machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"), 1),
        }

    def _retrain_rule(self, config: Config, training: TrainingStack) -> events.Rule:
        """Dataset drift alarm → a training run on the configured data (refresh it before the drift builds up)."""
        pattern = drift_alarm_pattern(self.alarms["drift"].alarm_arn)
        return events.Rule(
            self, "RetrainOnDrift",
            description="Start the training pipeline when the dataset drift alarm goes to ALARM",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], resources=pattern["resources"],
                detail=pattern["detail"]),
            targets=[targets.SfnStateMachine(
                training.state_machine, retry_attempts=3,
                input=events.RuleTargetInput.from_object(retraining_input(
                    model_name=config.model_name, data_uri=training.default_data_uri, target=config.target)),
            )],
        )

