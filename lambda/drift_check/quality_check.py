"""Lambda handler of the scheduled model-quality check: ground-truth labels joined to the captured predictions per
model version and window, a report per window and per run in S3, metrics to CloudWatch (EMF).

Environment (contracts.env.Var): CAPTURE_BUCKET, REPORTS_BUCKET, MODEL_NAME, MODEL_DATA_URL (empty: no model
promoted, nothing to judge), MODEL_SHA256, MODEL_VERSION (the version serving captures; the artifact's own id when
empty), MODEL_QUALITY_WINDOW_HOURS (24), MODEL_QUALITY_HORIZON_DAYS (14), MODEL_QUALITY_MIN_LABELS (100),
MODEL_QUALITY_TOLERANCE (0.05), MODEL_QUALITY_FLOORS (a JSON object, {}). Reads capture/<model>/ and labels/<model>/
in the capture bucket, the artifacts of other versions through the SageMaker registry, and writes under
quality/<model>/ in the reports bucket (contracts.names).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import msgspec
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from msgspec import UNSET

from contracts import env, names
from contracts import metric_names as mn
from contracts.artifact import utc_now
from contracts.drift_report import ModelRef
from contracts.env import Var
from contracts.ground_truth import Labels
from contracts.label_objects import DEFAULT_HORIZON_DAYS, iso, list_labels, read_labels
from contracts.quality_report import QualityReport, QualityRun, QualityWindow, WindowSummary
from drift_check.model_quality import DEFAULT_MIN_LABELS, DEFAULT_TOLERANCE, check, task_classes
from drift_check.model_quality import Settings as JudgeSettings
from drift_check.model_source import ProductionModel, load_model
from drift_check.quality_html import render, render_run
from drift_check.quality_models import VersionModel, VersionModels
from drift_check.quality_windows import (
    Checkpoint,
    Window,
    horizon_start,
    list_captures,
    load_checkpoint,
    read_captures,
    route_labels,
    save_checkpoint,
)

logger = Logger()
tracer = Tracer()
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")  # resolves the artifacts of versions other than the live one
VERDICTS = ("ok", "degraded")
MAX_WINDOW_HOURS, MAX_HORIZON_DAYS = 168, 90


def clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    capture_bucket: str
    reports_bucket: str
    model_name: str
    model_data_url: str = ""
    model_sha256: str = ""
    model_version: str = ""  # what serving captures as the live version (MODEL_VERSION); "" = the artifact's id
    window_hours: int = 24
    horizon_days: int = DEFAULT_HORIZON_DAYS
    judge: JudgeSettings = field(default_factory=JudgeSettings)

    def describe(self) -> dict[str, Any]:
        return {"window_hours": self.window_hours, "horizon_days": self.horizon_days, **self.judge.describe()}


def floors_from_env() -> dict[str, float]:
    raw = env.text(Var.MODEL_QUALITY_FLOORS, "{}")
    try:
        floors = json.loads(raw)
    except ValueError:
        floors = None
    if not isinstance(floors, dict) or not all(type(v) in (int, float) for v in floors.values()):
        raise env.SettingsError(f"{Var.MODEL_QUALITY_FLOORS}={raw!r}: expected a JSON object of metric floors such "
                                'as {"accuracy": 0.7}')
    unknown = sorted(set(floors) - set(mn.JUDGED_QUALITY_METRICS))
    if unknown:
        raise env.SettingsError(f"{Var.MODEL_QUALITY_FLOORS}: no floor for {', '.join(unknown)}; floors apply to "
                                f"{', '.join(mn.JUDGED_QUALITY_METRICS)}")
    return {name: float(value) for name, value in floors.items()}


def settings_from_env() -> Settings:
    """The function's configuration; a missing or malformed variable fails with its name."""
    hours = env.integer(Var.MODEL_QUALITY_WINDOW_HOURS, 24, minimum=1)
    days = env.integer(Var.MODEL_QUALITY_HORIZON_DAYS, DEFAULT_HORIZON_DAYS, minimum=1)
    if hours > MAX_WINDOW_HOURS:
        raise env.SettingsError(f"{Var.MODEL_QUALITY_WINDOW_HOURS}={hours}: expected at most {MAX_WINDOW_HOURS}")
    if days > MAX_HORIZON_DAYS:
        raise env.SettingsError(f"{Var.MODEL_QUALITY_HORIZON_DAYS}={days}: expected at most {MAX_HORIZON_DAYS}")
    tolerance = env.number(Var.MODEL_QUALITY_TOLERANCE, DEFAULT_TOLERANCE, minimum=0.0, maximum=1.0)
    try:
        judge = JudgeSettings(min_labels=env.integer(Var.MODEL_QUALITY_MIN_LABELS, DEFAULT_MIN_LABELS, minimum=1),
                              tolerance=tolerance, floors=floors_from_env())
    except ValueError as exc:  # a tolerance of 1 judges nothing
        raise env.SettingsError(f"{Var.MODEL_QUALITY_TOLERANCE}: {exc}") from None
    return Settings(capture_bucket=env.required(Var.CAPTURE_BUCKET), reports_bucket=env.required(Var.REPORTS_BUCKET),
                    model_name=env.required(Var.MODEL_NAME), model_data_url=env.text(Var.MODEL_DATA_URL),
                    model_sha256=env.text(Var.MODEL_SHA256), model_version=env.text(Var.MODEL_VERSION),
                    window_hours=hours, horizon_days=days, judge=judge)


# ------------------------------------------------------------------ one run


@dataclass
class VersionMetrics:
    """What a run publishes for one version: its latest window's figures and its latest verdict, when they changed."""

    version: str
    latest: QualityReport | None = None
    verdict: QualityReport | None = None
    live: bool = False  # the version serving now: only its verdict is the model's (the alarm's view)


@dataclass
class Result:
    response: dict[str, Any]
    versions: list[VersionMetrics] = field(default_factory=list)
    unmatched_labels: int = 0
    invalid_labels: int = 0
    changed: bool = False  # False: nothing new was read, nothing is published


def context_digest(settings: Settings, live: ProductionModel) -> str:
    """The settings and live model the checkpoint's windows were judged with: a change re-reads everything."""
    body = {"settings": settings.describe(), "model": live.sha256, "version": settings.model_version}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def judge(window: Window, model: VersionModel, settings: Settings) -> QualityReport:
    """model_quality.check on one window's predictions and the labels of their ids, against its version's model."""
    meta = model.metadata
    captured = window.captured  # decoded in the classes of this version's model (read_captures asked models)
    period = QualityWindow(model_version=window.version, period_start=iso(window.start),
                           period_end=iso(window.start + timedelta(hours=settings.window_hours)))
    report = check(captured, Labels(records=window.labels), meta, settings=settings.judge, window=period)
    report.model = ModelRef(name=settings.model_name, version=window.version, sha256=model.sha256 or UNSET,
                            url=model.url or UNSET)
    if model.note:
        report.reason = f"{report.reason}; {model.note}"
    return report


def summarize(report: QualityReport, key: str, note: str | None) -> WindowSummary:
    primary = report.primary_metric
    estimated = report.estimated or {}
    return WindowSummary(
        model_version=report.window.model_version, period_start=report.window.period_start,
        period_end=report.window.period_end, status=report.status, predictions=report.predictions,
        matched=report.matched, label_coverage=report.label_coverage,
        label_delay_median_hours=report.label_delay_median_hours, label_delay_p90_hours=report.label_delay_p90_hours,
        primary_metric=primary, realized=report.realized.get(primary), interval=report.intervals.get(primary),
        estimated=estimated.get(primary), baseline=report.baseline.get(primary),
        degraded_metrics=report.degraded_metrics, baseline_note=note, report_key=key, changed=True)


def unchanged(checkpoint: Checkpoint) -> dict[str, Any]:
    return {"status": "unchanged", "windows": len(checkpoint.windows), "windows_changed": 0, "report_uri": None}


@tracer.capture_method
def run_check(s3: Any, sagemaker: Any, settings: Settings, live: ProductionModel, now: datetime) -> Result:
    """Read the horizon's inputs unless they are the ones the checkpoint read; rewrite the windows whose digest
    changed; write the run report and the checkpoint."""
    model_name, reports = settings.model_name, settings.reports_bucket
    since = horizon_start(now, settings.window_hours, settings.horizon_days)
    capture_objects = list_captures(s3, settings.capture_bucket, model_name, since=since, until=now)
    label_objects = list_labels(s3, settings.capture_bucket, model_name, since=since, until=now)
    inputs = {o.key: o.etag for o in (*capture_objects, *label_objects)}
    context = context_digest(settings, live)
    checkpoint_key = names.quality_checkpoint_key(model_name)
    checkpoint = load_checkpoint(s3, reports, checkpoint_key)
    if inputs == checkpoint.inputs and context == checkpoint.context and not checkpoint.retry:
        return Result(unchanged(checkpoint))

    # Each version resolved before its captures are read: they are decoded straight into columns in its classes.
    models = VersionModels(s3, sagemaker, model_name, live, {v for v in (settings.model_version, live.version) if v})
    captures = read_captures(s3, settings.capture_bucket, capture_objects, hours=settings.window_hours, since=since,
                             classes=lambda version: task_classes(models.get(version).metadata))
    labels = read_labels(s3, settings.capture_bucket, label_objects)
    routed = route_labels(captures, labels.records)
    described = settings.describe()
    state = Checkpoint(inputs=inputs, context=context)
    summaries: list[WindowSummary] = []
    reports_by_id: dict[tuple[str, str], QualityReport] = {}  # (version, period start) -> the recomputed report
    invalid = {"malformed": labels.malformed} if labels.malformed else {}
    rejected = dict(captures.rejected)
    for window in sorted(captures.windows.values(), key=lambda w: (w.version, w.start)):
        model = models.get(window.version)
        state.retry |= model.retry
        digest = window.digest(model.identity, described)
        before = checkpoint.windows.get(window.id)
        if before is not None and before["digest"] == digest:
            entry = before
            summary = msgspec.convert({**before["summary"], "changed": False}, WindowSummary)
        else:
            key = names.quality_window_key(model_name, window.version, window.start)
            report = judge(window, model, settings)
            s3.put_object(Bucket=reports, Key=key, ContentType="application/json", Body=report.to_json(indent=1).encode())
            s3.put_object(Bucket=reports, Key=key.removesuffix(".json") + ".html", ContentType="text/html; charset=utf-8",
                          Body=render(report).encode())  # beside its JSON: the run page links to it
            reports_by_id[(window.version, iso(window.start))] = report
            summary = summarize(report, key, model.note)
            entry = {"digest": digest, "summary": msgspec.to_builtins(summary) | {"changed": False},
                     "invalid": report.invalid_reasons, "rejected": report.rejected_captures}
        state.windows[window.id] = entry
        summaries.append(summary)
        for reason, count in entry["invalid"].items():
            invalid[reason] = invalid.get(reason, 0) + count
        for reason, count in entry["rejected"].items():
            rejected[reason] = rejected.get(reason, 0) + count
        window.release()  # judged or unchanged: let the memory go before the next window

    summaries.sort(key=lambda s: (s.period_start, s.model_version), reverse=True)
    live_status, live_window = live_state(summaries, models)
    run = QualityRun(
        generated_at=utc_now(), model=ModelRef(name=model_name, version=settings.model_version or live.version,
                                                sha256=live.sha256, url=live.url),
        status=live_status, horizon_start=iso(since), window_hours=settings.window_hours, windows=summaries,
        windows_changed=len(reports_by_id), predictions=sum(s.predictions for s in summaries),
        labels=len(labels.records), replaced_labels=routed.replaced, unmatched_labels=routed.unmatched,
        invalid_labels=sum(invalid.values()), invalid_reasons=invalid, rejected_captures=rejected,
        capture_objects=len(capture_objects), label_objects=len(label_objects),
        unreadable_objects=[*captures.unreadable, *labels.unreadable], thresholds=described)
    run = write_run_report(s3, settings, run, now)
    save_checkpoint(s3, reports, checkpoint_key, state)  # last: a run that fails before it is done again
    response = {"status": live_status, "model_version": run.model.version, "window": live_window,
                "windows": len(summaries), "windows_changed": run.windows_changed,
                "unmatched_labels": run.unmatched_labels, "invalid_labels": run.invalid_labels,
                "unreadable_objects": len(run.unreadable_objects), "report_uri": run.report_uri}
    return Result(response, versions=version_metrics(summaries, reports_by_id, models),
                  unmatched_labels=run.unmatched_labels, invalid_labels=run.invalid_labels, changed=True)


def live_state(summaries: list[WindowSummary], models: VersionModels) -> tuple[str, str | None]:
    """The live version's latest window with a verdict, else its latest window (newest first in summaries)."""
    live = [s for s in summaries if models.is_live(s.model_version)]
    judged = [s for s in live if s.status in VERDICTS] or live
    return (judged[0].status, judged[0].period_start) if judged else ("no_data", None)


def version_metrics(summaries: list[WindowSummary], changed: dict[tuple[str, str], QualityReport],
                    models: VersionModels) -> list[VersionMetrics]:
    """Per version: its latest window and its latest window with a verdict, each when this run recomputed it."""
    found = []
    for version in dict.fromkeys(s.model_version for s in summaries):
        windows = [s for s in summaries if s.model_version == version]  # newest first
        judged = next((s for s in windows if s.status in VERDICTS), None)
        found.append(VersionMetrics(version, latest=changed.get((version, windows[0].period_start)),
                                    verdict=changed.get((version, judged.period_start)) if judged else None,
                                    live=models.is_live(version)))
    return found


def write_run_report(s3: Any, settings: Settings, run: QualityRun, now: datetime) -> QualityRun:
    stem = names.quality_report_stem(settings.model_name, now)
    run.report_uri = f"s3://{settings.reports_bucket}/{stem}.json"
    s3.put_object(Bucket=settings.reports_bucket, Key=f"{stem}.json", ContentType="application/json",
                  Body=run.to_json(indent=1).encode())
    s3.put_object(Bucket=settings.reports_bucket, Key=f"{stem}.html", ContentType="text/html; charset=utf-8",
                  Body=render_run(run).encode())
    return run


# ------------------------------------------------------------------ metrics


def _emitter(model_name: str, version: str | None = None, metric: str | None = None) -> EphemeralMetrics:
    """One EMF blob's dimensions (EMF dimensions apply to a whole blob)."""
    emitter = EphemeralMetrics(namespace=mn.NAMESPACE)
    emitter.add_dimension(mn.DIM_MODEL_NAME, model_name)
    if version is not None:
        emitter.add_dimension(mn.DIM_MODEL_VERSION, version)
    if metric is not None:
        emitter.add_dimension(mn.DIM_METRIC, metric)
    return emitter


def publish_metrics(result: Result, model_name: str) -> None:
    """Per version, its latest window's figures (ModelName + ModelVersion [+ Metric]) and its latest verdict; the
    live version's verdict also per model (ModelName only: the ModelQuality alarm's view); the horizon's unmatched
    and invalid labels per model.

    Only the live version speaks for the model: late labels keep rewriting a replaced version's windows for a
    horizon, and its old verdict must neither hold the alarm up nor raise it again (and start a retraining).
    The totals are gauges (the horizon's counts at this run, re-stated by every run that changed something): read
    them with Maximum, not Sum.
    """
    if not result.changed:
        return
    for entry in result.versions:
        if entry.latest is not None:
            publish_window(entry.latest, model_name, entry.version)
        if entry.verdict is not None:
            emitter = _emitter(model_name, entry.version)
            if entry.live:
                emitter.add_dimensions(**{mn.DIM_MODEL_NAME: model_name})
            emitter.add_metric(name=mn.QUALITY_DEGRADED, unit=MetricUnit.Count,
                               value=int(entry.verdict.status == "degraded"))
            emitter.flush_metrics()
    totals = _emitter(model_name)
    totals.add_dimensions(**{mn.DIM_MODEL_NAME: model_name})  # also without `service`: what the dashboard reads
    totals.add_metric(name=mn.LABELS_UNMATCHED, unit=MetricUnit.Count, value=result.unmatched_labels)
    totals.add_metric(name=mn.LABELS_INVALID, unit=MetricUnit.Count, value=result.invalid_labels)
    totals.flush_metrics()


def publish_window(report: QualityReport, model_name: str, version: str) -> None:
    estimated = report.estimated or {}
    for name in sorted({*report.realized, *estimated}):
        emitter = _emitter(model_name, version, name)
        if name in report.realized:
            emitter.add_metric(name=mn.QUALITY_REALIZED, unit=MetricUnit.NoUnit, value=report.realized[name])
        if name in estimated:
            emitter.add_metric(name=mn.QUALITY_ESTIMATED, unit=MetricUnit.NoUnit, value=estimated[name])
        emitter.flush_metrics()
    emitter = _emitter(model_name, version)
    emitter.add_metric(name=mn.LABELS_MATCHED, unit=MetricUnit.Count, value=report.matched)
    emitter.add_metric(name=mn.LABELS_INVALID, unit=MetricUnit.Count, value=report.invalid_labels)
    if report.label_coverage is not None:
        emitter.add_metric(name=mn.LABEL_COVERAGE, unit=MetricUnit.NoUnit, value=report.label_coverage)
    if report.label_delay_median_hours is not None:
        emitter.add_metric(name=mn.LABEL_DELAY_HOURS, unit=MetricUnit.NoUnit, value=report.label_delay_median_hours)
    emitter.flush_metrics()


# ------------------------------------------------------------------ handler


@tracer.capture_method
def live_model(settings: Settings) -> ProductionModel | None:
    if not settings.model_data_url:
        return None
    return load_model(s3, settings.model_data_url, settings.model_sha256)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A scheduled run (any event: the check reads what is in S3 now)."""
    settings = settings_from_env()
    live = live_model(settings)
    if live is None:
        response = {"status": "no_model", "reason": f"{Var.MODEL_DATA_URL} is empty: no model promoted, nothing to judge"}
        logger.warning("no model-quality check", extra=response)
        return response
    result = run_check(s3, sagemaker, settings, live, clock())
    publish_metrics(result, settings.model_name)
    logger.info("model-quality check done", extra=result.response)
    return result.response
