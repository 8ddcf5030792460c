"""Lambda handler for the scheduled drift check (EventBridge): report to S3, metrics to CloudWatch (EMF).

Environment (contracts.env.Var): CAPTURE_BUCKET, REPORTS_BUCKET, MODEL_NAME, MODEL_DATA_URL (empty: no
model promoted), MODEL_SHA256, MIN_ROWS (500), DRIFT_ALPHA (0.05), CHECKPOINT_EVERY_FILES (10),
STOP_MARGIN_SECONDS (60), DRIFT_WORKERS (the CPUs available). Captured requests are read, and the
checkpoint and reports written, where contracts.names puts them for MODEL_NAME.
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts import env, names
from contracts import metric_names as mn
from contracts.drift_report import DriftReport
from contracts.env import Var
from drift_check.file_counts import available_cpus
from drift_check.model_source import ProductionModel, load_model
from drift_check.stats_compare import Thresholds
from drift_check.window_check import PartialCheck, Settings, run_check

logger = Logger()
metrics = Metrics(namespace=mn.NAMESPACE)
tracer = Tracer()
s3 = boto3.client("s3")


def settings_from_env() -> Settings:
    """The function's configuration; a missing or malformed variable fails with its name."""
    model_name = env.required(Var.MODEL_NAME)
    return Settings(
        capture_bucket=env.required(Var.CAPTURE_BUCKET),
        capture_prefix=names.capture_prefix(model_name),
        reports_bucket=env.required(Var.REPORTS_BUCKET),
        checkpoint_key=names.drift_checkpoint_key(model_name),
        model_name=model_name,
        thresholds=Thresholds(alpha=env.number(Var.DRIFT_ALPHA, 0.05), min_rows=env.integer(Var.MIN_ROWS, 500)),
        checkpoint_every=env.integer(Var.CHECKPOINT_EVERY_FILES, 10),
        stop_margin_ms=env.integer(Var.STOP_MARGIN_SECONDS, 60) * 1000,
        workers=max(1, env.integer(Var.DRIFT_WORKERS, available_cpus())),
    )


@tracer.capture_method
def production_model() -> ProductionModel | None:
    url = env.text(Var.MODEL_DATA_URL)
    if not url:
        return None
    return load_model(s3, url, env.text(Var.MODEL_SHA256))


def publish_metrics(report: DriftReport, model_name: str, model_version: str) -> None:
    """Dataset metrics on the handler's Metrics; per-feature PSI and drift flag with a Feature dimension."""
    metrics.add_dimension(mn.DIM_MODEL_NAME, model_name)
    metrics.add_dimension(mn.DIM_MODEL_VERSION, model_version)
    metrics.add_dimensions(**{mn.DIM_MODEL_NAME: model_name})  # also per model across versions, for alarms
    insufficient = report.status in ("insufficient_data", "no_data")
    issues = report.quality.issues if report.quality else []
    metrics.add_metric(name=mn.DRIFT_INSUFFICIENT_DATA, unit=MetricUnit.Count, value=int(insufficient))
    metrics.add_metric(name=mn.DRIFT_ROWS_CHECKED, unit=MetricUnit.Count, value=report.rows_checked)
    metrics.add_metric(name=mn.DRIFT_ROWS_REJECTED, unit=MetricUnit.Count, value=report.rows_rejected)
    metrics.add_metric(name=mn.DRIFT_QUALITY_ISSUES, unit=MetricUnit.Count, value=len(issues))
    if insufficient:
        return  # no verdict to publish: a 0 would read as "checked, no drift"
    metrics.add_metric(name=mn.DRIFT_DATASET, unit=MetricUnit.Count, value=int(report.dataset_drift))
    metrics.add_metric(name=mn.DRIFT_SHARE, unit=MetricUnit.Percent, value=100 * report.drift_share)
    for feature, entry in report.features.items():
        if entry.status != "tested":
            continue
        per_feature = EphemeralMetrics(namespace=mn.NAMESPACE)
        per_feature.add_dimension(mn.DIM_MODEL_NAME, model_name)
        per_feature.add_dimension(mn.DIM_MODEL_VERSION, model_version)
        per_feature.add_dimension(mn.DIM_FEATURE, feature)
        per_feature.add_metric(name=mn.DRIFT_FEATURE_PSI, unit=MetricUnit.NoUnit, value=entry.psi)
        per_feature.add_metric(name=mn.DRIFT_FEATURE_FLAG, unit=MetricUnit.Count, value=int(entry.drift))
        per_feature.flush_metrics()


def response(report: DriftReport) -> dict[str, Any]:
    """The handler's answer: the verdict and where the whole report is."""
    return {"status": report.status, "dataset_drift": report.dataset_drift, "drifted_features": report.drifted_features,
            "drift_share": report.drift_share, "rows_checked": report.rows_checked, "rows_rejected": report.rows_rejected,
            "report_uri": report.report_uri}


@logger.inject_lambda_context(log_event=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = settings_from_env()
    model = production_model()
    now = datetime.now(UTC)
    result = run_check(s3, settings, model, now, remaining_ms=context.get_remaining_time_in_millis)
    if isinstance(result, PartialCheck):
        logger.warning("stopped before the end of the window; the next run resumes", extra=asdict(result))
        return asdict(result)
    if model is not None:
        publish_metrics(result, model.name, model.version)
    logger.info("drift check done", extra=response(result))
    return response(result)
