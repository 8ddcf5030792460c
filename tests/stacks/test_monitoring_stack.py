"""Monitoring stack: scheduled drift check, dead letters, alarms to SNS, the dashboard, drift → retrain."""
from __future__ import annotations

import json

import pytest

from contracts import metric_names
from tests.stacks.stack_helpers import (
    dashboard_body,
    function_by_command,
    only,
    resources,
    role_statements,
    s3_grants,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drift_function(default_app):
    return function_by_command(default_app.monitoring, "drift_check.app.handler")


@pytest.fixture(scope="module")
def alarms(default_app):
    return {lid: a["Properties"] for lid, a in resources(default_app.monitoring, "AWS::CloudWatch::Alarm").items()}


def alarm(alarms, prefix):
    found = [props for lid, props in alarms.items() if lid.startswith(prefix)]
    assert len(found) == 1, prefix
    return found[0]


def rule_by_id(template, prefix):
    (rule,) = [r["Properties"] for lid, r in resources(template, "AWS::Events::Rule").items() if lid.startswith(prefix)]
    return rule


def test_schedule_runs_the_drift_check_with_retries_and_dead_letters(default_app):
    rule = rule_by_id(default_app.monitoring, "DriftSchedule")
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    target = rule["Targets"][0]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert "DeadLetters" in json.dumps(target["DeadLetterConfig"])


def test_drift_check_runs_alone_from_the_image(default_app, drift_function):
    assert drift_function["PackageType"] == "Image"
    assert drift_function["ReservedConcurrentExecutions"] == 1
    assert drift_function["Timeout"] == 600 and drift_function["MemorySize"] == 2048
    assert "DeadLetters" in json.dumps(drift_function["DeadLetterConfig"])
    (invoke,) = [c["Properties"] for lid, c in resources(default_app.monitoring, "AWS::Lambda::EventInvokeConfig").items()
                 if lid.startswith("DriftCheck")]
    assert invoke["MaximumRetryAttempts"] == 2


def test_drift_check_environment_follows_its_contract(drift_function):
    env = drift_function["Environment"]["Variables"]
    # Where it reads and writes follows from MODEL_NAME (contracts.names): no prefix or key to keep in step.
    assert env["MODEL_NAME"] == "breast-cancer" and not {"CAPTURE_PREFIX", "CHECKPOINT_KEY"} & set(env)
    assert env["MIN_ROWS"] == "500" and env["MODEL_DATA_URL"] == "" and env["MODEL_SHA256"] == ""
    assert "CaptureBucketName" in json.dumps(env["CAPTURE_BUCKET"])
    assert "ReportsBucketName" in json.dumps(env["REPORTS_BUCKET"])


def test_drift_check_reads_capture_and_writes_only_its_reports(default_app):
    statements = role_statements(default_app.monitoring, "DriftCheckRole")
    puts = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert len(puts) == 1 and json.dumps(puts[0]["Resource"]).endswith('"/drift/breast-cancer/*"]]}')
    # No listing of a whole bucket: a checkpoint not written yet is found by listing its own prefix.
    assert s3_grants(statements)["s3:ListBucket"] == {"<CaptureBucketArn>?prefix=capture/breast-cancer/*",
                                                      "<ReportsBucketArn>?prefix=drift/breast-cancer/*"}


def test_dead_letter_queue_is_encrypted_and_ssl_only(default_app):
    queue = only(default_app.monitoring, "AWS::SQS::Queue")
    # The alarm topic's customer key, which both writers of dead letters may use.
    key_id = queue["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert key_id.startswith("AlarmsKey")
    key_policy = resources(default_app.monitoring, "AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s["Principal"] == {"Service": "events.amazonaws.com"} and "kms:GenerateDataKey" in s["Action"]
               for s in key_policy)
    assert any(s["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and s["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
               for s in role_statements(default_app.monitoring, "DriftCheckRole"))
    statements = only(default_app.monitoring, "AWS::SQS::QueuePolicy")["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)


def test_dataset_drift_alarm_watches_the_drift_metric_per_model(alarms):
    drift = alarm(alarms, "DatasetDrift")
    assert (drift["Namespace"], drift["MetricName"]) == (metric_names.NAMESPACE, metric_names.DRIFT_DATASET)
    assert drift["Dimensions"] == [{"Name": metric_names.DIM_MODEL_NAME, "Value": "breast-cancer"}]
    assert drift["Threshold"] == 1 and drift["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # A pooled run publishes no verdict: the alarm keeps the last one instead of flapping to OK and back.
    assert drift["Period"] == 3600 and drift["TreatMissingData"] == "ignore"
    assert drift["OKActions"]  # the all-clear is sent too


def test_api_and_lambda_alarms_use_the_configured_thresholds(alarms):
    error_rate = alarm(alarms, "Api5xxRate")
    assert error_rate["Threshold"] == 1.0
    expression = next(m for m in error_rate["Metrics"] if "Expression" in m)["Expression"]
    assert "100 * errors / requests" in expression
    assert alarm(alarms, "ApiLatencyP99")["ExtendedStatistic"] == "p99"
    assert alarm(alarms, "ApiLatencyP99")["Threshold"] == 1000
    assert alarm(alarms, "InferenceErrors")["MetricName"] == "Errors"
    assert alarm(alarms, "InferenceThrottles")["MetricName"] == "Throttles"
    assert alarm(alarms, "TrainingFailed")["MetricName"] == "ExecutionsFailed"
    assert alarm(alarms, "DriftCheckErrors")["MetricName"] == "Errors"


def test_a_failed_batch_job_alarms(default_app, alarms):
    batch = alarm(alarms, "BatchJobFailed")
    assert (batch["Namespace"], batch["MetricName"], batch["Statistic"]) == ("AWS/States", "ExecutionsFailed", "Sum")
    assert batch["Threshold"] == 1 and batch["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert batch["Period"] == 300 and batch["EvaluationPeriods"] == 1
    (dimension,) = batch["Dimensions"]
    assert dimension["Name"] == "StateMachineArn"
    assert default_app.stacks.batch.stack_name in json.dumps(dimension["Value"])  # the batch stack's state machine


def test_a_failed_or_timed_out_drift_fan_out_alarms(default_app, alarms):
    """A timed-out execution never reaches Release or its Fail state: ExecutionsFailed alone would not count it."""
    fanout = alarm(alarms, "DriftFanoutFailed")
    assert fanout["Threshold"] == 1 and fanout["EvaluationPeriods"] == 1
    stats = {m["Id"]: m["MetricStat"] for m in fanout["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"ExecutionsFailed", "ExecutionsTimedOut"}
    for stat in stats.values():
        assert (stat["Metric"]["Namespace"], stat["Stat"], stat["Period"]) == ("AWS/States", "Sum", 300)
        (dimension,) = stat["Metric"]["Dimensions"]
        assert dimension["Name"] == "StateMachineArn" and "DriftFanoutStateMachine" in json.dumps(dimension["Value"])
    expression = next(m for m in fanout["Metrics"] if "Expression" in m)["Expression"]
    assert expression == "FILL(failed, 0) + FILL(timed_out, 0)"


def test_every_alarm_notifies_the_encrypted_topic(default_app, alarms):
    topic_id = next(iter(resources(default_app.monitoring, "AWS::SNS::Topic")))
    # 9 + drift fan-out failed + model quality + data quality, 4xx rate, capture dropped, capture silent, labels
    # undelivered (tests/stacks/test_input_alarms.py)
    assert len(alarms) == 16
    for props in alarms.values():
        assert props["AlarmActions"] == [{"Ref": topic_id}]
    assert "KmsMasterKeyId" in only(default_app.monitoring, "AWS::SNS::Topic")
    key_policy = json.dumps(only(default_app.monitoring, "AWS::KMS::Key")["KeyPolicy"])
    assert "cloudwatch.amazonaws.com" in key_policy
    assert not resources(default_app.monitoring, "AWS::SNS::Subscription")


def test_alarm_email_is_subscribed_when_configured(variant_app):
    variant_app.monitoring.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "ops@example.com"})


def test_dashboard_shows_traffic_latency_errors_predictions_drift_and_training(default_app):
    widgets = dashboard_body(default_app.monitoring)["widgets"]
    titles = {w["properties"].get("title") for w in widgets}
    assert {"Requests", "API latency (ms)", "Inference errors and throttles", "Cold starts", "Predictions by class",
            "Drift: drifted feature share and dataset drift", "Training runs", "Alarms"} <= titles
    body = json.dumps(widgets)
    assert f'MetricName=\\"{metric_names.PREDICTIONS_BY_CLASS}\\"' in body
    assert "SORT(SEARCH(" in body and f'MetricName=\\"{metric_names.DRIFT_FEATURE_PSI}\\"' in body
    latency = next(w for w in widgets if w["properties"].get("title") == "API latency (ms)")
    stats = {m[-1].get("stat") for m in latency["properties"]["metrics"] if isinstance(m[-1], dict)}
    assert {"p50", "p95", "p99"} <= stats


def test_dashboard_shows_refused_requests_by_kind_and_capture(default_app):
    """operations.md points at these when a drift alarm may be a broken client."""
    widgets = dashboard_body(default_app.monitoring)["widgets"]
    by_title = {w["properties"].get("title"): w for w in widgets}
    refused = json.dumps(by_title[f"Refused requests by kind ({metric_names.DIM_ERROR_KIND})"])
    assert f'MetricName=\\"{metric_names.PREDICTION_ERRORS}\\" {metric_names.DIM_MODEL_NAME}=\\"breast-cancer\\"' in refused
    capture = json.dumps(by_title["Capture records sent and dropped"])
    assert all(f'MetricName=\\"{m}\\"' in capture for m in (metric_names.CAPTURE_SENT, metric_names.CAPTURE_DROPPED))


def test_dashboard_shows_batch_jobs_rows_and_duration(default_app):
    widgets = dashboard_body(default_app.monitoring)["widgets"]
    by_title = {w["properties"].get("title"): w for w in widgets}
    assert {"Batch jobs", "Batch rows scored and refused", "Batch job duration"} <= set(by_title)
    jobs = json.dumps(by_title["Batch jobs"])
    assert all(f'"{m}"' in jobs for m in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"))
    rows = json.dumps(by_title["Batch rows scored and refused"])
    for metric in (metric_names.BATCH_ROWS, metric_names.BATCH_ROW_ERRORS, metric_names.BATCH_PARTS_FAILED):
        assert f'MetricName=\\"{metric}\\" {metric_names.DIM_MODEL_NAME}=\\"breast-cancer\\"' in rows, metric
    assert f'MetricName=\\"{metric_names.BATCH_DURATION}\\"' in json.dumps(by_title["Batch job duration"])


def test_no_retraining_rule_unless_configured(default_app):
    rules = resources(default_app.monitoring, "AWS::Events::Rule").values()
    assert len(rules) == 2 and all("ScheduleExpression" in r["Properties"] for r in rules)  # the two checks'


def test_drift_alarm_starts_retraining_when_configured(variant_app):
    rules = [rule_by_id(variant_app.monitoring, "RetrainOnDrift")]
    pattern = rules[0]["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"] and pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    target = rules[0]["Targets"][0]
    assert "StateMachine" in json.dumps(target["Arn"])
    run_input = json.dumps(target["Input"])
    assert "datasets/breast-cancer/train.csv" in run_input and '\\"target\\":\\"diagnosis\\"' in run_input
    assert '\\"trigger\\":\\"drift-alarm\\"' in run_input


def test_variant_schedule_sets_the_drift_alarm_period(variant_app):
    rule = rule_by_id(variant_app.monitoring, "DriftSchedule")
    assert rule["ScheduleExpression"] == "rate(30 minutes)"
    drift = next(a["Properties"] for lid, a in resources(variant_app.monitoring, "AWS::CloudWatch::Alarm").items()
             if lid.startswith("DatasetDrift"))
    assert drift["Period"] == 1800
