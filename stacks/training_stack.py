"""The training pipeline: a Step Functions state machine, its step functions, the SageMaker job role."""
from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from contracts import names
from contracts.env import Var, flag_value
from contracts.names import Output
from stacks.config import Config
from stacks.image_function import ImageFunction
from stacks.model_registry import grant_registry
from stacks.notification_topic import NotificationTopic
from stacks.shared_buckets import SharedBuckets
from stacks.storage_stack import StorageStack
from stacks.training_pipeline import TrainingPipeline

RETRAINING_DETAIL_TYPE = "RetrainingRequested"
# The data-set build reads the horizon's capture in one run: bench/bench_quality.py projects its ceiling from these.
BUILD_DATASET_MEMORY_MB = 3008
BUILD_DATASET_TIMEOUT_MINUTES = 15


class TrainingStack(Stack):
    """build the data set → validate → SageMaker training job → evaluate → register, started by hand or by an
    EventBridge event."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, storage: StorageStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = config.log_retention
        buckets = SharedBuckets.import_from(self, storage)
        self.notifications = NotificationTopic(self, "Notifications", display_name=f"{config.project_name} training",
                                               email=config.alarm_email)
        environment = {
            Var.DATA_BUCKET: buckets.data.bucket.bucket_name,
            Var.ARTIFACTS_BUCKET: buckets.artifacts.bucket.bucket_name,
            Var.REPORTS_BUCKET: buckets.reports.bucket.bucket_name,
            Var.EVAL_TOLERANCE: str(config.eval_tolerance),
            Var.EVAL_FLOOR: str(config.eval_floor),
            Var.AUTO_APPROVE: flag_value(config.auto_approve),
            Var.IMAGE_URI: storage.image.image_uri,  # recorded in the model package's inference specification
        }
        steps = {
            name: ImageFunction(
                self, f"{name.capitalize()}Step",
                image=storage.image, handler=f"pipeline.app.{name}_handler", service=f"pipeline-{name}",
                log_retention=retention, environment=environment,
                memory_size=2048, timeout=Duration.minutes(10),
            )
            for name in ("validate", "evaluate", "register")
        }
        # Its own environment: the production rows' settings, not the gate's.
        steps["build_dataset"] = ImageFunction(
            self, "BuildDatasetStep",
            image=storage.image, handler="pipeline.app.build_dataset_handler", service="pipeline-build-dataset",
            log_retention=retention, memory_size=BUILD_DATASET_MEMORY_MB,
            timeout=Duration.minutes(BUILD_DATASET_TIMEOUT_MINUTES),
            environment={
                Var.DATA_BUCKET: buckets.data.bucket.bucket_name,
                Var.CAPTURE_BUCKET: buckets.capture.bucket.bucket_name,
                Var.PRODUCTION_LABELS: flag_value(config.retrain_with_production_labels),
                Var.RECENT_SHARE: str(config.retrain_recent_share),
                Var.MODEL_QUALITY_HORIZON_DAYS: str(config.model_quality_horizon_days),
            },
        )
        self._grant_steps(config.model_name, buckets, steps)

        self.pipeline = TrainingPipeline(
            self, "Pipeline",
            config=config,
            buckets=buckets,
            image=storage.image,
            build_dataset=steps["build_dataset"].function,
            validate=steps["validate"].function,
            evaluate=steps["evaluate"].function,
            register=steps["register"].function,
            topic=self.notifications.topic,
            log_retention=retention,
        )
        self.state_machine = self.pipeline.state_machine
        self.default_data_uri = buckets.data.uri(config.training_data_key)

        # Anyone allowed to put events on the default bus can ask for a retraining run; the event's
        # detail is the execution input (missing fields take the configured defaults).
        self.retraining_rule = events.Rule(
            self, "RetrainingRequested",
            description="Start the training pipeline on a RetrainingRequested event",
            event_pattern=events.EventPattern(source=[config.project_name], detail_type=[RETRAINING_DETAIL_TYPE]),
            targets=[targets.SfnStateMachine(self.state_machine,
                                             input=events.RuleTargetInput.from_event_path("$.detail"),
                                             retry_attempts=3)],
        )
        CfnOutput(self, Output.STATE_MACHINE_ARN, value=self.state_machine.state_machine_arn)
        CfnOutput(self, Output.NOTIFICATION_TOPIC_ARN, value=self.notifications.topic.topic_arn)

    def _grant_steps(self, model: str, buckets: SharedBuckets, steps: dict[str, ImageFunction]) -> None:
        """Each step gets its own prefixes (interface 3 of the team brief) and this model's registry entries."""
        build, validate, evaluate, register = (steps[n].role for n in ("build_dataset", "validate", "evaluate",
                                                                       "register"))
        versions = f"{names.model_prefix(names.DATASETS, model)}{names.DATASET_VERSIONS}"  # datasets/<model>/versions/
        # The data set: the configured CSV (anywhere under datasets/, as the validate step reads it), the labelled
        # production rows of this model, a new version written beside it.
        buckets.data.grant(build, names.DATASETS, read=True, list_objects=True)  # a missing CSV: 404, not 403
        buckets.data.grant(build, versions, write=True)
        for prefix in (names.capture_prefix(model), names.labels_prefix(model)):
            buckets.capture.grant(build, prefix, read=True, list_objects=True)
        buckets.data.grant(validate, names.DATASETS, read=True, list_objects=True)
        buckets.data.grant(validate, names.splits_prefix(model), write=True)
        buckets.reports.grant(validate, names.validation_prefix(model), write=True)
        buckets.reports.grant(validate, names.runs_prefix(model), write=True)  # the record of a run with refused data
        buckets.data.grant(evaluate, names.splits_prefix(model), read=True, list_objects=True)
        buckets.data.grant(evaluate, versions, read=True)  # recent.csv
        # models/<model>/ holds the promotion history too: a listing of its key says whether one exists (a GET of a
        # missing key is a 403, not a 404, without ListBucket on the whole bucket; a prefix condition does not count).
        buckets.artifacts.grant(evaluate, names.models_prefix(model), read=True)
        buckets.artifacts.grant(evaluate, names.promotions_key(model), list_objects=True)
        buckets.reports.grant(evaluate, names.evaluation_prefix(model), write=True)
        buckets.artifacts.grant(register, names.models_prefix(model), read=True)
        # The run record: evaluate writes it for every evaluated run, register adds the registry version to it.
        buckets.reports.grant(evaluate, names.runs_prefix(model), write=True)
        # (and lists it: a listing of the record's key tells a missing record from an access denied)
        buckets.reports.grant(register, names.runs_prefix(model), read=True, write=True, list_objects=True)
        grant_registry(evaluate, model, "sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage",
                       "sagemaker:DescribeModelPackageGroup")
        grant_registry(register, model, "sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                       "sagemaker:DescribeModelPackageGroup", "sagemaker:CreateModelPackageGroup",
                       "sagemaker:ListModelPackages", "sagemaker:AddTags")
