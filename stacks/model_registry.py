"""Access to one model's SageMaker registry entries: its package group and the group's versions only."""
from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from stacks.nag import acknowledge

LIST_MODEL_PACKAGES = "sagemaker:ListModelPackages"


def grant_registry(role: iam.IRole, model_name: str, *actions: str) -> None:
    """Registry actions on this model's package group and its versions only (ListModelPackages needs '*')."""
    stack = Stack.of(role)
    scoped = [a for a in actions if a != LIST_MODEL_PACKAGES]
    role.add_to_principal_policy(iam.PolicyStatement(actions=scoped, resources=[
        stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=model_name),
        stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{model_name}/*"),
    ]))
    findings = [f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/{model_name}/*"]
    if LIST_MODEL_PACKAGES in actions:
        role.add_to_principal_policy(iam.PolicyStatement(actions=[LIST_MODEL_PACKAGES], resources=["*"]))
        findings.append("Resource::*")
    acknowledge(role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",
                "Model package versions are numbered by SageMaker, so the group's versions are matched with "
                "'/*'; ListModelPackages supports no resource-level permissions.", *findings)
