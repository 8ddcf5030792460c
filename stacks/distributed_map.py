"""A Step Functions Distributed Map over a JSON manifest in S3, each batch of items handed to one Lambda function.

Generic: batch scoring uses it for its parts; any other fan-out (e.g. the drift check over many files) can
reuse it. The manifest's key is read from the state, the bucket and the prefixes are fixed, and the state
machine role is granted exactly those prefixes (the L2 reader and writer would grant the whole bucket).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.nag import acknowledge
from stacks.shared_buckets import BucketRef

RETRY_INTERVAL = Duration.seconds(10)  # before a failed child's next attempt (then x retry_backoff_rate)


class _JsonManifestReader(sfn.S3JsonItemReader):
    """`S3JsonItemReader` whose grant is the manifest prefix (the L2 grants s3:GetObject on bucket/*)."""

    def __init__(self, *, statements: list[iam.PolicyStatement], **props: Any) -> None:
        super().__init__(**props)
        self._statements = statements

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return self._statements


class _ResultWriter(sfn.ResultWriterV2):
    """`ResultWriterV2` whose grant is the results prefix (the L2 grants its object actions on bucket/*)."""

    def __init__(self, *, statements: list[iam.PolicyStatement], **props: Any) -> None:
        super().__init__(**props)
        self._statements = statements

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return self._statements


class ManifestMap(Construct):
    """A DISTRIBUTED map reading a JSON array from `manifest` at the key found at `key_path` in the state.

    Items go to child executions (STANDARD: a Lambda may run 15 minutes, an Express child stops at 5)
    in batches of `items_per_batch`, with `batch_input` beside them; each child is one LambdaInvoke
    whose payload is the whole batch (`{"Items": [...], "BatchInput": {...}}`), retried on any error so
    a failed child gets more attempts (the function must be idempotent). Child results are written to
    `results` under `results_prefix`. `state` is the Map state to chain. The state machine that binds
    it is granted the two prefixes only; call `acknowledge` on it for cdk-nag.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        manifest: BucketRef,
        manifest_prefix: str,
        key_path: str,
        results: BucketRef,
        results_prefix: str,
        function: lambda_.IFunction,
        child_state_name: str,
        items_per_batch: int = 1,
        batch_input: Mapping[str, Any] | None = None,
        max_concurrency: int = 100,
        tolerated_failure_percentage: float = 0,
        retry_attempts: int = 3,
        retry_interval: Duration = RETRY_INTERVAL,
        retry_backoff_rate: float = 2,
        result_path: str = sfn.JsonPath.DISCARD,
        comment: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        self._findings = [f"Resource::{manifest.arn_ref}/{manifest_prefix}*", f"Resource::{results.arn_ref}/{results_prefix}*"]
        read_manifests = iam.PolicyStatement(actions=["s3:GetObject"],
                                             resources=[f"{manifest.bucket.bucket_arn}/{manifest_prefix}*"])
        # What Step Functions' ResultWriter needs (its multipart upload of the results included).
        write_results = iam.PolicyStatement(
            actions=["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
            resources=[f"{results.bucket.bucket_arn}/{results_prefix}*"])
        self.state = sfn.DistributedMap(
            self, "Map",
            state_name=construct_id,
            comment=comment or None,
            item_reader=_JsonManifestReader(statements=[read_manifests], bucket=manifest.bucket,
                                            key=sfn.JsonPath.string_at(key_path)),
            # BatchInput is rendered as written: JSONPath fields take their ".$" suffix here.
            item_batcher=sfn.ItemBatcher(max_items_per_batch=items_per_batch, batch_input=dict(batch_input or {})),
            max_concurrency=max_concurrency,
            tolerated_failure_percentage=tolerated_failure_percentage,
            result_writer_v2=_ResultWriter(statements=[write_results], bucket=results.bucket, prefix=results_prefix),
            result_path=result_path,
            map_execution_type=sfn.StateMachineType.STANDARD,
        )
        # No payload: with payload_response_only the task's input, the batch, is the function's event.
        self.child = tasks.LambdaInvoke(
            self, "Child",
            state_name=child_state_name,
            lambda_function=function,
            payload_response_only=True,
        ).add_retry(errors=[sfn.Errors.ALL], max_attempts=retry_attempts, interval=retry_interval,
                    backoff_rate=retry_backoff_rate)
        self.state.item_processor(self.child)  # DISTRIBUTED, children of map_execution_type

    def acknowledge(self, state_machine: sfn.StateMachine) -> None:
        """cdk-nag: the prefix grants on the role, and the L2's grants on this state machine's child executions."""
        acknowledge(state_machine.role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",
                    "The Distributed Map reads manifests and writes child results only under these prefixes.",
                    *self._findings)
        policy = state_machine.node.try_find_child("DistributedMapPolicy")
        if policy is not None:
            # The state machine's name, as the L2 derives it from its ARN (and cdk-nag prints it).
            name = json.dumps({"Fn::Select": [6, {"Fn::Split": [":", {
                "Ref": Stack.of(self).get_logical_id(state_machine.node.default_child)}]}]}, separators=(",", ":"))
            execution = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}"
            acknowledge(policy, "AwsSolutions-IAM5",
                        "The Distributed Map describes, stops and redrives its own child executions, whose names "
                        "Step Functions generates: they are matched under this state machine's name only.",
                        f"Resource::{execution}:*", f"Resource::{execution}/*:*")
