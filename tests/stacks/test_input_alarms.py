"""Alarms on what comes in: data quality, the 4xx share, capture dropped or silent, labels undelivered; their
thresholds from the configuration (default and variant deployments), and none on capture when capture is off."""
from __future__ import annotations

import json
import math
import tempfile

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from contracts import metric_names
from stacks.app_stacks import build_stacks
from stacks.config import CLIENT_ERROR_MIN_REQUESTS, MIN_EXPECTED_CAPTURES, Config
from tests.stacks.stack_helpers import REPO, dashboard_body, function_by_command, only, resources

pytestmark = pytest.mark.slow

# The dimensions the inference function publishes its metrics with (tests/inference/test_capture.py checks the EMF).
SERVING_DIMENSIONS = {metric_names.DIM_MODEL_NAME, metric_names.DIM_MODEL_VERSION, metric_names.DIM_SERVICE}


def alarm(app, prefix: str) -> dict:
    found = [a["Properties"] for lid, a in resources(app.monitoring, "AWS::CloudWatch::Alarm").items()
             if lid.startswith(prefix)]
    assert len(found) == 1, prefix
    return found[0]


def evaluation(props: dict) -> tuple:
    """(threshold, comparison, evaluation periods, datapoints to alarm, missing data) of an alarm."""
    return (props["Threshold"], props["ComparisonOperator"], props["EvaluationPeriods"], props["DatapointsToAlarm"],
            props["TreatMissingData"])


def queries(props: dict) -> dict[str, dict]:
    """A math alarm's metrics and expressions by id."""
    return {m["Id"]: m for m in props["Metrics"]}


def stat(query: dict) -> tuple[str, str, dict, int]:
    """(namespace, metric name, dimensions, period) of a MetricStat query; tokens as their JSON."""
    metric = query["MetricStat"]["Metric"]
    dims = {d["Name"]: d["Value"] if isinstance(d["Value"], str) else json.dumps(d["Value"])
            for d in metric["Dimensions"]}
    return metric["Namespace"], metric["MetricName"], dims, query["MetricStat"]["Period"]


def serving_dimensions(config: Config) -> dict[str, str]:
    return {metric_names.DIM_MODEL_NAME: config.model_name,
            metric_names.DIM_MODEL_VERSION: config.model_version or "unknown", metric_names.DIM_SERVICE: "inference"}


@pytest.fixture(scope="module")
def capture_off() -> Template:
    """The monitoring stack of a deployment that captures nothing (only that template: seconds, not a whole synth)."""
    context = json.loads((REPO / "cdk.json").read_text())["context"] | {"capture_sample_rate": "0"}
    app = cdk.App(context=context, outdir=tempfile.mkdtemp(prefix="cdk-capture-off"))
    return Template.from_stack(build_stacks(app, Config.from_context(app.node.try_get_context)).monitoring)


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_data_quality_alarm_counts_the_drift_checks_issues_apart_from_drift(request, which):
    app = request.getfixturevalue(which)
    props = alarm(app, "DataQuality")
    assert (props["Namespace"], props["MetricName"]) == (metric_names.NAMESPACE, metric_names.DRIFT_QUALITY_ISSUES)
    assert props["Dimensions"] == [{"Name": metric_names.DIM_MODEL_NAME, "Value": app.config.model_name}]
    assert props["Statistic"] == "Maximum" and props["Period"] == app.config.drift_period_minutes * 60
    assert app.config.quality_alarm_issues == {"default_app": 1, "variant_app": 2}[which]
    # A run without a verdict publishes nothing: the alarm keeps its state.
    assert evaluation(props) == (app.config.quality_alarm_issues, "GreaterThanOrEqualToThreshold", 1, 1, "ignore")
    assert props["AlarmActions"] and props["OKActions"]


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_drift_check_reads_the_configured_quality_thresholds(request, which, monkeypatch):
    from drift_check.app import thresholds_from_env
    from drift_check.stats_compare import Thresholds

    app = request.getfixturevalue(which)
    env = function_by_command(app.monitoring, "drift_check.app.handler")["Environment"]["Variables"]
    for name, value in env.items():
        if isinstance(value, str):  # bucket names are references
            monkeypatch.setenv(name, value)
    thresholds = thresholds_from_env()
    c = app.config
    assert (thresholds.missing_warn, thresholds.quality_warn, thresholds.malformed_warn, thresholds.quality_fail) == (
        c.quality_missing_increase, c.quality_out_of_range_share, c.quality_malformed_share, c.quality_fail_share)
    if which == "default_app":  # the deployed defaults are the drift code's own (mlops drift uses those)
        assert thresholds == Thresholds(min_rows=c.drift_min_rows)
    else:
        assert thresholds.quality_fail == 0.5 and thresholds.missing_warn == 0.2


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_4xx_alarm_is_a_share_of_the_prediction_routes_requests(request, which):
    app = request.getfixturevalue(which)
    props = alarm(app, "Api4xxRate")
    found = queries(props)
    returned = [m for m in props["Metrics"] if m.get("ReturnData", True)]
    assert len(returned) == 1
    assert returned[0]["Expression"] == f"IF(requests >= {CLIENT_ERROR_MIN_REQUESTS}, 100 * errors / requests, 0)"
    assert found["errors"]["Expression"] == "FILL(e0, 0) + FILL(e1, 0)"
    assert found["requests"]["Expression"] == "FILL(n0, 0) + FILL(n1, 0)"
    routes = {}
    for metric_id in ("e0", "e1", "n0", "n1"):
        namespace, name, dims, period = stat(found[metric_id])
        assert namespace == "AWS/ApiGateway" and period == 300 and found[metric_id]["MetricStat"]["Stat"] == "Sum"
        assert dims["ApiName"] == f"{app.config.project_name}-api" and "Stage" in dims
        routes.setdefault(name, set()).add((dims["Method"], dims["Resource"]))
    # Only the routes clients send features to: other paths (scanners, /docs) cannot move the share.
    assert routes == {"4XXError": {("POST", "/predict"), ("POST", "/predict/batch")},
                      "Count": {("POST", "/predict"), ("POST", "/predict/batch")}}
    assert app.config.client_error_alarm_percent == {"default_app": 10, "variant_app": 25}[which]
    assert evaluation(props) == (app.config.client_error_alarm_percent, "GreaterThanThreshold", 3, 2, "notBreaching")


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_capture_dropped_alarm_watches_the_metric_the_function_emits(request, which):
    app = request.getfixturevalue(which)
    props = alarm(app, "CaptureDropped")
    assert (props["Namespace"], props["MetricName"]) == (metric_names.NAMESPACE, metric_names.CAPTURE_DROPPED)
    # All three dimensions the function emits with, or the alarm watches a metric nobody publishes.
    assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == serving_dimensions(app.config)
    assert {d["Name"] for d in props["Dimensions"]} == SERVING_DIMENSIONS
    assert props["Statistic"] == "Sum" and props["Period"] == 300
    assert app.config.capture_dropped_alarm_records == {"default_app": 10, "variant_app": 50}[which]
    assert evaluation(props) == (app.config.capture_dropped_alarm_records, "GreaterThanOrEqualToThreshold", 3, 2,
                                 "notBreaching")


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_capture_silent_alarm_needs_enough_predictions_and_no_capture(request, which):
    app = request.getfixturevalue(which)
    props = alarm(app, "CaptureSilent")
    window = app.config.capture_silence_minutes * 60
    assert window == {"default_app": 3600, "variant_app": 7200}[which]
    # At capture_sample_rate 1 every prediction is captured; at 0.25, 80 predictions are needed to expect 20.
    enough = math.ceil(MIN_EXPECTED_CAPTURES / app.config.capture_sample_rate)
    assert enough == {"default_app": 20, "variant_app": 80}[which]
    found = queries(props)
    (returned,) = [m for m in props["Metrics"] if m.get("ReturnData", True)]
    assert returned["Expression"] == (f"IF((FILL(predictions, 0) >= {enough} AND FILL(sent, 0) == 0) "
                                      f"OR FILL(freshness, 0) > {window}, 1, 0)")
    for metric_id, name in (("predictions", metric_names.PREDICTIONS), ("sent", metric_names.CAPTURE_SENT)):
        assert stat(found[metric_id]) == (metric_names.NAMESPACE, name, serving_dimensions(app.config), window)
        assert found[metric_id]["MetricStat"]["Stat"] == "Sum"
    namespace, name, dims, period = stat(found["freshness"])
    assert (namespace, name, period) == ("AWS/Firehose", "DeliveryToS3.DataFreshness", window)
    assert set(dims) == {"DeliveryStreamName"} and "CaptureStream" in dims["DeliveryStreamName"]
    assert found["freshness"]["MetricStat"]["Stat"] == "Maximum"
    # No traffic, no datapoint: nothing to capture.
    assert evaluation(props) == (1, "GreaterThanOrEqualToThreshold", 1, 1, "notBreaching")


@pytest.mark.parametrize("which", ["default_app", "variant_app"])
def test_labels_undelivered_alarm_watches_feedback_drops_and_the_labels_stream(request, which):
    app = request.getfixturevalue(which)
    props = alarm(app, "LabelsUndelivered")
    window = app.config.capture_silence_minutes * 60
    found = queries(props)
    (returned,) = [m for m in props["Metrics"] if m.get("ReturnData", True)]
    assert returned["Expression"] == f"IF(FILL(dropped, 0) >= 1 OR FILL(freshness, 0) > {window}, 1, 0)"
    assert stat(found["dropped"]) == (metric_names.NAMESPACE, metric_names.FEEDBACK_DROPPED,
                                      serving_dimensions(app.config), window)
    assert found["dropped"]["MetricStat"]["Stat"] == "Sum"
    namespace, name, dims, period = stat(found["freshness"])
    assert (namespace, name, period) == ("AWS/Firehose", "DeliveryToS3.DataFreshness", window)
    assert set(dims) == {"DeliveryStreamName"} and "LabelsStream" in dims["DeliveryStreamName"]
    assert found["freshness"]["MetricStat"]["Stat"] == "Maximum"
    assert evaluation(props) == (1, "GreaterThanOrEqualToThreshold", 1, 1, "notBreaching")


def test_labels_are_watched_with_capture_off_too(capture_off):
    assert [i for i in resources(capture_off, "AWS::CloudWatch::Alarm") if i.startswith("LabelsUndelivered")]


def test_the_silence_window_outlasts_firehose_buffering(default_app):
    """A record waits up to the buffering interval before S3: the shortest window allowed is well above it."""
    (stream,) = [s["Properties"] for s in resources(default_app.serving, "AWS::KinesisFirehose::DeliveryStream").values()
                 if s["Properties"]["ExtendedS3DestinationConfiguration"]["Prefix"].startswith("capture/")]
    buffered = stream["ExtendedS3DestinationConfiguration"]["BufferingHints"]["IntervalInSeconds"]
    assert buffered * 2 <= 5 * 60
    assert Config(capture_silence_minutes=5).capture_silence_minutes == 5


def test_no_capture_alarms_when_capture_is_off(capture_off, default_app):
    ids = list(resources(capture_off, "AWS::CloudWatch::Alarm"))
    assert not [i for i in ids if i.startswith(("CaptureDropped", "CaptureSilent"))]
    assert [i for i in ids if i.startswith("DataQuality")] and [i for i in ids if i.startswith("Api4xxRate")]
    assert len(ids) == len(resources(default_app.monitoring, "AWS::CloudWatch::Alarm")) - 2


def test_dashboard_shows_the_input_alarms_and_their_metrics(default_app):
    widgets = dashboard_body(default_app.monitoring)["widgets"]
    by_title = {w["properties"].get("title"): w for w in widgets}
    quality = json.dumps(by_title["Data quality issues by check"])
    assert f'MetricName=\\"{metric_names.DRIFT_QUALITY_BY_CHECK}\\" {metric_names.DIM_MODEL_NAME}=\\"breast-cancer\\"' in quality
    assert f'"{metric_names.DRIFT_QUALITY_ISSUES}"' in quality
    assert "100 * errors / requests" in json.dumps(by_title["4xx % of prediction requests"])
    delivery = json.dumps(by_title["Capture delivery to S3 (Firehose)"])
    assert '"DeliveryToS3.Records"' in delivery and '"DeliveryToS3.DataFreshness"' in delivery
    raw = json.dumps(only(default_app.monitoring, "AWS::CloudWatch::Dashboard")["DashboardBody"])  # alarm ARNs by logical id
    for prefix in ("DataQuality", "Api4xxRate", "CaptureDropped", "CaptureSilent", "LabelsUndelivered"):
        (logical_id,) = [i for i in resources(default_app.monitoring, "AWS::CloudWatch::Alarm") if i.startswith(prefix)]
        assert f'"{logical_id}", "Arn"' in raw, prefix
