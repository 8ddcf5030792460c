"""public_docs with the default auth (API key): the docs open to a browser, every other route keeps the key.

The iam variant and the default deployment are covered by test_stack_serving.py; this builds the API alone,
in front of a stand-in function, so the third combination costs no image or full-app synthesis.
"""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from stacks.config import Config
from stacks.prediction_api import DOC_PATHS, PredictionApi
from tests.stacks.stack_helpers import resources

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def apis() -> dict[str, PredictionApi]:
    """One stack per auth mode, each an API with public_docs in front of a stand-in function."""
    app = cdk.App()
    built = {}
    for auth_mode in ("api_key", "iam"):
        stack = cdk.Stack(app, auth_mode.replace("_", "-"))
        function = lambda_.Function(stack, "Stand-in", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
                                    code=lambda_.Code.from_inline("def handler(event, context): pass"))
        alias = lambda_.Alias(stack, "Live", alias_name="live", version=function.current_version)
        built[auth_mode] = PredictionApi(stack, "Prediction", config=Config(public_docs=True, auth_mode=auth_mode),
                                         alias=alias, log_retention=logs.RetentionDays.ONE_DAY)
    return built


def methods(template: Template) -> dict[str, dict]:
    parts = {lid: r["Properties"]["PathPart"] for lid, r in resources(template, "AWS::ApiGateway::Resource").items()}
    return {parts[m["Properties"]["ResourceId"]["Ref"]]: m["Properties"]
            for m in resources(template, "AWS::ApiGateway::Method").values()}


def test_only_the_docs_are_served_without_the_key(apis):
    found = methods(Template.from_stack(cdk.Stack.of(apis["api_key"])))
    assert set(DOC_PATHS) < set(found)
    for path, props in found.items():
        public = path in DOC_PATHS
        assert props["ApiKeyRequired"] is not public, path
        assert props["AuthorizationType"] == "NONE", path  # api_key mode: the key is the auth


def test_the_open_methods_are_acknowledged_on_themselves(apis):
    """In iam mode nothing else acknowledges an unauthenticated method (APIG4): the docs' own acknowledgment does."""
    api = apis["iam"]
    report = AwsSolutionsChecks().validate_scope(api)
    assert report.success, [v.rule_name for v in report.violations]
    assert len(api.public_methods) == len(DOC_PATHS)
    for method in api.public_methods:
        rules = {rule.removeprefix("Annotation::") for entry in method.node.metadata
                 if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY for rule in entry.data}
        assert rules == {"AwsSolutions-APIG4", "AwsSolutions-COG4"}, method.node.path
