"""Batch scoring: plan → score the parts on a Distributed Map → summarize, on files of any size in the data bucket."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contracts import names
from contracts.env import Var
from contracts.events import OBJECT_KEY_PATH, batch_job_input, batch_upload_pattern
from stacks.config import Config
from stacks.distributed_map import ManifestMap
from stacks.image_function import ImageFunction
from stacks.lambda_step import lambda_step
from stacks.model_registry import grant_registry
from stacks.nag import acknowledge
from stacks.shared_buckets import SharedBuckets

HANDLERS = "batch_scoring.app"
JOB_FAILED = "BatchJobFailed"
JOB_TIMEOUT = Duration.hours(24)


class BatchScoring(Construct):
    """The three step functions, the state machine and the upload trigger of batch scoring jobs.

    Job → Plan (splits the input into parts, writes the manifest) → ScoreParts (Distributed Map, one
    child execution per `batch_items_per_child` parts) → Summarize (always, also when the map failed)
    → succeed with the summary, or fail when a part could not be scored.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, buckets: SharedBuckets,
                 image: ecr_assets.DockerImageAsset) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        model = config.model_name
        self.output_prefix = names.batch_output_root(model)
        self.input_prefix = names.batch_input_prefix(model)
        environment = {
            Var.DATA_BUCKET: buckets.data.bucket.bucket_name,
            Var.ARTIFACTS_BUCKET: buckets.artifacts.bucket.bucket_name,
            Var.CAPTURE_BUCKET: buckets.capture.bucket.bucket_name,
            Var.MODEL_NAME: model,
            # The promoted model, the default of every job (empty until a promotion: see ROLLOUT_STACKS).
            Var.MODEL_DATA_URL: config.model_data_url,
            Var.MODEL_SHA256: config.model_sha256,
            Var.MODEL_VERSION: config.model_version,
            Var.MODEL_PACKAGE_ARN: config.model_package_arn,
            Var.BATCH_PART_MB: str(config.batch_part_mb),
            Var.BATCH_FORMAT: config.batch_output_format,
            Var.BATCH_CAPTURE_SAMPLE_RATE: str(config.batch_capture_sample_rate),
        }

        def function(name: str, memory_size: int, timeout: Duration, **props: object) -> ImageFunction:
            return ImageFunction(
                self, f"{name.capitalize()}Function",
                image=image, handler=f"{HANDLERS}.{name}_handler", service=f"batch-{name}",
                log_retention=config.log_retention, environment=environment,
                memory_size=memory_size, timeout=timeout, **props,
            )

        self.plan = function("plan", 2048, Duration.minutes(15))
        self.score = function("score", config.batch_memory_mb, Duration.minutes(15),
                              ephemeral_storage_size=Size.gibibytes(4))
        self.summarize = function("summarize", 1024, Duration.minutes(5))
        self._grant_functions(buckets)

        self.score_parts = ManifestMap(
            self, "ScoreParts",
            comment="Score every part of the manifest; failed children are retried, then tolerated up to the limit",
            manifest=buckets.data, manifest_prefix=self.output_prefix, key_path="$.plan.manifest_key",
            results=buckets.data, results_prefix=names.batch_map_results_prefix(model),
            function=self.score.function, child_state_name="ScoreBatch",
            items_per_batch=config.batch_items_per_child,
            batch_input={"spec.$": "$.plan.spec"},
            max_concurrency=config.batch_max_concurrency,
            tolerated_failure_percentage=config.batch_tolerated_failure_percent,
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=config.log_retention,
                                       removal_policy=RemovalPolicy.DESTROY,
                                       log_group_name=f"/aws/vendedlogs/states/{config.project_name}-batch")
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=f"{config.project_name}-batch",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=JOB_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        self.score_parts.acknowledge(self.state_machine)
        self._acknowledge_role_findings()
        self.trigger = self._trigger(buckets) if config.batch_trigger_on_upload else None

    def _definition(self) -> sfn.IChainable:
        # The state is {"input": <execution input>}; the steps add plan, map_error (if any) and summary beside it.
        job = sfn.Pass(self, "Job", parameters={"input.$": "$"},
                       comment="Keep the execution input under $.input, whatever its shape")
        plan = lambda_step(self, "Plan", self.plan.function, "$.plan", {
            "input": sfn.JsonPath.object_at("$.input"),
            "execution_name": sfn.JsonPath.string_at("$$.Execution.Name"),
        })
        # No payload: the summary step gets the whole state.
        summarize = lambda_step(self, "Summarize", self.summarize.function, "$.summary")
        self.score_parts.state.add_catch(summarize, errors=[sfn.Errors.ALL], result_path="$.map_error")
        done = (
            sfn.Choice(self, "Failed?")
            .when(sfn.Condition.string_equals("$.summary.status", "failed"),
                  sfn.Fail(self, JOB_FAILED, error=JOB_FAILED, cause="a part could not be scored: see the job summary"))
            .otherwise(sfn.Succeed(self, "Scored", output_path="$.summary",
                                   comment="Every part scored (rows may have been refused: see errors_files)"))
        )
        scored = self.score_parts.state.next(summarize).next(done)
        anything = (sfn.Choice(self, "Anything to score?")
                    .when(sfn.Condition.number_equals("$.plan.parts", 0),
                          sfn.Succeed(self, "NothingToScore", output_path="$.plan",
                                      comment="A marker or scratch file landed: the plan says why (skipped)"))
                    .otherwise(scored))
        return job.next(plan).next(anything)

    def _grant_functions(self, buckets: SharedBuckets) -> None:
        """Each function its prefixes only; the score function writes captured rows only when sampling is on."""
        model = self._config.model_name
        data, output = buckets.data, self.output_prefix
        plan, score, summarize = self.plan.role, self.score.role, self.summarize.role
        for prefix in (self.input_prefix, names.DATASETS):
            data.grant(plan, prefix, read=True, list_objects=True)
            data.grant(score, prefix, read=True)
        data.grant(plan, output, write=True)  # the manifest
        grant_registry(plan, model, "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages")
        data.grant(score, output, read=True, write=True, delete=True)
        buckets.artifacts.grant(score, names.models_prefix(model), read=True)
        if self._config.batch_capture_sample_rate > 0:
            buckets.capture.grant(score, names.capture_prefix(model), write=True)
        data.grant(summarize, output, read=True, write=True, delete=True, list_objects=True)

    def _trigger(self, buckets: SharedBuckets) -> events.Rule:
        """A data file landing in a job folder under batch/<model>/input/ starts a job on it (the data bucket
        sends S3 events to EventBridge); the pattern is contracts.events', which the local loop uses too."""
        return events.Rule(
            self, "OnUpload",
            description=f"Start a batch scoring job when a file lands under {self.input_prefix}",
            event_pattern=events.EventPattern(**_pattern_props(
                batch_upload_pattern(buckets.data.bucket.bucket_name, self._config.model_name))),
            targets=[targets.SfnStateMachine(
                self.state_machine, retry_attempts=3,
                input=events.RuleTargetInput.from_object(batch_job_input(events.EventField.from_path(OBJECT_KEY_PATH))),
            )],
        )

    def _acknowledge_role_findings(self) -> None:
        """The state machine role: what LambdaInvoke and logging grant, each needing a wildcard."""
        stack = Stack.of(self)
        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        functions = [f"Resource::<{stack.get_logical_id(f.function.node.default_child)}.Arn>:*"
                     for f in (self.plan, self.score, self.summarize)]
        acknowledge(policy, "AwsSolutions-IAM5",
                    "LambdaInvoke grants the step functions' versions and aliases (<arn>:*); Step Functions "
                    "logging and X-Ray actions take no resource.",
                    *functions, "Resource::*")


def _pattern_props(pattern: dict) -> dict:
    """An EventBridge pattern (JSON keys) as EventPattern's keyword arguments."""
    return {"source": pattern["source"], "detail_type": pattern["detail-type"], "detail": pattern["detail"]}
