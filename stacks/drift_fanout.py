"""The drift check's fan-out: a window too big for one run is counted by children of a Distributed Map.

The drift check plans (it writes the manifest of file groups, locks its checkpoint and starts this state
machine by its fixed name); the children count their groups; the drift check's own function merges the
counts into the report, or, when the map failed for good, releases the lock (drift_check.fanout).
"""
from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contracts import names
from contracts.env import Var
from stacks.config import Config
from stacks.distributed_map import ManifestMap
from stacks.image_function import ImageFunction
from stacks.lambda_step import lambda_step
from stacks.nag import acknowledge
from stacks.shared_buckets import SharedBuckets

FANOUT_FAILED = "DriftFanoutFailed"


class DriftFanout(Construct):
    """CountGroups (Distributed Map, one child per group of capture files) → Merge (the drift check) → done;
    a map or merge that fails for good → Release (the drift check drops its lock) → fail."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, buckets: SharedBuckets,
                 image: ecr_assets.DockerImageAsset, check: ImageFunction, environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        model = config.model_name
        self.name = names.drift_fanout_state_machine(config.project_name)
        self.count = ImageFunction(
            self, "CountFunction",
            image=image, handler="drift_check.app.count_handler", service="drift-count",
            log_retention=config.log_retention, environment=environment,
            memory_size=config.drift_memory_mb, timeout=Duration.minutes(15),
        )
        buckets.capture.grant(self.count.role, names.capture_prefix(model), read=True)
        buckets.artifacts.grant(self.count.role, names.models_prefix(model), read=True)
        buckets.reports.grant(self.count.role, names.drift_fanout_prefix(model), write=True)

        self.groups = ManifestMap(
            self, "CountGroups",
            comment="Count every group of capture files of the planned window; failed children are retried",
            manifest=buckets.reports, manifest_prefix=names.drift_fanout_prefix(model), key_path="$.manifest_key",
            results=buckets.reports, results_prefix=names.drift_fanout_results_prefix(model),
            function=self.count.function, child_state_name="CountGroup",
            batch_input={"run_id.$": "$.run_id", "model_sha256.$": "$.model_sha256"},
            max_concurrency=config.drift_fanout_max_concurrency,
        )
        run = {"run_id": sfn.JsonPath.string_at("$.run_id"), "manifest_key": sfn.JsonPath.string_at("$.manifest_key")}
        # The drift check runs one at a time (reserved concurrency 1): a scheduled run may hold it for a while.
        patient = {"interval": Duration.seconds(30), "max_attempts": 6}
        merge = lambda_step(self, "Merge", check.function, "$.report", {"fanout": run}, **patient)
        release = lambda_step(self, "Release", check.function, "$.released",
                              {"fanout": run, "failed": True, "error": sfn.JsonPath.object_at("$.error")}, **patient)
        release.next(sfn.Fail(self, FANOUT_FAILED, error=FANOUT_FAILED,
                              cause="the window could not be counted; the next scheduled run reads it again"))
        self.groups.state.add_catch(release, errors=[sfn.Errors.ALL], result_path="$.error")
        merge.add_catch(release, errors=[sfn.Errors.ALL], result_path="$.error")
        definition = self.groups.state.next(merge).next(sfn.Succeed(self, "Reported", output_path="$.report"))

        self.log_group = logs.LogGroup(self, "Logs", retention=config.log_retention, removal_policy=RemovalPolicy.DESTROY,
                                       log_group_name=f"/aws/vendedlogs/states/{self.name}")
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=self.name,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            # The drift check treats an older lock as a lost run: the two must agree.
            timeout=Duration.minutes(config.drift_fanout_timeout_minutes),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        self.groups.acknowledge(self.state_machine)
        self._acknowledge_role_findings(check)
        self._let_check_start(config, check)

    @property
    def arn(self) -> str:
        """Built from the fixed name: the drift check is started by it and merges for it, so a reference would loop."""
        return Stack.of(self).format_arn(service="states", resource="stateMachine", resource_name=self.name,
                                         arn_format=ArnFormat.COLON_RESOURCE_NAME)

    def _let_check_start(self, config: Config, check: ImageFunction) -> None:
        check.function.add_environment(Var.DRIFT_FANOUT_STATE_MACHINE_ARN, self.arn)
        check.function.add_environment(Var.DRIFT_FANOUT_MB, str(config.drift_fanout_mb))
        check.function.add_environment(Var.DRIFT_FANOUT_GROUP_MB, str(config.drift_fanout_group_mb))
        check.function.add_environment(Var.DRIFT_FANOUT_TIMEOUT_MINUTES, str(config.drift_fanout_timeout_minutes))
        check.role.add_to_principal_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.arn]))
        # The merge reads the manifest and the children's counts, which the drift check's own grant covers.

    def _acknowledge_role_findings(self, check: ImageFunction) -> None:
        stack = Stack.of(self)
        functions = [f"Resource::<{stack.get_logical_id(f.node.default_child)}.Arn>:*"
                     for f in (self.count.function, check.function)]
        acknowledge(self.state_machine.role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",
                    "LambdaInvoke grants the functions' versions and aliases (<arn>:*); Step Functions logging "
                    "and X-Ray actions take no resource.", *functions, "Resource::*")
