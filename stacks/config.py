"""Deployment configuration: every setting, read once from the CDK context (cdk.json or -c) and validated."""
from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_logs as logs

from contracts import metric_names, names
from contracts.env import SERVING_RUNTIMES
from training import model_space

TASKS = ("binary", "multiclass", "regression")
AUTH_MODES = ("api_key", "iam", "none")
# contracts.batch_job.OUTPUT_FORMATS, repeated so the CDK app does not import the handlers' msgspec (a test compares).
BATCH_OUTPUT_FORMATS = ("jsonl", "csv")

# CodeDeploy's predefined Lambda configurations, by the name used in cdk.json.
DEPLOYMENT_CONFIGS: dict[str, Callable[[], codedeploy.ILambdaDeploymentConfig]] = {
    "AllAtOnce": lambda: codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE,
    "LambdaCanary10Percent5Minutes": lambda: codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES,
    "LambdaCanary10Percent10Minutes": lambda: codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_10_MINUTES,
    "LambdaCanary10Percent15Minutes": lambda: codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_15_MINUTES,
    "LambdaCanary10Percent30Minutes": lambda: codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_30_MINUTES,
    "LambdaLinear10PercentEvery1Minute": lambda: codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_1_MINUTE,
    "LambdaLinear10PercentEvery2Minutes": lambda: codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_2_MINUTES,
    "LambdaLinear10PercentEvery3Minutes": lambda: codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_3_MINUTES,
    "LambdaLinear10PercentEvery10Minutes": lambda: codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_10_MINUTES,
}

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS, 120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS, 180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS, 1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS, 2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}

_PROJECT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
# SageMaker model package group names, lower case only: the name is also an S3 prefix and part of ARNs.
_MODEL_NAME = names.MODEL_NAME_PATTERN
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\(\S+( \S+){5}\)$")
_MINUTES = {"minute": 1, "hour": 60, "day": 1440}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MODEL_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/.+")


# The 4xx alarm counts a 5-minute period only with this many prediction requests: a handful cannot alarm.
CLIENT_ERROR_MIN_REQUESTS = 20
# The capture-silence alarm waits for enough predictions to expect this many captured at capture_sample_rate:
# sampling then misses them all by chance with a probability under e^-20.
MIN_EXPECTED_CAPTURES = 20


class ConfigError(ValueError):
    """A context value is malformed or out of range; the message names the key."""


def _setting(default: Any, doc: str) -> Any:
    if isinstance(default, Mapping):  # unhashable, so dataclasses want a factory
        return field(default_factory=lambda: MappingProxyType(dict(default)), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Config:
    """Every deployment setting. Each field is a cdk.json context key of the same name."""

    # Naming
    project_name: str = _setting(names.DEFAULT_PROJECT, "Prefix of stack and resource names; the EventBridge source of retraining requests.")
    model_name: str = _setting("breast-cancer", "Model name: SageMaker model package group, S3 prefixes, metric dimension. Lower case, digits, hyphens.")
    # Training
    target: str = _setting("target", "Target column of the training CSV.")
    training_data_key: str = _setting("", "Key of the default training CSV in the data bucket; empty means `datasets/<model_name>/train.csv`.")
    task: str = _setting("", "`binary`, `multiclass` or `regression`; empty lets the validate step infer it.")
    categorical: tuple[str, ...] = _setting((), "Columns to treat as categorical (JSON list or comma-separated string).")
    training_instance_type: str = _setting("ml.m5.large", "SageMaker training instance type.")
    training_max_runtime_minutes: int = _setting(60, "Training job time limit, minutes.")
    algorithm: str = _setting(model_space.DEFAULT_ALGORITHM, f"Model trained by the pipeline: {', '.join(model_space.ALGORITHMS)} (execution input `algorithm` overrides it).")
    hyperparameters: Mapping[str, Any] = _setting({}, "The algorithm's hyperparameters, a JSON object such as `{\"max_iter\": 300}` (names and ranges: README, Training); unset ones keep their defaults. Execution input `hyperparameters` replaces it.")
    search_candidates: int = _setting(0, f"Hyperparameter sets a search tries by cross-validation on the training rows before refitting the best; 0 = no search (at most {model_space.MAX_SEARCH_CANDIDATES}; input `search_candidates`).")
    search_seconds: int = _setting(0, "Time budget of the search, seconds; 0 = half of training_max_runtime_minutes (an execution input's `search_seconds` must be > 0).")
    eval_tolerance: float = _setting(0.01, "How much worse than production (primary metric) a candidate may be and still pass.")
    eval_floor: float = _setting(0.5, "Primary-metric floor every candidate must reach.")
    auto_approve: bool = _setting(False, "Register passing models as Approved instead of PendingManualApproval.")
    # Drift
    drift_schedule: str = _setting("rate(1 hour)", "EventBridge schedule expression of the drift check.")
    drift_min_rows: int = _setting(500, "Captured rows needed before the drift check judges drift.")
    drift_max_window_hours: int = _setting(168, "Fewer rows than drift_min_rows are pooled over runs until their oldest "
                                                "data is this old; then the pool closes without a verdict.")
    drift_memory_mb: int = _setting(2048, "Memory of the drift check and its fan-out children, MB (CPU scales with it).")
    drift_fanout_mb: int = _setting(4096, "A window with more capture data than this (gzip MB) is counted by a "
                                          "Distributed Map instead of one run; 0 = never.")
    drift_fanout_group_mb: int = _setting(1024, "Capture data (gzip MB) one fan-out child counts.")
    drift_fanout_max_concurrency: int = _setting(20, "Fan-out children counting at the same time.")
    drift_fanout_timeout_minutes: int = _setting(120, "Time limit of a fan-out; an older one is treated as lost and "
                                                      "its window read again.")
    retrain_on_drift: bool = _setting(False, "Start the training pipeline when the dataset-drift alarm fires.")
    # Data quality (the drift check's issues; each share is of a window's values or lines, 0 to 1)
    quality_missing_increase: float = _setting(0.1, "A feature's missing rate rising this much over its training rate (0.1 = 10 points) is a data-quality issue.")
    quality_out_of_range_share: float = _setting(0.05, "This share of a feature's values outside its training range (numeric) or unseen in training (categorical) is a data-quality issue.")
    quality_malformed_share: float = _setting(0.01, "This share of capture lines rejected as malformed, or with a feature absent or of the wrong type, is a data-quality issue.")
    quality_fail_share: float = _setting(1 / 3, "Any data-quality share at or above this fails the window: dataset drift, whatever the features' distributions.")
    # Model quality (ground truth joined to captured predictions) and what retraining learns from
    model_quality_schedule: str = _setting("rate(1 day)", "EventBridge schedule expression of the model-quality check.")
    model_quality_window_hours: int = _setting(24, "The check judges predictions in windows of this many hours (1-168), per model version.")
    model_quality_horizon_days: int = _setting(14, "Labels are joined to predictions at most this many days old (1-90): later labels count as unmatched, and a window's report is final after it.")
    model_quality_min_labels: int = _setting(100, "Labelled predictions a window needs for a verdict; fewer is `insufficient_labels`.")
    model_quality_tolerance: float = _setting(0.05, "A window is degraded when a judged metric's interval lies wholly below its training hold-out value minus this.")
    model_quality_floors: Mapping[str, Any] = _setting({}, "Absolute floors, a JSON object such as `{\"accuracy\": 0.7}`: a window is degraded when the metric's interval lies wholly below its floor (accuracy, f1, f1_macro, roc_auc, roc_auc_ovr, r2).")
    model_quality_memory_mb: int = _setting(2048, "Memory of the model-quality check, MB (it holds the horizon's predictions without their features).")
    feedback_max_labels: int = _setting(1000, "Most labels per POST /feedback.")
    retrain_on_quality: bool = _setting(False, "Start the training pipeline when the model-quality alarm fires.")
    retrain_with_production_labels: bool = _setting(True, "Retraining adds the labelled production rows (features from capture, labels from ground truth) to the configured training data.")
    retrain_recent_share: float = _setting(0.2, "Of the labelled production rows, this most recent share (0-0.9) is kept out of training: the evaluation gate scores candidate and live model on it.")
    # Serving
    auth_mode: str = _setting("api_key", "`api_key` (usage plan), `iam` (SigV4) or `none` (open API; only when set explicitly).")
    throttle_rate_limit: float = _setting(50.0, "Steady-state requests per second (stage and usage plan).")
    throttle_burst_limit: int = _setting(100, "Burst requests (stage and usage plan).")
    quota_per_day: int = _setting(100_000, "Requests per API key per day (api_key mode).")
    inference_memory_mb: int = _setting(2048, "Inference function memory, MB (CPU scales with it).")
    inference_timeout_seconds: int = _setting(29, "Inference function timeout, seconds; at most 29, API Gateway's integration timeout.")
    reserved_concurrency: int = _setting(0, "Reserved concurrency of the inference function; 0 = unreserved.")
    provisioned_concurrency: int = _setting(0, "Provisioned concurrency on the `live` alias; 0 = none (cold starts possible).")
    canary: str = _setting("LambdaCanary10Percent5Minutes", "CodeDeploy configuration that shifts the `live` alias to a new version.")
    capture_sample_rate: float = _setting(1.0, "Share of predictions captured to Firehose, 0 to 1.")
    max_batch: int = _setting(1000, "Most rows per POST /predict/batch.")
    model_retry_seconds: int = _setting(30, "After a passing S3 failure loading the model (throttled, 5xx, timeout), a request tries again at most this often, seconds; a refused artifact is never retried.")
    strict_categories: bool = _setting(False, "Refuse (422) a category a categorical feature never had in training; false accepts it with a warning (the one-hot encoder ignores it).")
    serving_runtime: str = _setting("auto", "`auto` (model.onnx when the artifact has one, else model.joblib), `onnxruntime` (503 without model.onnx) or `scikit-learn` (always the pickle).")
    public_docs: bool = _setting(False, "Serve GET /docs and GET /openapi.json without the API key or IAM, so a browser can read them; every other route keeps its auth. Makes the feature schema public (see below).")
    # Batch scoring
    batch_max_concurrency: int = _setting(100, "Child executions of a batch job's Distributed Map at once (1-10000).")
    batch_items_per_child: int = _setting(1, "Parts per child execution of the Distributed Map (its ItemBatcher's MaxItemsPerBatch), 1-100.")
    batch_part_mb: int = _setting(64, "An uncompressed input file is split into parts of about this many MB, so each child gets bounded work (1-1024).")
    batch_tolerated_failure_percent: float = _setting(0.0, "Share of child executions that may fail before the Distributed Map fails, percent (0-100).")
    batch_output_format: str = _setting("jsonl", "Format of the scored output files: `jsonl` or `csv`.")
    batch_capture_sample_rate: float = _setting(0.0, "Share of batch-scored rows captured for the drift check, 0 to 1; 0 = off.")
    batch_memory_mb: int = _setting(4096, "Memory of the batch score function, MB (CPU scales with it).")
    batch_trigger_on_upload: bool = _setting(True, "Start a batch job when a data file (.csv, .jsonl, .ndjson, optionally .gz) lands in a job folder `batch/<model_name>/input/<job>/` of the data bucket.")
    # Alarms and logs
    alarm_email: str = _setting("", "E-mail subscribed to alarm and pipeline notifications; empty = no subscription.")
    p99_latency_alarm_ms: int = _setting(1000, "Alarm (and canary rollback) when p99 latency exceeds this, ms.")
    error_rate_alarm_percent: float = _setting(1.0, "Alarm when the API's 5xx share of requests exceeds this, percent.")
    client_error_alarm_percent: float = _setting(10.0, "Alarm when the 4xx share of prediction requests exceeds this, percent (two of three 5-minute periods with at least "
                                                       f"{CLIENT_ERROR_MIN_REQUESTS} requests).")
    quality_alarm_issues: int = _setting(1, "Alarm when a drift check with a verdict finds at least this many data-quality issues.")
    capture_dropped_alarm_records: int = _setting(10, "Alarm when at least this many capture lines are dropped in each of two of three 5-minute periods.")
    capture_silence_minutes: int = _setting(60, "Alarm when, over this many minutes (5-1440), the API served enough predictions to expect "
                                                f"{MIN_EXPECTED_CAPTURES} captured but sent none, or Firehose held a record undelivered; no alarm with capture off.")
    log_retention_days: int = _setting(30, "CloudWatch Logs retention of every log group, days (a CloudWatch-allowed value).")
    capture_retention_days: int = _setting(365, "Captured requests expire after this many days.")
    noncurrent_version_days: int = _setting(90, "Overwritten or deleted object versions expire after this many days.")
    # The promoted model (set by the promote CLI with -c; empty = nothing promoted yet)
    model_package_arn: str = _setting("", "ARN of the promoted (Approved) model package.")
    model_version: str = _setting("", "Version of the promoted model package.")
    model_data_url: str = _setting("", "s3:// URL of the promoted model.tar.gz.")
    model_sha256: str = _setting("", "sha256 of the promoted model.tar.gz (checked before loading).")

    def __post_init__(self) -> None:
        if not self.training_data_key:
            object.__setattr__(self, "training_data_key", names.training_data_key(self.model_name))
        for check in _CHECKS:
            check(self)
        # Typed as the validate step types them ("300" → 300), so the state machine carries the values once checked.
        object.__setattr__(self, "hyperparameters",
                           MappingProxyType(model_space.check(self.algorithm, self.hyperparameters)))

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> Config:
        """Build from a context getter such as `app.node.try_get_context`; absent keys keep their defaults."""
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = get(f.name)
            if raw is not None:
                values[f.name] = _coerce(f.name, raw, hints[f.name])
        return cls(**values)

    @property
    def model_promoted(self) -> bool:
        return bool(self.model_data_url)

    @property
    def search_budget_seconds(self) -> int:
        """search_seconds, or half the training job's time limit: the rest is for the refit and the artifact."""
        return self.search_seconds or self.training_max_runtime_minutes * 30

    @property
    def log_retention(self) -> logs.RetentionDays:
        """log_retention_days as the CDK enum every log group takes."""
        return LOG_RETENTION[self.log_retention_days]

    @property
    def drift_period_minutes(self) -> int:
        """Minutes between drift checks: the period of the alarms on its metrics."""
        return schedule_period_minutes(self.drift_schedule)

    @property
    def model_quality_period_minutes(self) -> int:
        """Minutes between model-quality checks: the period of the ModelQuality alarm."""
        return schedule_period_minutes(self.model_quality_schedule)


def schedule_period_minutes(expression: str) -> int:
    """Minutes between runs of a rate schedule (a cron schedule counts as hourly), capped at CloudWatch's one-day
    alarm period."""
    rate = _RATE.match(expression)
    if rate is None:
        return 60
    return min(int(rate.group(1)) * _MINUTES[rate.group(2).rstrip("s")], 1440)


def _coerce(key: str, raw: Any, kind: Any) -> Any:
    """Convert a context value (typed JSON from cdk.json, or a string from -c) to the field's type."""
    try:
        if kind is bool:
            return _to_bool(raw)
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        if kind is str:
            if not isinstance(raw, str | int | float) or isinstance(raw, bool):
                raise ValueError
            return str(raw).strip()
        if typing.get_origin(kind) is Mapping:
            return _to_object(raw)
        return _to_names(raw)
    except (TypeError, ValueError, json.JSONDecodeError):
        expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
            kind, "a JSON object" if typing.get_origin(kind) is Mapping else "a list of column names")
        raise ConfigError(f"context key {key!r}: expected {expected}, got {raw!r}") from None


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ValueError


def _to_object(raw: Any) -> Mapping[str, Any]:
    """A JSON object from cdk.json, or its text from -c; read-only, as the frozen Config's other values."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, dict):
        raise ValueError
    return MappingProxyType(raw)


def _to_names(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip().startswith("[") else [p for p in raw.split(",") if p.strip()]
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ValueError
    return tuple(p.strip() for p in raw)


def _require(ok: bool, key: str, problem: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"context key {key!r}: {problem} (got {value!r})")


def _check_names(c: Config) -> None:
    _require(bool(_PROJECT_NAME.match(c.project_name)), "project_name",
             "use 2-32 lower-case letters, digits or hyphens, starting with a letter", c.project_name)
    _require(bool(_MODEL_NAME.match(c.model_name)), "model_name",
             "use 1-63 lower-case letters, digits or single hyphens, starting and ending alphanumeric", c.model_name)


def _check_training(c: Config) -> None:
    _require(bool(c.target), "target", "must not be empty", c.target)
    key = c.training_data_key
    _require(not key.startswith("/") and not key.endswith("/"), "training_data_key",
             "must be an object key, without leading or trailing '/'", key)
    _require(c.task in ("", *TASKS), "task", f"must be empty or one of {', '.join(TASKS)}", c.task)
    names = c.categorical
    _require(all(names) and all("," not in n for n in names), "categorical",
             "column names must be non-empty and contain no comma", list(names))
    _require(len(set(names)) == len(names), "categorical", "lists a column twice", list(names))
    _require(c.target not in names, "categorical", f"must not include the target {c.target!r}", list(names))
    _require(bool(_INSTANCE_TYPE.match(c.training_instance_type)), "training_instance_type",
             "must be a SageMaker instance type such as ml.m5.large", c.training_instance_type)
    _require(1 <= c.training_max_runtime_minutes <= 28 * 24 * 60, "training_max_runtime_minutes",
             "must be between 1 and 40320 (28 days)", c.training_max_runtime_minutes)
    _require(c.eval_tolerance >= 0, "eval_tolerance", "must be >= 0", c.eval_tolerance)


def _check_model_choice(c: Config) -> None:
    """The same checks the validate step runs on an execution's input, so a bad default fails the synth."""
    _require(c.algorithm in model_space.ALGORITHMS, "algorithm",
             f"must be one of {', '.join(model_space.ALGORITHMS)}", c.algorithm)
    try:
        model_space.check(c.algorithm, c.hyperparameters)
    except model_space.HyperparameterError as exc:
        raise ConfigError(f"context key 'hyperparameters': {exc}") from None
    _require(0 <= c.search_candidates <= model_space.MAX_SEARCH_CANDIDATES, "search_candidates",
             f"must be between 0 (no search) and {model_space.MAX_SEARCH_CANDIDATES}", c.search_candidates)
    _require(0 <= c.search_seconds < c.training_max_runtime_minutes * 60, "search_seconds",
             "must be 0 (half the job's time) or a number of seconds below training_max_runtime_minutes, "
             "leaving time for the final fit", c.search_seconds)


def _check_drift(c: Config) -> None:
    _require(_schedule_ok(c.drift_schedule), "drift_schedule",
             "must be an EventBridge expression such as 'rate(1 hour)', 'rate(30 minutes)' or 'cron(0 * * * ? *)'",
             c.drift_schedule)
    _require(c.drift_min_rows >= 1, "drift_min_rows", "must be >= 1", c.drift_min_rows)
    for key in ("quality_missing_increase", "quality_out_of_range_share", "quality_malformed_share",
                "quality_fail_share"):
        value = getattr(c, key)
        _require(0.0 < value <= 1.0, key, "must be above 0 and at most 1 (at 0 every feature has every issue)", value)
    _require(c.drift_max_window_hours >= 1, "drift_max_window_hours", "must be >= 1", c.drift_max_window_hours)
    _require(128 <= c.drift_memory_mb <= 10240, "drift_memory_mb", "must be between 128 and 10240", c.drift_memory_mb)
    _require(c.drift_fanout_mb >= 0, "drift_fanout_mb", "must be >= 0 (0 = never fan out)", c.drift_fanout_mb)
    _require(c.drift_fanout_group_mb >= 1, "drift_fanout_group_mb", "must be >= 1", c.drift_fanout_group_mb)
    _require(c.drift_fanout_mb == 0 or c.drift_fanout_group_mb <= c.drift_fanout_mb, "drift_fanout_group_mb",
             "must not exceed drift_fanout_mb (a child would count more than one run may)", c.drift_fanout_group_mb)
    _require(1 <= c.drift_fanout_max_concurrency <= 10_000, "drift_fanout_max_concurrency",
             "must be between 1 and 10000 (the Distributed Map's limit)", c.drift_fanout_max_concurrency)
    _require(15 <= c.drift_fanout_timeout_minutes <= 24 * 60, "drift_fanout_timeout_minutes",
             "must be between 15 (a child may run 15 minutes) and 1440", c.drift_fanout_timeout_minutes)


def _schedule_ok(expression: str) -> bool:
    rate = _RATE.match(expression)
    # EventBridge wants the singular unit for 1 and the plural otherwise.
    rate_ok = rate is not None and int(rate.group(1)) >= 1 and (int(rate.group(1)) == 1) != rate.group(2).endswith("s")
    return rate_ok or bool(_CRON.match(expression))


def _check_model_quality(c: Config) -> None:
    _require(_schedule_ok(c.model_quality_schedule), "model_quality_schedule",
             "must be an EventBridge expression such as 'rate(1 day)', 'rate(6 hours)' or 'cron(0 6 * * ? *)'",
             c.model_quality_schedule)
    _require(1 <= c.model_quality_window_hours <= 168, "model_quality_window_hours", "must be between 1 and 168",
             c.model_quality_window_hours)
    _require(1 <= c.model_quality_horizon_days <= 90, "model_quality_horizon_days", "must be between 1 and 90",
             c.model_quality_horizon_days)
    _require(c.model_quality_min_labels >= 1, "model_quality_min_labels", "must be >= 1", c.model_quality_min_labels)
    _require(0 <= c.model_quality_tolerance < 1, "model_quality_tolerance", "must be at least 0 and below 1",
             c.model_quality_tolerance)
    floors = dict(c.model_quality_floors)
    unknown = sorted(set(floors) - set(metric_names.JUDGED_QUALITY_METRICS))
    _require(not unknown, "model_quality_floors",
             f"floors apply to {', '.join(metric_names.JUDGED_QUALITY_METRICS)}; unknown: {', '.join(unknown)}", floors)
    _require(all(type(v) in (int, float) and math.isfinite(v) for v in floors.values()), "model_quality_floors",
             "every floor must be a number", floors)
    _require(128 <= c.model_quality_memory_mb <= 10240, "model_quality_memory_mb", "must be between 128 and 10240",
             c.model_quality_memory_mb)
    _require(1 <= c.feedback_max_labels <= 10_000, "feedback_max_labels", "must be between 1 and 10000",
             c.feedback_max_labels)
    _require(0 <= c.retrain_recent_share <= 0.9, "retrain_recent_share", "must be between 0 and 0.9",
             c.retrain_recent_share)


def _check_serving(c: Config) -> None:
    _require(c.auth_mode in AUTH_MODES, "auth_mode", f"must be one of {', '.join(AUTH_MODES)}", c.auth_mode)
    _require(c.throttle_rate_limit > 0, "throttle_rate_limit", "must be > 0", c.throttle_rate_limit)
    _require(c.throttle_burst_limit >= 1, "throttle_burst_limit", "must be >= 1", c.throttle_burst_limit)
    _require(c.quota_per_day >= 1, "quota_per_day", "must be >= 1", c.quota_per_day)
    _require(128 <= c.inference_memory_mb <= 10240, "inference_memory_mb", "must be between 128 and 10240",
             c.inference_memory_mb)
    _require(1 <= c.inference_timeout_seconds <= 29, "inference_timeout_seconds",
             "must be between 1 and 29 (API Gateway stops waiting after 29 s)", c.inference_timeout_seconds)
    _require(c.provisioned_concurrency >= 0, "provisioned_concurrency", "must be >= 0", c.provisioned_concurrency)
    _require(c.reserved_concurrency >= 0, "reserved_concurrency", "must be >= 0", c.reserved_concurrency)
    _require(c.reserved_concurrency == 0 or c.reserved_concurrency >= c.provisioned_concurrency,
             "reserved_concurrency", "must be 0 or at least provisioned_concurrency", c.reserved_concurrency)
    _require(c.canary in DEPLOYMENT_CONFIGS, "canary", f"must be one of {', '.join(DEPLOYMENT_CONFIGS)}", c.canary)
    _require(0.0 <= c.capture_sample_rate <= 1.0, "capture_sample_rate", "must be between 0 and 1",
             c.capture_sample_rate)
    _require(c.max_batch >= 1, "max_batch", "must be >= 1", c.max_batch)
    _require(1 <= c.model_retry_seconds <= 3600, "model_retry_seconds", "must be between 1 and 3600", c.model_retry_seconds)
    _require(c.serving_runtime in SERVING_RUNTIMES, "serving_runtime", f"must be one of {', '.join(SERVING_RUNTIMES)}",
             c.serving_runtime)


def _check_batch(c: Config) -> None:
    _require(1 <= c.batch_max_concurrency <= 10_000, "batch_max_concurrency", "must be between 1 and 10000",
             c.batch_max_concurrency)
    _require(1 <= c.batch_items_per_child <= 100, "batch_items_per_child", "must be between 1 and 100",
             c.batch_items_per_child)
    _require(1 <= c.batch_part_mb <= 1024, "batch_part_mb", "must be between 1 and 1024", c.batch_part_mb)
    _require(0.0 <= c.batch_tolerated_failure_percent <= 100.0, "batch_tolerated_failure_percent",
             "must be between 0 and 100", c.batch_tolerated_failure_percent)
    _require(c.batch_output_format in BATCH_OUTPUT_FORMATS, "batch_output_format",
             f"must be one of {', '.join(BATCH_OUTPUT_FORMATS)}", c.batch_output_format)
    _require(0.0 <= c.batch_capture_sample_rate <= 1.0, "batch_capture_sample_rate", "must be between 0 and 1",
             c.batch_capture_sample_rate)
    _require(128 <= c.batch_memory_mb <= 10240, "batch_memory_mb", "must be between 128 and 10240", c.batch_memory_mb)


def _check_alarms(c: Config) -> None:
    _require(not c.alarm_email or bool(_EMAIL.match(c.alarm_email)), "alarm_email",
             "must be empty or an e-mail address", c.alarm_email)
    _require(c.p99_latency_alarm_ms > 0, "p99_latency_alarm_ms", "must be > 0", c.p99_latency_alarm_ms)
    _require(0 < c.error_rate_alarm_percent <= 100, "error_rate_alarm_percent", "must be in (0, 100]",
             c.error_rate_alarm_percent)
    _require(0 < c.client_error_alarm_percent <= 100, "client_error_alarm_percent", "must be in (0, 100]",
             c.client_error_alarm_percent)
    _require(c.quality_alarm_issues >= 1, "quality_alarm_issues", "must be >= 1", c.quality_alarm_issues)
    _require(c.capture_dropped_alarm_records >= 1, "capture_dropped_alarm_records", "must be >= 1",
             c.capture_dropped_alarm_records)
    # Above Firehose's 60 s buffer with room for delivery; at most a day, CloudWatch's longest alarm window.
    _require(5 <= c.capture_silence_minutes <= 1440, "capture_silence_minutes", "must be between 5 and 1440",
             c.capture_silence_minutes)
    _require(c.log_retention_days in LOG_RETENTION, "log_retention_days",
             f"must be one of {', '.join(map(str, LOG_RETENTION))}", c.log_retention_days)
    _require(c.capture_retention_days >= 1, "capture_retention_days", "must be >= 1", c.capture_retention_days)
    _require(c.noncurrent_version_days >= 1, "noncurrent_version_days", "must be >= 1", c.noncurrent_version_days)


def _check_model(c: Config) -> None:
    _require(not c.model_data_url or bool(_S3_URL.match(c.model_data_url)), "model_data_url",
             "must be empty or an s3://bucket/key URL", c.model_data_url)
    _require(not c.model_sha256 or bool(_SHA256.match(c.model_sha256)), "model_sha256",
             "must be empty or 64 lower-case hex digits", c.model_sha256)
    _require(bool(c.model_data_url) == bool(c.model_sha256), "model_sha256",
             "model_data_url and model_sha256 are set together (the server checks the download)", c.model_sha256)
    _require(not c.model_package_arn or bool(_MODEL_PACKAGE_ARN.match(c.model_package_arn)), "model_package_arn",
             "must be empty or a SageMaker model package ARN", c.model_package_arn)


_CHECKS = (_check_names, _check_training, _check_model_choice, _check_drift, _check_model_quality, _check_serving,
           _check_batch, _check_alarms, _check_model)


def markdown_table() -> str:
    """The configuration reference (docs/configuration.md), generated from the field docs."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for f in dataclasses.fields(Config):
        value = f.default_factory() if f.default is dataclasses.MISSING else f.default
        default = json.dumps(list(value) if isinstance(value, tuple) else
                             dict(value) if isinstance(value, Mapping) else value)
        rows.append(f"| `{f.name}` | `{default}` | {f.metadata['doc']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
