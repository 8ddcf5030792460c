"""Across the stacks: cdk-nag AwsSolutions passes, acknowledgments stay narrow, no IAM wildcard slips through."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks

from tests.stacks.conftest import TEMPLATES
from tests.stacks.stack_helpers import as_list, policy_statements, resources

pytestmark = pytest.mark.slow

# Actions AWS authorizes on no resource narrower than "*" (X-Ray, Step Functions log delivery, ECR login,
# SageMaker list calls), and PutMetricData, which the training job role limits by namespace condition.
ANY_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "ecr:GetAuthorizationToken", "sagemaker:ListTags", "sagemaker:ListModelPackages", "cloudwatch:PutMetricData",
}


def templates(app):
    return {name: getattr(app, name) for name in TEMPLATES}


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_aws_solutions_checks_pass(request, which):
    app = request.getfixturevalue(which).app
    report = AwsSolutionsChecks().validate_scope(app)
    findings = [(v.rule_name, [r.resource_logical_id for r in v.violating_resources]) for v in report.violations]
    assert report.success, findings


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_acknowledgments_are_narrow_and_reasoned(request, which):
    app = request.getfixturevalue(which).app
    acknowledged = 0
    for node in app.node.find_all():
        for entry in node.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            assert not isinstance(node, cdk.Stack | cdk.App), f"acknowledgment on a whole stack: {node.node.path}"
            for rule, reason in entry.data.items():
                acknowledged += 1
                assert len(reason) >= 40, (node.node.path, rule)
                if "IAM5" in rule:  # wildcard findings are acknowledged one by one, never the whole rule
                    assert rule.endswith("]") and "[" in rule, (node.node.path, rule)
    assert acknowledged > 0


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_no_wildcard_actions_and_star_resources_only_where_aws_requires(request, which):
    for name, template in templates(request.getfixturevalue(which)).items():
        for policy, statement in policy_statements(template):
            actions = as_list(statement["Action"])
            assert not [a for a in actions if a == "*" or a.endswith(":*")], (name, policy, actions)
            if "*" in as_list(statement["Resource"]):
                assert set(actions) <= ANY_RESOURCE_ACTIONS, (name, policy, actions)
            wildcard = [a for a in actions if "*" in a and a != "kms:GenerateDataKey*"]
            # Only the Firehose S3 destination roles (L2 default grant on the capture bucket) have them.
            assert not wildcard or policy.startswith(("CaptureStreamS3DestinationRole", "LabelsStreamS3DestinationRole")), (
                name, policy, wildcard)


def test_put_metric_data_is_limited_to_the_sagemaker_namespace(default_app):
    for _, statement in policy_statements(default_app.training):
        if "cloudwatch:PutMetricData" in as_list(statement["Action"]):
            assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}}


def test_no_managed_policies_on_function_roles(default_app):
    for template in templates(default_app).values():
        for logical_id, role in resources(template, "AWS::IAM::Role").items():
            trusted = str(role["Properties"]["AssumeRolePolicyDocument"])
            if "lambda.amazonaws.com" in trusted:
                assert "ManagedPolicyArns" not in role["Properties"], logical_id
