"""The storage buckets as other stacks see them: imported through the storage stack's named outputs.

Named outputs (read with Fn::GetStackOutput) instead of CDK's automatic cross-stack references give
every consumer the same, readable reference, so prefix grants and their cdk-nag acknowledgments can
be written once, here, exactly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contracts.names import BUCKETS, bucket_output
from stacks.nag import acknowledge


@dataclass(frozen=True)
class BucketRef:
    """One imported bucket and the CloudFormation form of its ARN (as cdk-nag prints it in findings)."""

    bucket: s3.IBucket
    arn_ref: str

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket.bucket_name}/{key}"

    def grant(self, role: iam.IRole, prefix: str, *, read: bool = False, write: bool = False,
              list_objects: bool = False, delete: bool = False) -> None:
        """Exactly these object actions under `prefix` (which ends in '/'), nothing on other keys."""
        objects = f"{self.bucket.bucket_arn}/{prefix}*"
        actions = [*(["s3:GetObject"] if read else []), *(["s3:PutObject", "s3:AbortMultipartUpload"] if write else []),
                   *(["s3:DeleteObject"] if delete else [])]
        if actions:
            role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=[objects]))
        if list_objects:
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}}))
        if actions:
            acknowledge(role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",
                        f"Object access is limited to keys under {prefix} in this bucket.",
                        f"Resource::{self.arn_ref}/{prefix}*")


@dataclass(frozen=True)
class SharedBuckets:
    """The four storage buckets, imported into one consumer stack."""

    data: BucketRef
    artifacts: BucketRef
    capture: BucketRef
    reports: BucketRef

    @classmethod
    def import_from(cls, scope: Construct, storage: Stack) -> SharedBuckets:
        """Import by output name; the consumer stack then deploys after the storage stack."""
        Stack.of(scope).add_stack_dependency(storage)
        refs = {}
        for kind in BUCKETS:
            arn = Fn.get_stack_output(storage.stack_name, bucket_output(kind, "Arn"))
            name = Fn.get_stack_output(storage.stack_name, bucket_output(kind, "Name"))
            bucket = s3.Bucket.from_bucket_attributes(scope, f"{kind.capitalize()}Bucket", bucket_arn=arn,
                                                      bucket_name=name)
            resolved = {"Fn::GetStackOutput": {"StackName": storage.stack_name, "OutputName": bucket_output(kind, "Arn")}}
            refs[kind] = BucketRef(bucket, json.dumps(resolved, separators=(",", ":")))
        return cls(**refs)
