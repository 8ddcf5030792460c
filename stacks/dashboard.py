"""The operations dashboard: traffic, latency, errors, cold starts, predictions, capture, data quality, drift,
model quality, training runs, batch jobs."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contracts import metric_names
from stacks.config import Config
from stacks.input_alarms import client_error_rate
from training.evaluate import PRIMARY_METRIC

if TYPE_CHECKING:
    from stacks.serving_stack import ServingStack
    from stacks.training_stack import TrainingStack

PERIOD = Duration.minutes(5)
HOUR = Duration.hours(1)
WIDTH = 8
TOP_FEATURES = 10


def search(metric_name: str, statistic: str, period: Duration, **dimensions: str) -> str:
    """A SEARCH over the project namespace: every dimension combination published, filtered by `dimensions`."""
    terms = [f'Namespace="{metric_names.NAMESPACE}"', f'MetricName="{metric_name}"',
             *(f'{name}="{value}"' for name, value in dimensions.items())]
    return f"SEARCH('{' '.join(terms)}', '{statistic}', {int(period.to_seconds())})"


def build_dashboard(scope: Construct, *, config: Config, serving: ServingStack, training: TrainingStack,
                    drift_check: lambda_.IFunction, drift_fanout: sfn.IStateMachine, dead_letters: sqs.IQueue,
                    batch_jobs: sfn.IStateMachine, quality_check: lambda_.IFunction, quality_period: Duration,
                    alarms: Sequence[cloudwatch.IAlarm]) -> cloudwatch.Dashboard:
    """One dashboard per deployment, named after the project."""
    api = serving.api.api
    function = serving.function
    drift_period = Duration.minutes(config.drift_period_minutes)
    model = config.model_name
    by_model = {metric_names.DIM_MODEL_NAME: model}

    def graph(title: str, *metrics: cloudwatch.IMetric, right: Sequence[cloudwatch.IMetric] = ()) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, left=list(metrics), right=list(right), width=WIDTH, height=6)

    def expression(label: str, expr: str, period: Duration = PERIOD) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(expression=expr, label=label, period=period, using_metrics={})

    dashboard = cloudwatch.Dashboard(scope, "Dashboard", dashboard_name=f"{config.project_name}-{model}",
                                     default_interval=Duration.hours(24))
    dashboard.add_widgets(
        graph("Requests", api.metric_count(period=PERIOD, statistic="Sum", label="requests"),
              right=[api.metric_client_error(period=PERIOD, statistic="Sum", label="4xx"),
                     api.metric_server_error(period=PERIOD, statistic="Sum", label="5xx")]),
        graph("API latency (ms)", *(api.metric_latency(period=PERIOD, statistic=p, label=p) for p in ("p50", "p95", "p99")),
              right=[api.metric_integration_latency(period=PERIOD, statistic="p99", label="integration p99")]),
        graph("Inference errors and throttles",
              function.metric_errors(period=PERIOD, statistic="Sum", label="errors"),
              function.metric_throttles(period=PERIOD, statistic="Sum", label="throttles"),
              right=[function.metric_invocations(period=PERIOD, statistic="Sum", label="invocations")]),
    )
    dashboard.add_widgets(
        # Powertools' ColdStart metric carries the function name and service, not the model.
        graph("Cold starts", expression("cold starts", search("ColdStart", "Sum", PERIOD,
                                                              function_name=function.function_name))),
        graph("Predictions by class", expression(
            "predictions", search(metric_names.PREDICTIONS_BY_CLASS, "Sum", PERIOD, **by_model))),
        graph("Inference duration (ms)", *(function.metric_duration(period=PERIOD, statistic=p, label=p)
                                            for p in ("p50", "p99"))),
    )
    dashboard.add_widgets(
        # One line per ErrorKind (validation, bad_json, too_large, model_unavailable, internal, …).
        graph(f"Refused requests by kind ({metric_names.DIM_ERROR_KIND})", expression(
            "refused", search(metric_names.PREDICTION_ERRORS, "Sum", PERIOD, **by_model))),
        graph("Capture records sent and dropped",
              expression("sent", search(metric_names.CAPTURE_SENT, "Sum", PERIOD, **by_model)),
              right=[expression("dropped", search(metric_names.CAPTURE_DROPPED, "Sum", PERIOD, **by_model))]),
        # The CaptureSilent alarm's Firehose side: freshness climbs while records cannot be written to S3.
        graph("Capture delivery to S3 (Firehose)",
              serving.capture.metric_delivered_records(PERIOD).with_(label="records delivered"),
              right=[serving.capture.metric_data_freshness(PERIOD).with_(label="oldest undelivered (s)")]),
    )
    dashboard.add_widgets(
        graph("4xx % of prediction requests", client_error_rate(serving.api)),
        # Which checks the DataQuality alarm counted (one line per Check), beside the count it alarms on.
        graph("Data quality issues by check",
              expression("issues", search(metric_names.DRIFT_QUALITY_BY_CHECK, "Maximum", drift_period, **by_model),
                         drift_period),
              right=[cloudwatch.Metric(namespace=metric_names.NAMESPACE,
                                       metric_name=metric_names.DRIFT_QUALITY_ISSUES, dimensions_map=by_model,
                                       statistic="Maximum", period=drift_period, label="all issues")]),
    )
    dashboard.add_widgets(
        graph("Drift: drifted feature share and dataset drift",
              expression("drifted share", search(metric_names.DRIFT_SHARE, "Maximum", drift_period, **by_model),
                         drift_period),
              right=[expression("dataset drift", search(metric_names.DRIFT_DATASET, "Maximum", drift_period,
                                                        **by_model), drift_period)]),
        graph(f"Most drifted features (PSI, top {TOP_FEATURES})", expression(
            "PSI", f"SORT({search(metric_names.DRIFT_FEATURE_PSI, 'Maximum', drift_period, **by_model)}, "
                   f"MAX, DESC, {TOP_FEATURES})", drift_period)),
        graph("Training runs",
              training.state_machine.metric_started(period=Duration.hours(1), statistic="Sum", label="started"),
              training.state_machine.metric_succeeded(period=Duration.hours(1), statistic="Sum", label="succeeded"),
              training.state_machine.metric_failed(period=Duration.hours(1), statistic="Sum", label="failed")),
    )
    dashboard.add_widgets(
        graph("Drift check runs (and fan-outs); rows checked, runs without a verdict (pooling)",
              drift_check.metric_invocations(period=drift_period, statistic="Sum", label="runs"),
              drift_check.metric_errors(period=drift_period, statistic="Sum", label="errors"),
              dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, label="dead letters"),
              drift_fanout.metric_started(period=drift_period, statistic="Sum", label="fan-outs started"),
              drift_fanout.metric_failed(period=drift_period, statistic="Sum", label="fan-outs failed"),
              right=[expression("rows checked", search(metric_names.DRIFT_ROWS_CHECKED, "Sum", drift_period,
                                                        **by_model), drift_period),
                     expression("no verdict", search(metric_names.DRIFT_INSUFFICIENT_DATA, "Maximum", drift_period,
                                                     **by_model), drift_period)]),
        cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=2 * WIDTH, height=6),
    )
    model_quality_widgets(dashboard, config, quality_check, quality_period, graph, expression,
                          next(a for a in alarms if a.node.id == "ModelQuality"))
    # Batch scoring: one datapoint per job of each metric, published by its summary step.
    dashboard.add_widgets(
        graph("Batch jobs",
              batch_jobs.metric_started(period=HOUR, statistic="Sum", label="started"),
              batch_jobs.metric_succeeded(period=HOUR, statistic="Sum", label="succeeded"),
              batch_jobs.metric_failed(period=HOUR, statistic="Sum", label="failed")),
        graph("Batch rows scored and refused",
              expression("rows", search(metric_names.BATCH_ROWS, "Sum", HOUR, **by_model), HOUR),
              expression("row errors", search(metric_names.BATCH_ROW_ERRORS, "Sum", HOUR, **by_model), HOUR),
              right=[expression("parts failed", search(metric_names.BATCH_PARTS_FAILED, "Sum", HOUR, **by_model),
                                HOUR)]),
        graph("Batch job duration",
              expression("duration", search(metric_names.BATCH_DURATION, "Maximum", HOUR, **by_model), HOUR)),
    )
    return dashboard


def model_quality_widgets(dashboard: cloudwatch.Dashboard, config: Config, quality_check: lambda_.IFunction,
                          period: Duration, graph: Any, expression: Any, alarm: cloudwatch.IAlarm) -> None:
    """Realized beside estimated quality per version, label coverage and delay, the ModelQuality alarm, the runs.

    One datapoint per version and run (its latest window), so the lines step once per `model_quality_schedule`.
    """
    by_model = {metric_names.DIM_MODEL_NAME: config.model_name}
    primary = PRIMARY_METRIC.get(config.task)
    which = {metric_names.DIM_METRIC: primary} if primary else {}  # task inferred at training: every metric
    title = primary or "every metric"
    dashboard.add_widgets(
        graph(f"Model quality: realized vs estimated {title} (per version)",
              expression("realized", search(metric_names.QUALITY_REALIZED, "Maximum", period, **by_model, **which),
                         period),
              expression("estimated", search(metric_names.QUALITY_ESTIMATED, "Maximum", period, **by_model, **which),
                         period)),
        graph("Labels: coverage (share of predictions labelled) and delay (median hours)",
              expression("coverage", search(metric_names.LABEL_COVERAGE, "Maximum", period, **by_model), period),
              right=[expression("delay h", search(metric_names.LABEL_DELAY_HOURS, "Maximum", period, **by_model),
                                period)]),
        cloudwatch.AlarmWidget(title="ModelQuality alarm (1 = a version's latest verdict is degraded)", alarm=alarm,
                               width=WIDTH, height=6),
    )
    total = {metric_names.DIM_MODEL_NAME: config.model_name}
    dashboard.add_widgets(
        graph("Model-quality check runs; unmatched and invalid labels",
              quality_check.metric_invocations(period=period, statistic="Sum", label="runs"),
              quality_check.metric_errors(period=period, statistic="Sum", label="errors"),
              right=[cloudwatch.Metric(namespace=metric_names.NAMESPACE, metric_name=name, dimensions_map=total,
                                       statistic="Maximum", period=period, label=label)
                     for name, label in ((metric_names.LABELS_UNMATCHED, "unmatched labels"),
                                         (metric_names.LABELS_INVALID, "invalid labels"))]),
    )
