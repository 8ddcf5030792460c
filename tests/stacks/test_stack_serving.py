"""Serving stack: image function, `live` alias and canary deployment, the API's routes and auth, request capture and
the labels stream of POST /feedback."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from inference.input_rules import edge_body_schemas
from tests.stacks.stack_helpers import (
    actions_of,
    as_list,
    flatten,
    function_by_command,
    only,
    resources,
    role_statements,
)

pytestmark = pytest.mark.slow

ROUTES = {("POST", "predict"), ("POST", "batch"), ("POST", "feedback"), ("GET", "health"), ("GET", "model-info"),
          ("GET", "docs"), ("GET", "openapi.json")}


@pytest.fixture(scope="module")
def function(default_app):
    return function_by_command(default_app.serving, "inference.app.handler")


def streams(template):
    """The Firehose streams by role: "capture" and "labels" → (logical id, properties)."""
    found = {}
    for logical_id, stream in resources(template, "AWS::KinesisFirehose::DeliveryStream").items():
        prefix = stream["Properties"]["ExtendedS3DestinationConfiguration"]["Prefix"]
        found["labels" if prefix.startswith("labels/") else "capture"] = (logical_id, stream["Properties"])
    assert len(found) == 2, found
    return found


def methods(template):
    """(HTTP method, last path part) → Method properties."""
    parts = {lid: r["Properties"]["PathPart"] for lid, r in resources(template, "AWS::ApiGateway::Resource").items()}
    return {(m["Properties"]["HttpMethod"], parts[m["Properties"]["ResourceId"]["Ref"]]): m["Properties"]
            for m in resources(template, "AWS::ApiGateway::Method").values()}


def test_inference_runs_from_the_image_with_the_configured_size(default_app, function):
    assert function["PackageType"] == "Image"
    assert function["MemorySize"] == 2048 and function["Timeout"] == 29
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert "ReservedConcurrentExecutions" not in function


def test_function_environment_follows_the_serving_contract(default_app, function):
    env = function["Environment"]["Variables"]
    assert {k: env[k] for k in ("MODEL_NAME", "MODEL_VERSION", "MODEL_DATA_URL", "MODEL_SHA256", "MODEL_PACKAGE_ARN",
                                "CAPTURE_SAMPLE_RATE", "MAX_BATCH", "MODEL_RETRY_SECONDS", "STRICT_CATEGORIES",
                                "SERVING_RUNTIME")} == {
        "MODEL_NAME": "breast-cancer", "MODEL_VERSION": "", "MODEL_DATA_URL": "", "MODEL_SHA256": "",
        "MODEL_PACKAGE_ARN": "", "CAPTURE_SAMPLE_RATE": "1.0", "MAX_BATCH": "1000", "MODEL_RETRY_SECONDS": "30",
        "STRICT_CATEGORIES": "false", "SERVING_RUNTIME": "auto"}
    found = streams(default_app.serving)
    assert env["CAPTURE_STREAM"] == {"Ref": found["capture"][0]}
    assert env["LABELS_STREAM"] == {"Ref": found["labels"][0]}
    assert env["FEEDBACK_MAX_LABELS"] == "1000"


def test_promoted_model_is_function_configuration(variant_app):
    env = function_by_command(variant_app.serving, "inference.app.handler")["Environment"]["Variables"]
    assert env["MODEL_DATA_URL"] == variant_app.config.model_data_url
    assert env["MODEL_SHA256"] == "ab" * 32 and env["MODEL_VERSION"] == "3"
    assert env["MODEL_PACKAGE_ARN"].endswith("model-package/breast-cancer/3")


def test_serving_settings_reach_the_server_as_it_reads_them(variant_app):
    """The context keys become the variables inference.settings reads, in a form it accepts."""
    from inference.settings import Settings

    env = function_by_command(variant_app.serving, "inference.app.handler")["Environment"]["Variables"]
    assert (env["STRICT_CATEGORIES"], env["SERVING_RUNTIME"], env["FEEDBACK_MAX_LABELS"]) == ("true", "onnxruntime", "200")
    settings = Settings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert settings.strict_categories is True and settings.runtime == "onnxruntime"
    assert settings.feedback_max_labels == 200


def test_live_alias_points_at_the_current_version(default_app):
    alias = only(default_app.serving, "AWS::Lambda::Alias")
    assert alias["Name"] == "live"
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [next(iter(resources(default_app.serving,
                                                                            "AWS::Lambda::Version"))), "Version"]}
    assert "ProvisionedConcurrencyConfig" not in alias


def test_concurrency_options(variant_app):
    alias = only(variant_app.serving, "AWS::Lambda::Alias")
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    assert function_by_command(variant_app.serving, "inference.app.handler")["ReservedConcurrentExecutions"] == 5


def test_canary_rolls_back_on_alarms_and_failures(default_app):
    group = only(default_app.serving, "AWS::CodeDeploy::DeploymentGroup")
    assert group["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    assert group["AlarmConfiguration"]["Enabled"] is True
    assert len(group["AlarmConfiguration"]["Alarms"]) == 3
    assert set(group["AutoRollbackConfiguration"]["Events"]) == {
        "DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"}
    assert group["AutoRollbackConfiguration"]["Enabled"] is True
    # CloudFormation hands alias updates to CodeDeploy instead of switching the alias at once.
    default_app.serving.has_resource("AWS::Lambda::Alias", {
        "UpdatePolicy": {"CodeDeployLambdaAliasUpdate": Match.object_like({})}})


def test_rollback_alarms_watch_the_alias_errors_and_p99(default_app):
    alarms = {a["Properties"]["MetricName"]: a["Properties"]
              for a in resources(default_app.serving, "AWS::CloudWatch::Alarm").values()}
    assert set(alarms) == {"Errors", "Duration", "PredictionErrors"}
    for alarm in (alarms["Errors"], alarms["Duration"]):
        dimensions = {d["Name"]: flatten(d["Value"]) for d in alarm["Dimensions"]}
        assert dimensions["Resource"].endswith(":live")
    assert alarms["Errors"]["Threshold"] == 1
    assert alarms["Errors"]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarms["Duration"]["ExtendedStatistic"] == "p99" and alarms["Duration"]["Threshold"] == 1000


def test_a_version_without_a_usable_model_rolls_back(default_app, variant_app):
    """503s are not Lambda errors: the model-unavailable count, with the dimensions the function emits, stops it."""
    for app in (default_app, variant_app):
        alarm = next(a["Properties"] for a in resources(app.serving, "AWS::CloudWatch::Alarm").values()
                     if a["Properties"]["MetricName"] == "PredictionErrors")
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "ModelName": app.config.model_name, "ModelVersion": app.config.model_version or "unknown",
            "ErrorKind": "model_unavailable", "service": "inference"}
        assert alarm["Namespace"] == "ServerlessMLOps" and alarm["Threshold"] == 1


def test_variant_canary_configuration(variant_app):
    group = only(variant_app.serving, "AWS::CodeDeploy::DeploymentGroup")
    assert group["DeploymentConfigName"] == "CodeDeployDefault.LambdaLinear10PercentEvery1Minute"


def test_routes_of_the_app_each_need_the_api_key(default_app):
    found = methods(default_app.serving)
    assert set(found) == ROUTES
    for props in found.values():
        assert props["ApiKeyRequired"] is True
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert "LiveAlias" in json.dumps(props["Integration"]["Uri"])


def test_post_bodies_are_validated_against_json_schema_models(default_app):
    found = methods(default_app.serving)
    validator = only(default_app.serving, "AWS::ApiGateway::RequestValidator")
    assert validator["ValidateRequestBody"] is True
    found_models = resources(default_app.serving, "AWS::ApiGateway::Model")
    models = {m["Properties"]["Name"]: m["Properties"] for m in found_models.values()}
    model_ids = {m["Properties"]["Name"]: lid for lid, m in found_models.items()}
    assert models["PredictRequest"]["Schema"]["required"] == ["features"]
    assert models["PredictRequest"]["Schema"]["properties"]["features"]["type"] == "object"
    assert models["BatchPredictRequest"]["Schema"]["required"] == ["instances"]
    assert models["BatchPredictRequest"]["Schema"]["properties"]["instances"]["type"] == "array"
    for route, model in ((("POST", "predict"), "PredictRequest"), (("POST", "batch"), "BatchPredictRequest")):
        assert "RequestValidatorId" in found[route]
        assert found[route]["RequestModels"] == {"application/json": {"Ref": model_ids[model]}}
    assert "RequestValidatorId" not in found[("GET", "health")]


def test_body_models_are_rendered_from_the_input_rules(default_app):
    models = {m["Properties"]["Name"]: m["Properties"]["Schema"]
              for m in resources(default_app.serving, "AWS::ApiGateway::Model").values()}
    assert (models["PredictRequest"], models["BatchPredictRequest"]) == edge_body_schemas()


def test_invalid_bodies_get_the_apps_error_shape(default_app):
    response = only(default_app.serving, "AWS::ApiGateway::GatewayResponse")
    assert response["ResponseType"] == "BAD_REQUEST_BODY"
    body = json.loads(response["ResponseTemplates"]["application/json"])
    assert body["detail"][0]["loc"] == ["body"]


def test_usage_plan_throttles_and_caps_each_key(default_app):
    plan = only(default_app.serving, "AWS::ApiGateway::UsagePlan")
    assert plan["Throttle"] == {"RateLimit": 50, "BurstLimit": 100}
    assert plan["Quota"] == {"Limit": 100000, "Period": "DAY"}
    assert len(resources(default_app.serving, "AWS::ApiGateway::ApiKey")) == 1
    assert len(resources(default_app.serving, "AWS::ApiGateway::UsagePlanKey")) == 1


def test_stage_throttles_traces_and_writes_json_access_logs(default_app):
    stage = only(default_app.serving, "AWS::ApiGateway::Stage")
    assert stage["TracingEnabled"] is True
    settings = stage["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] == 50 and settings["ThrottlingBurstLimit"] == 100
    assert settings["LoggingLevel"] == "ERROR" and settings["DataTraceEnabled"] is False
    fields = json.loads(stage["AccessLogSetting"]["Format"])
    assert fields["requestId"] == "$context.requestId" and fields["status"] == "$context.status"
    assert len(resources(default_app.serving, "AWS::ApiGateway::Account")) == 1  # the CloudWatch role


DOCS = {("GET", "docs"), ("GET", "openapi.json")}


def test_iam_mode_signs_every_route_but_the_public_docs_and_has_no_keys(variant_app):
    found = methods(variant_app.serving)
    assert set(found) == ROUTES
    assert all(p["AuthorizationType"] == "AWS_IAM" and not p.get("ApiKeyRequired")
               for route, p in found.items() if route not in DOCS)
    assert all(found[route]["AuthorizationType"] == "NONE" for route in DOCS)  # public_docs
    assert not resources(variant_app.serving, "AWS::ApiGateway::UsagePlan")
    assert "ApiKeyId" not in variant_app.serving.find_outputs("*")


def test_feedback_takes_the_same_auth_as_predict_in_both_modes(default_app, variant_app):
    for app, expected in ((default_app, {"ApiKeyRequired": True}), (variant_app, {"AuthorizationType": "AWS_IAM"})):
        found = methods(app.serving)
        feedback, predict = found[("POST", "feedback")], found[("POST", "predict")]
        for key in ("ApiKeyRequired", "AuthorizationType"):
            assert feedback.get(key) == predict.get(key), (key, feedback.get(key))
        assert {key: feedback.get(key) for key in expected} == expected
        assert "LiveAlias" in json.dumps(feedback["Integration"]["Uri"])
        assert "RequestValidatorId" not in feedback  # the app checks the body and names the field and the row


def test_capture_stream_writes_gzip_hourly_partitions_under_the_model(default_app):
    stream = streams(default_app.serving)["capture"][1]
    assert stream["DeliveryStreamType"] == "DirectPut"
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    s3 = stream["ExtendedS3DestinationConfiguration"]
    assert s3["Prefix"] == "capture/breast-cancer/!{timestamp:yyyy/MM/dd/HH}/"
    assert s3["ErrorOutputPrefix"].startswith("capture-errors/breast-cancer/")
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 5}
    assert "CaptureBucketArn" in json.dumps(s3["BucketARN"])


def test_the_capture_stream_keeps_its_logical_ids(default_app):
    """The construct serves both streams now; the deployed capture stream and its role are not replaced."""
    capture_id, _ = streams(default_app.serving)["capture"]
    assert capture_id.startswith("CaptureStream")
    roles = resources(default_app.serving, "AWS::IAM::Role")
    assert any(lid.startswith("CaptureStreamS3DestinationRole") for lid in roles)
    assert any(lid.startswith("LabelsStreamS3DestinationRole") for lid in roles)


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_labels_stream_writes_gzip_hourly_partitions_under_feedback(request, which):
    synthesized = request.getfixturevalue(which)
    model = synthesized.config.model_name
    _, stream = streams(synthesized.serving)["labels"]
    assert stream["DeliveryStreamType"] == "DirectPut"
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    s3 = stream["ExtendedS3DestinationConfiguration"]
    # Where the model-quality check lists Firehose's labels: names.feedback_prefix + the hourly partition.
    assert s3["Prefix"] == f"labels/{model}/feedback/!{{timestamp:yyyy/MM/dd/HH}}/"
    assert s3["ErrorOutputPrefix"] == (f"label-errors/{model}/!{{firehose:error-output-type}}/"
                                       "!{timestamp:yyyy/MM/dd/HH}/")
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 5}
    assert "CaptureBucketArn" in json.dumps(s3["BucketARN"])


def test_inference_role_can_read_models_and_put_batches_on_its_two_streams_only(default_app):
    statements = role_statements(default_app.serving, "InferenceRole")
    actions = actions_of(statements)
    assert {a for a in actions if a.startswith(("s3:", "firehose:"))} == {"s3:GetObject", "firehose:PutRecordBatch"}
    get = [s for s in statements if "s3:GetObject" in as_list(s["Action"])]
    assert flatten(get[0]["Resource"]).endswith("/models/breast-cancer/*")
    found = streams(default_app.serving)
    puts = [s for s in statements if any(a.startswith("firehose:") for a in as_list(s["Action"]))]
    assert all(as_list(s["Action"]) == ["firehose:PutRecordBatch"] for s in puts)
    targets = [r["Fn::GetAtt"] for s in puts for r in as_list(s["Resource"])]
    assert sorted(targets) == sorted([[found["capture"][0], "Arn"], [found["labels"][0], "Arn"]])


def test_outputs_for_clients_and_promotion(default_app):
    outputs = default_app.serving.find_outputs("*")
    assert {"ApiUrl", "ApiKeyId", "FunctionName", "AliasArn", "CaptureStreamName", "LabelsStreamName",
            "DeploymentApplicationName", "DeploymentGroupName"} <= set(outputs)
    assert outputs["LabelsStreamName"]["Value"] == {"Ref": streams(default_app.serving)["labels"][0]}
