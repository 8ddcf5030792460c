"""The scheduled model-quality check in the monitoring stack: function, schedule, least-privilege grants, the
ModelQuality alarm, the quality → retrain rule, dashboard widgets, the output."""
from __future__ import annotations

import json

import pytest

from contracts import metric_names as mn
from contracts.names import Output
from tests.stacks.stack_helpers import (
    actions_of,
    as_list,
    dashboard_body,
    function_by_command,
    resources,
    role_statements,
    s3_grants,
    with_refs,
)

pytestmark = pytest.mark.slow

MODEL = "breast-cancer"
HANDLER = "drift_check.quality_check.handler"
ROLE = "ModelQualityCheckFunctionRole"


def by_prefix(template, kind: str, prefix: str) -> dict:
    (found,) = [r["Properties"] for lid, r in resources(template, kind).items() if lid.startswith(prefix)]
    return found


def test_the_check_runs_alone_from_the_image_with_its_dead_letters(default_app):
    function = function_by_command(default_app.monitoring, HANDLER)
    assert function["PackageType"] == "Image"
    assert function["ReservedConcurrentExecutions"] == 1  # runs share a checkpoint
    assert function["Timeout"] == 900 and function["MemorySize"] == 2048
    assert "DeadLetters" in json.dumps(function["DeadLetterConfig"])
    invoke = by_prefix(default_app.monitoring, "AWS::Lambda::EventInvokeConfig", "ModelQualityCheck")
    assert invoke["MaximumRetryAttempts"] == 2


def test_default_environment_follows_the_configuration(default_app):
    env = function_by_command(default_app.monitoring, HANDLER)["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "model-quality" and env["MODEL_NAME"] == MODEL
    assert (env["MODEL_DATA_URL"], env["MODEL_SHA256"], env["MODEL_VERSION"]) == ("", "", "")
    assert (env["MODEL_QUALITY_WINDOW_HOURS"], env["MODEL_QUALITY_HORIZON_DAYS"], env["MODEL_QUALITY_MIN_LABELS"],
            env["MODEL_QUALITY_TOLERANCE"], env["MODEL_QUALITY_FLOORS"]) == ("24", "14", "100", "0.05", "{}")
    assert "CaptureBucketName" in json.dumps(env["CAPTURE_BUCKET"])
    assert "ReportsBucketName" in json.dumps(env["REPORTS_BUCKET"])


def test_variant_environment_and_memory(variant_app):
    function = function_by_command(variant_app.monitoring, HANDLER)
    env = function["Environment"]["Variables"]
    assert function["MemorySize"] == 4096
    assert (env["MODEL_QUALITY_WINDOW_HOURS"], env["MODEL_QUALITY_HORIZON_DAYS"], env["MODEL_QUALITY_MIN_LABELS"],
            env["MODEL_QUALITY_TOLERANCE"]) == ("12", "30", "250", "0.02")
    assert json.loads(env["MODEL_QUALITY_FLOORS"]) == {"accuracy": 0.8, "roc_auc": 0.9}
    assert env["MODEL_VERSION"] == "3" and env["MODEL_SHA256"] == "ab" * 32
    assert env["MODEL_DATA_URL"].endswith("/model.tar.gz")


def test_its_own_schedule_with_retries_and_dead_letters(default_app, variant_app):
    rule = by_prefix(default_app.monitoring, "AWS::Events::Rule", "ModelQualityCheckSchedule")
    assert rule["ScheduleExpression"] == "rate(1 day)"
    (target,) = rule["Targets"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert "DeadLetters" in json.dumps(target["DeadLetterConfig"])
    assert "ModelQualityCheckFunction" in json.dumps(target["Arn"])
    variant = by_prefix(variant_app.monitoring, "AWS::Events::Rule", "ModelQualityCheckSchedule")
    assert variant["ScheduleExpression"] == "rate(6 hours)"


def test_s3_grants_are_exactly_its_prefixes(default_app):
    statements = role_statements(default_app.monitoring, ROLE)
    assert s3_grants(statements) == {
        "s3:GetObject": {f"<CaptureBucketArn>/capture/{MODEL}/*", f"<CaptureBucketArn>/labels/{MODEL}/*",
                         f"<ReportsBucketArn>/quality/{MODEL}/*", f"<ArtifactsBucketArn>/models/{MODEL}/*"},
        "s3:PutObject": {f"<ReportsBucketArn>/quality/{MODEL}/*"},
        "s3:AbortMultipartUpload": {f"<ReportsBucketArn>/quality/{MODEL}/*"},
        # Listing: its capture and label folders, and its own reports (a missing checkpoint is found by listing).
        "s3:ListBucket": {f"<CaptureBucketArn>?prefix=capture/{MODEL}/*", f"<CaptureBucketArn>?prefix=labels/{MODEL}/*",
                          f"<ReportsBucketArn>?prefix=quality/{MODEL}/*"},
    }


def test_registry_access_is_the_models_package_group(default_app):
    statements = role_statements(default_app.monitoring, ROLE)
    sagemaker = [s for s in statements if any(a.startswith("sagemaker:") for a in as_list(s["Action"]))]
    scoped = next(s for s in sagemaker if "sagemaker:DescribeModelPackage" in as_list(s["Action"]))
    assert set(as_list(scoped["Action"])) == {"sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"}
    resources_ = {with_refs(r) for r in as_list(scoped["Resource"])}
    assert any(r.endswith(f":model-package-group/{MODEL}") for r in resources_)
    assert any(r.endswith(f":model-package/{MODEL}/*") for r in resources_) and len(resources_) == 2
    listing = next(s for s in sagemaker if "sagemaker:ListModelPackages" in as_list(s["Action"]))
    # ListModelPackages supports no resource-level permissions (CDK merges it with X-Ray's statement on "*").
    assert listing["Resource"] == "*"
    assert [a for a in as_list(listing["Action"]) if a.startswith("sagemaker:")] == ["sagemaker:ListModelPackages"]
    assert actions_of(statements) & {"sagemaker:UpdateModelPackage", "sagemaker:CreateModelPackage"} == set()


def test_it_may_send_to_the_encrypted_dead_letter_queue(default_app):
    statements = role_statements(default_app.monitoring, ROLE)
    assert any(s["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and "AlarmsKey" in json.dumps(s["Resource"])
               for s in statements)


def test_the_alarm_watches_the_verdict_per_model(default_app):
    alarm = by_prefix(default_app.monitoring, "AWS::CloudWatch::Alarm", "ModelQuality")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (mn.NAMESPACE, mn.QUALITY_DEGRADED,
                                                                             "Maximum")
    assert alarm["Dimensions"] == [{"Name": mn.DIM_MODEL_NAME, "Value": MODEL}]
    assert alarm["Threshold"] == mn.QUALITY_ALARM_THRESHOLD
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["EvaluationPeriods"] == 1
    # A run without a verdict keeps the state; one day is CloudWatch's longest period.
    assert alarm["Period"] == 86400 and alarm["TreatMissingData"] == "ignore"
    topic = next(iter(resources(default_app.monitoring, "AWS::SNS::Topic")))
    assert alarm["AlarmActions"] == [{"Ref": topic}] and alarm["OKActions"] == [{"Ref": topic}]


def test_the_alarm_period_follows_the_schedule(variant_app):
    assert by_prefix(variant_app.monitoring, "AWS::CloudWatch::Alarm", "ModelQuality")["Period"] == 6 * 3600


def test_quality_alarm_starts_retraining_only_when_configured(default_app, variant_app):
    assert not [lid for lid in resources(default_app.monitoring, "AWS::Events::Rule") if lid.startswith("Retrain")]
    rule = by_prefix(variant_app.monitoring, "AWS::Events::Rule", "RetrainOnQuality")
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"] and pattern["detail"] == {"state": {"value": ["ALARM"]}}
    (alarm_id,) = [lid for lid in resources(variant_app.monitoring, "AWS::CloudWatch::Alarm")
                   if lid.startswith("ModelQuality")]
    assert pattern["resources"] == [{"Fn::GetAtt": [alarm_id, "Arn"]}]
    (target,) = rule["Targets"]
    assert "StateMachine" in json.dumps(target["Arn"])
    run_input = json.loads(with_refs(target["Input"]))
    assert run_input["trigger"] == "quality-alarm" and run_input["model_name"] == MODEL
    assert run_input["target"] == "diagnosis" and run_input["data_uri"].endswith(f"datasets/{MODEL}/train.csv")


def test_dashboard_shows_realized_vs_estimated_labels_and_the_alarm(default_app, variant_app):
    widgets = dashboard_body(default_app.monitoring)["widgets"]
    by_title = {w["properties"].get("title"): w for w in widgets}
    quality = json.dumps(by_title["Model quality: realized vs estimated every metric (per version)"])
    for metric in (mn.QUALITY_REALIZED, mn.QUALITY_ESTIMATED):
        assert f'MetricName=\\"{metric}\\" {mn.DIM_MODEL_NAME}=\\"{MODEL}\\"' in quality
    labels = json.dumps(by_title["Labels: coverage (share of predictions labelled) and delay (median hours)"])
    assert f'MetricName=\\"{mn.LABEL_COVERAGE}\\"' in labels and f'MetricName=\\"{mn.LABEL_DELAY_HOURS}\\"' in labels
    alarm = by_title["ModelQuality alarm (1 = a version's latest verdict is degraded)"]
    assert alarm["properties"]["annotations"]["alarms"]
    runs = json.dumps(by_title["Model-quality check runs; unmatched and invalid labels"])
    assert mn.LABELS_UNMATCHED in runs and mn.LABELS_INVALID in runs and "Invocations" in runs
    # The variant's task is binary: the graph shows its primary metric, roc_auc.
    variant = {w["properties"].get("title"): w for w in dashboard_body(variant_app.monitoring)["widgets"]}
    assert f'{mn.DIM_METRIC}=\\"roc_auc\\"' in json.dumps(
        variant["Model quality: realized vs estimated roc_auc (per version)"])


def test_the_function_name_is_an_output(default_app):
    outputs = default_app.monitoring.find_outputs(Output.QUALITY_CHECK_FUNCTION)
    assert "ModelQualityCheckFunction" in json.dumps(outputs)
