"""Monitoring: the scheduled drift and model-quality checks, alarms to SNS, the dashboard, and the optional
drift → retrain and model quality → retrain rules."""
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
from contracts.events import DRIFT_TRIGGER, QUALITY_TRIGGER, alarm_pattern, retraining_input
from contracts.names import Output
from stacks.batch_stack import BatchStack
from stacks.config import Config
from stacks.dashboard import build_dashboard
from stacks.drift_fanout import DriftFanout
from stacks.image_function import ImageFunction
from stacks.input_alarms import drift_check_metric, input_alarms
from stacks.model_quality import ModelQuality
from stacks.nag import acknowledge
from stacks.notification_topic import NotificationTopic
from stacks.serving_stack import ServingStack
from stacks.shared_buckets import SharedBuckets
from stacks.storage_stack import StorageStack
from stacks.training_stack import TrainingStack

FIVE_MINUTES = Duration.minutes(5)
DRIFT_TIMEOUT_MINUTES = 10  # one run's time limit; bench/bench_drift.py projects its ceiling from it


class MonitoringStack(Stack):
    """Drift check every `drift_schedule`, model-quality check every `model_quality_schedule`; alarms on drift, data
    quality, model quality, API errors and latency, capture, Lambda errors, failed training and failed batch jobs."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, storage: StorageStack,
                 training: TrainingStack, serving: ServingStack, batch: BatchStack, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.alarm_topic = NotificationTopic(self, "Alarms", display_name=f"{config.project_name} alarms",
                                             email=config.alarm_email, service_publishers=["cloudwatch.amazonaws.com"])
        # SSE-KMS with the alarm topic's key (no second key to pay for): EventBridge, which writes the schedule
        # target's dead letters, can use a KMS key only when the key policy lets it, which the AWS-managed
        # aws/sqs key's policy does not; the drift function's role gets the key for its own dead letters below.
        key = self.alarm_topic.key
        key.grant(iam.ServicePrincipal("events.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey")
        self.dead_letters = sqs.Queue(
            self, "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.dead_letters, "AwsSolutions-SQS3",
                    "This queue is the dead-letter queue of the drift and model-quality checks (functions and "
                    "schedule targets).")
        buckets = SharedBuckets.import_from(self, storage)
        self.drift_check = self._drift_function(config, storage, buckets, capture_prefix=serving.capture.prefix)
        self.drift_fanout = DriftFanout(self, "DriftFanout", config=config, buckets=buckets, image=storage.image,
                                        check=self.drift_check, environment=self.drift_environment)
        self.schedule = events.Rule(
            self, "DriftSchedule",
            description="Run the drift check",
            schedule=events.Schedule.expression(config.drift_schedule),
            targets=[targets.LambdaFunction(self.drift_check.function, retry_attempts=2,
                                            max_event_age=Duration.hours(1), dead_letter_queue=self.dead_letters)],
        )
        self.model_quality = ModelQuality(self, "ModelQualityCheck", config=config, image=storage.image,
                                          buckets=buckets, dead_letters=self.dead_letters, dead_letter_key=key)
        self.alarms = self._alarms(config, training, serving, batch)
        action = cw_actions.SnsAction(self.alarm_topic.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
        for verdict in ("drift", "data_quality", "quality"):  # the checks' verdicts: their all-clear is news too
            self.alarms[verdict].add_ok_action(action)
        self.retrain_rule = self._retrain_rule(
            config, training, "RetrainOnDrift", self.alarms["drift"], DRIFT_TRIGGER,
            "Start the training pipeline when the dataset drift alarm goes to ALARM") if config.retrain_on_drift else None
        self.retrain_on_quality_rule = self._retrain_rule(
            config, training, "RetrainOnQuality", self.alarms["quality"], QUALITY_TRIGGER,
            "Start the training pipeline when the model-quality alarm goes to ALARM") if config.retrain_on_quality else None
        self.dashboard = build_dashboard(self, config=config, serving=serving, training=training,
                                         drift_check=self.drift_check.function,
                                         drift_fanout=self.drift_fanout.state_machine, dead_letters=self.dead_letters,
                                         batch_jobs=batch.state_machine, quality_check=self.model_quality.function,
                                         quality_period=self.model_quality.period,
                                         alarms=list(self.alarms.values()))
        CfnOutput(self, Output.ALARM_TOPIC_ARN, value=self.alarm_topic.topic.topic_arn)
        CfnOutput(self, Output.DRIFT_CHECK_FUNCTION, value=self.drift_check.function.function_name)
        CfnOutput(self, Output.DRIFT_FANOUT_STATE_MACHINE_ARN, value=self.drift_fanout.state_machine.state_machine_arn)
        CfnOutput(self, Output.QUALITY_CHECK_FUNCTION, value=self.model_quality.function.function_name)

    def _drift_function(self, config: Config, storage: StorageStack, buckets: SharedBuckets, *,
                        capture_prefix: str) -> ImageFunction:
        # Where it reads and writes in these buckets is contracts.names' layout for MODEL_NAME; the fan-out's
        # children get the same environment.
        self.drift_environment = {
            Var.CAPTURE_BUCKET: buckets.capture.bucket.bucket_name,
            Var.REPORTS_BUCKET: buckets.reports.bucket.bucket_name,
            Var.MODEL_NAME: config.model_name,
            Var.MODEL_DATA_URL: config.model_data_url,
            Var.MODEL_SHA256: config.model_sha256,
            Var.MIN_ROWS: str(config.drift_min_rows),
            Var.QUALITY_MISSING_INCREASE: str(config.quality_missing_increase),
            Var.QUALITY_OUT_OF_RANGE_SHARE: str(config.quality_out_of_range_share),
            Var.QUALITY_MALFORMED_SHARE: str(config.quality_malformed_share),
            Var.QUALITY_FAIL_SHARE: str(config.quality_fail_share),
            Var.DRIFT_MAX_WINDOW_HOURS: str(config.drift_max_window_hours),
        }
        drift = ImageFunction(
            self, "DriftCheck",
            image=storage.image, handler="drift_check.app.handler", service="drift-check",
            log_retention=config.log_retention,
            memory_size=config.drift_memory_mb, timeout=Duration.minutes(DRIFT_TIMEOUT_MINUTES),
            # One run at a time: runs advance a checkpoint; a second concurrent run would double count.
            reserved_concurrent_executions=1,
            retry_attempts=2,
            dead_letter_queue=self.dead_letters,
            environment=self.drift_environment,
        )
        model = config.model_name
        buckets.capture.grant(drift.role, capture_prefix, read=True, list_objects=True)  # what Firehose writes
        buckets.artifacts.grant(drift.role, names.models_prefix(model), read=True)
        # Listing its own prefix: the first run tells a checkpoint not written yet from one it may not read by
        # listing the key (contracts.s3_uri.get_if_exists), not by a GET, which S3 answers with 403 here.
        buckets.reports.grant(drift.role, names.drift_prefix(model), read=True, write=True, list_objects=True)
        # Lambda's dead-letter grant is sqs:SendMessage alone; sending to the KMS-encrypted queue needs its key.
        self.alarm_topic.key.grant(drift.role, "kms:Decrypt", "kms:GenerateDataKey")
        return drift

    def _alarms(self, config: Config, training: TrainingStack, serving: ServingStack,
                batch: BatchStack) -> dict[str, cloudwatch.Alarm]:
        api = serving.api.api
        function = serving.function
        gte = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD

        def alarm(name: str, description: str, metric: cloudwatch.IMetric, threshold: float, *,
                  periods: int = 1, datapoints: int | None = None,
                  operator: cloudwatch.ComparisonOperator = gte,
                  missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(self, name, alarm_description=description, metric=metric, threshold=threshold,
                                    evaluation_periods=periods, datapoints_to_alarm=datapoints or periods,
                                    comparison_operator=operator, treat_missing_data=missing)

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
                drift_check_metric(config, metric_names.DRIFT_DATASET), metric_names.DRIFT_ALARM_THRESHOLD,
                # A run without a verdict (a low-traffic window carried over) publishes no DatasetDrift: the
                # alarm keeps the last verdict instead of flapping to OK and back (each return to ALARM would
                # start another retraining with retrain_on_drift).
                missing=cloudwatch.TreatMissingData.IGNORE),
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
            "quality": alarm(
                "ModelQuality", f"The model-quality check found {config.model_name}'s realized quality degraded: a "
                "judged metric's interval below the training hold-out's minus the tolerance, or below its floor, "
                "in a model version's latest window with enough labels (the run report in S3 says which)",
                self.model_quality.degraded_metric(config), metric_names.QUALITY_ALARM_THRESHOLD,
                # A run without a verdict (too few labels) publishes no ModelQualityDegraded: keep the last verdict
                # (each return to ALARM would start another retraining with retrain_on_quality).
                missing=cloudwatch.TreatMissingData.IGNORE),
            "dead_letters": alarm("DeadLetterMessages", "Drift or model-quality check events gave up after retries",
                                  self.dead_letters.metric_approximate_number_of_messages_visible(
                                      period=FIVE_MINUTES, statistic="Maximum"), 1),
            "training_failed": alarm("TrainingFailed", "A training pipeline execution failed",
                                     training.state_machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"), 1),
            "batch_failed": alarm("BatchJobFailed", "A batch scoring job failed (a part could not be scored, or it "
                                  "could not be planned)",
                                  batch.state_machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"), 1),
            "drift_fanout_failed": alarm(
                "DriftFanoutFailed", "A fanned-out drift check failed or timed out: its window is read again by the "
                "next run", self._fanout_failures(), 1),
            **input_alarms(config, serving, alarm),
        }

    def _fanout_failures(self) -> cloudwatch.MathExpression:
        """Failed and timed-out fan-outs: a timed-out execution never reaches its Release step or Fail state, so
        ExecutionsFailed alone misses a window too slow to count (replanned, and timed out, every time)."""
        machine = self.drift_fanout.state_machine
        return cloudwatch.MathExpression(
            label="failed or timed-out fan-outs", expression="FILL(failed, 0) + FILL(timed_out, 0)",
            using_metrics={"failed": machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"),
                           "timed_out": machine.metric_timed_out(period=FIVE_MINUTES, statistic="Sum")},
            period=FIVE_MINUTES)

    def _retrain_rule(self, config: Config, training: TrainingStack, construct_id: str, alarm: cloudwatch.Alarm,
                      trigger: str, description: str) -> events.Rule:
        """An alarm entering ALARM → a training run on the configured data, its input saying which alarm started it."""
        pattern = alarm_pattern(alarm.alarm_arn)
        return events.Rule(
            self, construct_id,
            description=description,
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], resources=pattern["resources"],
                detail=pattern["detail"]),
            targets=[targets.SfnStateMachine(
                training.state_machine, retry_attempts=3,
                input=events.RuleTargetInput.from_object(retraining_input(
                    model_name=config.model_name, data_uri=training.default_data_uri, target=config.target,
                    trigger=trigger)),
            )],
        )

