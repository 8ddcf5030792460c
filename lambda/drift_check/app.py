"""Lambda handlers of the drift check: the scheduled run (EventBridge) and the fan-out's merge step write the report
to S3 and metrics to CloudWatch (EMF); count_handler is a fan-out child (drift_check.fanout).

Environment (contracts.env.Var): CAPTURE_BUCKET, REPORTS_BUCKET, MODEL_NAME, MODEL_DATA_URL (empty: no
model promoted), MODEL_SHA256, MIN_ROWS (500), DRIFT_ALPHA (0.05), CHECKPOINT_EVERY_FILES (10),
STOP_MARGIN_SECONDS (60), DRIFT_WORKERS (the CPUs available), DRIFT_MAX_WINDOW_HOURS (168: how long a
low-traffic pool may gather rows), DRIFT_FANOUT_STATE_MACHINE_ARN, DRIFT_FANOUT_MB (0: never fan out),
DRIFT_FANOUT_GROUP_MB (1024), DRIFT_FANOUT_TIMEOUT_MINUTES (120), and the data-quality shares (QUALITY_SETTINGS).
Captured requests are read, and the checkpoint and reports written, where contracts.names puts them for MODEL_NAME.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from msgspec import UNSET

from contracts import env, names
from contracts import metric_names as mn
from contracts.drift_report import DriftReport
from contracts.env import Var
from drift_check import fanout
from drift_check.file_counts import available_cpus
from drift_check.model_source import ProductionModel, load_model
from drift_check.stats_compare import Thresholds
from drift_check.window_check import Settings, run_check

logger = Logger()
metrics = Metrics(namespace=mn.NAMESPACE)
tracer = Tracer()
s3 = boto3.client("s3")
sfn = boto3.client("stepfunctions")  # starts the fan-out of a window too big for one run
MB = 1 << 20


def settings_from_env() -> Settings:
    """The function's configuration; a missing or malformed variable fails with its name."""
    model_name = env.required(Var.MODEL_NAME)
    return Settings(
        capture_bucket=env.required(Var.CAPTURE_BUCKET),
        capture_prefix=names.capture_prefix(model_name),
        reports_bucket=env.required(Var.REPORTS_BUCKET),
        checkpoint_key=names.drift_checkpoint_key(model_name),
        model_name=model_name,
        thresholds=thresholds_from_env(),
        checkpoint_every=env.integer(Var.CHECKPOINT_EVERY_FILES, 10),
        stop_margin_ms=env.integer(Var.STOP_MARGIN_SECONDS, 60) * 1000,
        workers=max(1, env.integer(Var.DRIFT_WORKERS, available_cpus())),
        max_window=timedelta(hours=env.number(Var.DRIFT_MAX_WINDOW_HOURS, 168)),
        fanout_state_machine_arn=env.text(Var.DRIFT_FANOUT_STATE_MACHINE_ARN),
        fanout_bytes=int(env.number(Var.DRIFT_FANOUT_MB, 0) * MB),
        fanout_group_bytes=max(1, int(env.number(Var.DRIFT_FANOUT_GROUP_MB, 1024) * MB)),
        fanout_timeout=timedelta(minutes=env.integer(Var.DRIFT_FANOUT_TIMEOUT_MINUTES, 120)),
    )


# Thresholds field ← the variable that sets it (stacks/config.py's quality_* keys); unset keeps Thresholds' default.
QUALITY_SETTINGS = {
    "missing_warn": Var.QUALITY_MISSING_INCREASE,
    "quality_warn": Var.QUALITY_OUT_OF_RANGE_SHARE,
    "malformed_warn": Var.QUALITY_MALFORMED_SHARE,
    "quality_fail": Var.QUALITY_FAIL_SHARE,
}


def thresholds_from_env() -> Thresholds:
    """The drift and data-quality thresholds; a share outside (0, 1] fails with the variable's name."""
    shares = {}
    for field, name in QUALITY_SETTINGS.items():
        shares[field] = env.number(name, getattr(Thresholds, field), minimum=0.0, maximum=1.0)
        if shares[field] == 0:  # at 0 every feature would have every issue
            raise env.SettingsError(f"{name}=0: expected a share above 0 and at most 1")
    return Thresholds(alpha=env.number(Var.DRIFT_ALPHA, 0.05), min_rows=env.integer(Var.MIN_ROWS, 500), **shares)


@tracer.capture_method
def production_model() -> ProductionModel | None:
    url = env.text(Var.MODEL_DATA_URL)
    if not url:
        return None
    return load_model(s3, url, env.text(Var.MODEL_SHA256))


def publish_metrics(report: DriftReport, model_name: str, model_version: str) -> None:
    """Dataset metrics on the handler's Metrics; per-feature PSI and drift flag with a Feature dimension, data-quality
    issues per check with a Check dimension."""
    metrics.add_dimension(mn.DIM_MODEL_NAME, model_name)
    metrics.add_dimension(mn.DIM_MODEL_VERSION, model_version)
    metrics.add_dimensions(**{mn.DIM_MODEL_NAME: model_name})  # also per model across versions, for alarms
    insufficient = report.status in ("insufficient_data", "no_data")
    issues = report.quality.issues if report.quality else []
    metrics.add_metric(name=mn.DRIFT_INSUFFICIENT_DATA, unit=MetricUnit.Count, value=int(insufficient))
    if pooling(report).get("pool") != "carried_over":
        # A carried-over window's rows come again in the next run's report: count them once, when the pool closes.
        metrics.add_metric(name=mn.DRIFT_ROWS_CHECKED, unit=MetricUnit.Count, value=report.rows_checked)
        metrics.add_metric(name=mn.DRIFT_ROWS_REJECTED, unit=MetricUnit.Count, value=report.rows_rejected)
    if insufficient:
        # No verdict to publish: a 0 would read as "checked, no drift", and the shares of a few rows are noise.
        return
    metrics.add_metric(name=mn.DRIFT_DATASET, unit=MetricUnit.Count, value=int(report.dataset_drift))
    metrics.add_metric(name=mn.DRIFT_SHARE, unit=MetricUnit.Percent, value=100 * report.drift_share)
    metrics.add_metric(name=mn.DRIFT_QUALITY_ISSUES, unit=MetricUnit.Count, value=len(issues))  # the alarm's metric
    for feature, entry in report.features.items():
        if entry.status == "tested":
            publish_with(mn.DIM_FEATURE, feature, model_name, model_version, {
                mn.DRIFT_FEATURE_PSI: (MetricUnit.NoUnit, entry.psi),
                mn.DRIFT_FEATURE_FLAG: (MetricUnit.Count, int(entry.drift))})
    # Only the checks that found something: which one raised the alarm, at no cost while the data is clean.
    for check, count in Counter(issue.check for issue in issues).items():
        publish_with(mn.DIM_CHECK, check, model_name, model_version, {
            mn.DRIFT_QUALITY_BY_CHECK: (MetricUnit.Count, count)})


def publish_with(dimension: str, value: str, model_name: str, model_version: str,
                 values: dict[str, tuple[MetricUnit, float]]) -> None:
    """One EMF blob with a dimension of its own besides the model's (EMF dimensions apply to a whole blob)."""
    emitter = EphemeralMetrics(namespace=mn.NAMESPACE)
    emitter.add_dimension(mn.DIM_MODEL_NAME, model_name)
    emitter.add_dimension(mn.DIM_MODEL_VERSION, model_version)
    emitter.add_dimension(dimension, value)
    for name, (unit, number) in values.items():
        emitter.add_metric(name=name, unit=unit, value=number)
    emitter.flush_metrics()


def response(report: DriftReport) -> dict[str, Any]:
    """The handler's answer: the verdict and where the whole report is."""
    return {"status": report.status, "dataset_drift": report.dataset_drift, "drifted_features": report.drifted_features,
            "drift_share": report.drift_share, "rows_checked": report.rows_checked, "rows_rejected": report.rows_rejected,
            "report_uri": report.report_uri, **pooling(report)}


def pooling(report: DriftReport) -> dict[str, Any]:
    """How many runs the window pooled, and whether it was carried over (few rows) or closed."""
    window = report.window
    if not window or window.runs is UNSET:
        return {}
    return {"pooled_runs": window.runs, "pool": window.pool}


@logger.inject_lambda_context(log_event=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A scheduled run, or the fan-out state machine's merge (or, after a failure, release) step."""
    settings = settings_from_env()
    model = production_model()
    if fanout.is_fanout_step(event) and event.get("failed"):
        released = fanout.release(s3, settings, event)
        logger.error("the drift fan-out failed; the next scheduled run reads the window again", extra=asdict(released))
        return asdict(released)
    if fanout.is_fanout_step(event):
        if model is None:
            raise fanout.FanoutError("no promoted model (MODEL_DATA_URL is empty): nothing to merge the counts with")
        result = fanout.merge(s3, settings, model, event)
    else:
        result = run_check(s3, settings, model, datetime.now(UTC), remaining_ms=context.get_remaining_time_in_millis,
                           sfn=sfn)
    if not isinstance(result, DriftReport):
        logger.warning("no report from this run", extra=asdict(result))  # partial, fanned out or in flight
        return asdict(result)
    if model is not None:
        publish_metrics(result, model.name, model.version)
    logger.info("drift check done", extra=response(result))
    return response(result)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def count_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A fan-out child: count its groups of capture files and store their counts for the merge."""
    model = production_model()
    if model is None:
        raise fanout.FanoutError("no promoted model (MODEL_DATA_URL is empty): nothing to count against")
    result = fanout.count_groups(s3, settings_from_env(), model, event)
    logger.info("counted a share of the window", extra=result)
    return result
