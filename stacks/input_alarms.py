"""Alarms on what comes in: data quality of the captured rows, clients refused with 4xx, capture lost or silent,
labels not delivered."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from contracts import metric_names
from stacks.config import CLIENT_ERROR_MIN_REQUESTS, MIN_EXPECTED_CAPTURES, Config

if TYPE_CHECKING:
    from stacks.prediction_api import PredictionApi
    from stacks.serving_stack import ServingStack

FIVE_MINUTES = Duration.minutes(5)
GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD

# MonitoringStack's alarm factory: (construct id, description, metric, threshold, periods=, datapoints=,
# operator=, missing=) → an alarm it sends to SNS.
AlarmFactory = Callable[..., cloudwatch.Alarm]


def drift_check_metric(config: Config, name: str) -> cloudwatch.Metric:
    """A metric the drift check publishes once per run with a verdict, per model across versions (the alarms' view)."""
    return cloudwatch.Metric(namespace=metric_names.NAMESPACE, metric_name=name,
                             dimensions_map={metric_names.DIM_MODEL_NAME: config.model_name},
                             statistic=metric_names.DRIFT_ALARM_STATISTIC,
                             period=Duration.minutes(config.drift_period_minutes))


def input_alarms(config: Config, serving: ServingStack, alarm: AlarmFactory) -> dict[str, cloudwatch.Alarm]:
    """The data-quality and 4xx alarms; the capture alarms only when capture is on (nothing to watch otherwise)."""
    alarms = {
        "data_quality": alarm(
            "DataQuality", f"The drift check found at least {config.quality_alarm_issues} data-quality issue(s) in "
            f"the captured {config.model_name} requests: missing values, values out of range or unseen, malformed "
            "capture lines (the report's quality.issues say which)",
            drift_check_metric(config, metric_names.DRIFT_QUALITY_ISSUES), config.quality_alarm_issues,
            # A run without a verdict (too few rows) publishes nothing and says nothing about quality: keep the state
            # rather than report an all-clear nobody checked.
            missing=cloudwatch.TreatMissingData.IGNORE),
        "api_4xx": alarm(
            "Api4xxRate", f"4xx responses above {config.client_error_alarm_percent}% of prediction requests "
            "(a broken client or key, throttling, or an upstream change in what clients send)",
            client_error_rate(serving.api), config.client_error_alarm_percent, periods=3, datapoints=2, operator=GT),
        "labels_undelivered": alarm(
            "LabelsUndelivered", "POST /feedback could not deliver labels to Firehose (its callers got a 503 and must "
            f"resend), or the labels stream held a record undelivered for {config.capture_silence_minutes} minutes",
            labels_undelivered(config, serving), 1),
    }
    if config.capture_sample_rate > 0:
        alarms["capture_dropped"] = alarm(
            "CaptureDropped", f"At least {config.capture_dropped_alarm_records} capture lines dropped in two of three "
            "5-minute periods: Firehose refused them or could not be reached (predictions were served)",
            serving.model_metric(metric_names.CAPTURE_DROPPED, statistic="Sum", period=FIVE_MINUTES),
            config.capture_dropped_alarm_records, periods=3, datapoints=2)
        alarms["capture_silent"] = alarm(
            "CaptureSilent", f"No capture reached S3 for {config.capture_silence_minutes} minutes while the API served "
            "predictions: none was sent, or Firehose held one undelivered",
            capture_silence(config, serving), 1)
    return alarms


def client_error_rate(api: PredictionApi) -> cloudwatch.MathExpression:
    """4xx % of the prediction routes' requests, 0 in a period with too few requests to judge.

    Per route, not the whole API: scanners probing other paths get 403s that say nothing about our clients.
    """
    stage = api.api.deployment_stage

    def summed(prefix: str, metric: Callable[[cloudwatch.IMetric], cloudwatch.IMetric]) -> cloudwatch.MathExpression:
        # A route without requests in a period has no datapoint: count it as 0, or the sum has none either.
        using = {f"{prefix}{i}": metric(method) for i, method in enumerate(api.prediction_methods)}
        return cloudwatch.MathExpression(expression=" + ".join(f"FILL({name}, 0)" for name in using),
                                         using_metrics=using, period=FIVE_MINUTES)

    errors = summed("e", lambda m: m.metric_client_error(stage, period=FIVE_MINUTES, statistic="Sum"))
    requests = summed("n", lambda m: m.metric_count(stage, period=FIVE_MINUTES, statistic="Sum"))
    return cloudwatch.MathExpression(
        label="4xx % of prediction requests",
        expression=f"IF(requests >= {CLIENT_ERROR_MIN_REQUESTS}, 100 * errors / requests, 0)",
        using_metrics={"errors": errors, "requests": requests}, period=FIVE_MINUTES)


def capture_silence(config: Config, serving: ServingStack) -> cloudwatch.MathExpression:
    """1 when, over the window, enough predictions were served to expect capture but none was sent, or Firehose held
    a record longer than the window (delivery to S3 failing); else 0.

    Sent, not Firehose's DeliveryToS3.Records: it is counted by the same invocation as the predictions, so a burst at
    the window's end cannot alarm while its records wait in Firehose's buffer; failed delivery shows as freshness.
    """
    window = Duration.minutes(config.capture_silence_minutes)
    # Sampling: with fewer predictions than this, capturing none can be chance (P(none) <= e^-20).
    enough = math.ceil(MIN_EXPECTED_CAPTURES / config.capture_sample_rate)
    return cloudwatch.MathExpression(
        label="capture silent (1 = yes)",
        expression=(f"IF((FILL(predictions, 0) >= {enough} AND FILL(sent, 0) == 0) "
                    f"OR FILL(freshness, 0) > {int(window.to_seconds())}, 1, 0)"),
        using_metrics={
            "predictions": serving.model_metric(metric_names.PREDICTIONS, statistic="Sum", period=window),
            "sent": serving.model_metric(metric_names.CAPTURE_SENT, statistic="Sum", period=window),
            "freshness": serving.capture.metric_data_freshness(window),
        },
        period=window)


def labels_undelivered(config: Config, serving: ServingStack) -> cloudwatch.MathExpression:
    """1 when a label was not delivered in the window, or Firehose could not write the labels stream to S3; else 0.

    Unlike a capture line, a label is not sampled and may not come again: every undelivered one counts. No silence
    check: a day without labels is normal while they are still being collected.
    """
    window = Duration.minutes(config.capture_silence_minutes)
    return cloudwatch.MathExpression(
        label="labels undelivered (1 = yes)",
        expression=f"IF(FILL(dropped, 0) >= 1 OR FILL(freshness, 0) > {int(window.to_seconds())}, 1, 0)",
        using_metrics={
            "dropped": serving.model_metric(metric_names.FEEDBACK_DROPPED, statistic="Sum", period=window),
            "freshness": serving.labels.metric_data_freshness(window),
        },
        period=window)
