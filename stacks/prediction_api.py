"""The REST API in front of the inference alias: routes, body validation, auth, throttling, access logs."""
from __future__ import annotations

import json
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from inference.input_rules import DRAFT4, edge_body_schemas
from stacks.config import Config
from stacks.nag import acknowledge

STAGE = "prod"
# (method, path, request body model or None): the FastAPI app's routes.
ROUTES = (
    ("POST", "predict", "PredictRequest"),
    ("POST", "predict/batch", "BatchPredictRequest"),
    # Labels: one object or an array, a shape the edge's draft-4 models cannot state with the app's messages;
    # the app checks the body (400/413/422 naming the field and the row).
    ("POST", "feedback", None),
    ("GET", "health", None),
    ("GET", "model-info", None),
    ("GET", "docs", None),
    ("GET", "openapi.json", None),
)
# The interactive docs: without auth when public_docs is set, so a browser (which sends no API key) can read them.
DOC_PATHS = ("docs", "openapi.json")
PUBLIC_DOCS_REASON = ("public_docs is set: the OpenAPI document and its page are public by choice; they hold the "
                      "feature schema, no data, and the stage throttles them.")
# The body models, in the order of edge_body_schemas(): only the body's shape is checked at the edge,
# the app checks the features against the model's schema.
BODY_MODELS = ("PredictRequest", "BatchPredictRequest")
# Same shape as the app's 422 body (ErrorResponse), so clients parse one error format.
BAD_BODY_TEMPLATE = json.dumps({"detail": [{"loc": ["body"], "msg": "$context.error.validationErrorString",
                                            "type": "request_validation"}]})


class PredictionApi(Construct):
    """API Gateway REST API → the `live` alias, with the auth mode from the configuration."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, alias: lambda_.IAlias,
                 log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention,
                                         removal_policy=RemovalPolicy.DESTROY)
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=f"{config.project_name}-api",
            description=f"Predictions from the {config.model_name} model",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            default_method_options=_method_options(config.auth_mode),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # would log request bodies (the features) in execution logs
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=_access_log_format(),
            ),
        )
        self.api.add_gateway_response("BadRequestBody", type=apigw.ResponseType.BAD_REQUEST_BODY,
                                      status_code="400", templates={"application/json": BAD_BODY_TEMPLATE})
        self._add_routes(alias, public_docs=config.public_docs)
        self.api_key = self._add_usage_plan(config) if config.auth_mode == "api_key" else None
        self._acknowledge(config)

    def _add_routes(self, alias: lambda_.IAlias, *, public_docs: bool) -> None:
        integration = apigw.LambdaIntegration(alias, allow_test_invoke=False)
        self.validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True)
        models = {name: self.api.add_model(name, content_type="application/json", model_name=name,
                                           schema=_cdk_schema(schema))
                  for name, schema in zip(BODY_MODELS, edge_body_schemas(), strict=True)}
        self.prediction_methods: list[apigw.Method] = []  # the routes with a body: what clients send features to
        self.public_methods: list[apigw.Method] = []  # the docs, when public_docs opens them
        for method, path, model in ROUTES:
            resource = self.api.root.resource_for_path(path)
            if public_docs and path in DOC_PATHS:
                public = resource.add_method(method, integration, authorization_type=apigw.AuthorizationType.NONE,
                                             api_key_required=False)
                self.public_methods.append(public)
                acknowledge(public, "AwsSolutions-APIG4", PUBLIC_DOCS_REASON)
                acknowledge(public, "AwsSolutions-COG4", PUBLIC_DOCS_REASON)
            elif model is None:
                resource.add_method(method, integration)
            else:
                self.prediction_methods.append(resource.add_method(
                    method, integration, request_validator=self.validator,
                    request_models={"application/json": models[model]}))

    def _add_usage_plan(self, config: Config) -> apigw.IApiKey:
        key = self.api.add_api_key("ApiKey", description=f"{config.project_name} prediction API key")
        plan = self.api.add_usage_plan(
            "UsagePlan",
            name=f"{config.project_name}-usage-plan",
            throttle=apigw.ThrottleSettings(rate_limit=config.throttle_rate_limit,
                                            burst_limit=config.throttle_burst_limit),
            quota=apigw.QuotaSettings(limit=config.quota_per_day, period=apigw.Period.DAY),
        )
        plan.add_api_stage(stage=self.api.deployment_stage)
        plan.add_api_key(key)
        return key

    def _acknowledge(self, config: Config) -> None:
        acknowledge(self.api, "AwsSolutions-APIG3",
                    "No WAF: the stage and usage plan throttle every caller and the API serves no browser "
                    "sessions; add a web ACL when the API is exposed beyond known clients.")
        if config.auth_mode != "iam":
            reason = ("Callers authenticate with an API key tied to a usage plan (throttle, quota), not a user pool."
                      if config.auth_mode == "api_key" else
                      "auth_mode 'none' was set explicitly in the configuration: an open API by choice.")
            acknowledge(self.api, "AwsSolutions-APIG4", reason)
            acknowledge(self.api, "AwsSolutions-COG4", reason)
        else:
            acknowledge(self.api, "AwsSolutions-COG4", "Callers sign requests with IAM (SigV4), not a user pool.")
        acknowledge(self.api, "AwsSolutions-IAM4",
                    "API Gateway's account-level CloudWatch role uses the AWS-managed push-to-logs policy, "
                    "the documented way to enable stage logging.",
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")


def _method_options(auth_mode: str) -> apigw.MethodOptions:
    if auth_mode == "api_key":
        return apigw.MethodOptions(api_key_required=True)
    if auth_mode == "iam":
        return apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM)
    return apigw.MethodOptions(authorization_type=apigw.AuthorizationType.NONE)


def _cdk_schema(doc: dict[str, Any]) -> apigw.JsonSchema:
    """A JSON Schema as CDK's JsonSchema; a keyword not mapped here fails the synth rather than going unchecked."""
    args: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "$schema":
            args["schema"] = {DRAFT4: apigw.JsonSchemaVersion.DRAFT4}[value]
        elif key == "type":
            args["type"] = apigw.JsonSchemaType[value.upper()]
        elif key == "properties":
            args["properties"] = {name: _cdk_schema(sub) for name, sub in value.items()}
        elif key == "items":
            args["items"] = _cdk_schema(value)
        elif key == "required":
            args["required"] = list(value)
        else:
            raise ValueError(f"no CDK mapping for the JSON Schema keyword {key!r}")
    return apigw.JsonSchema(**args)


def _access_log_format() -> apigw.AccessLogFormat:
    """One JSON object per request (CloudWatch Logs Insights parses the fields)."""
    f = apigw.AccessLogField
    return apigw.AccessLogFormat.custom(json.dumps({
        "requestId": f.context_request_id(),
        "requestTime": f.context_request_time(),
        "httpMethod": f.context_http_method(),
        "resourcePath": f.context_resource_path(),
        "status": f.context_status(),
        "responseLength": f.context_response_length(),
        "latencyMs": f.context_response_latency(),
        "integrationLatencyMs": f.context_integration_latency(),
        "integrationStatus": f.context_integration_status(),
        "error": f.context_error_message(),
        "apiKeyId": f.context_identity_api_key_id(),
        "sourceIp": f.context_identity_source_ip(),
        "xrayTraceId": f.context_xray_trace_id(),
    }))
