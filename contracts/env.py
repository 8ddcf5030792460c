"""Environment variables: their names (set by the stacks, the demo and the tests) and one way to read them.

Each reader raises SettingsError naming the variable and what it expects, so a misconfigured function
says which setting is wrong. Standard library only: the serving cold start imports it.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"0", "false", "no", "off"})
# The values of SERVING_RUNTIME (the serving_runtime context key): "auto" serves model.onnx when the
# artifact has it, else model.joblib. Here so the stacks validate the key without importing the server.
SERVING_RUNTIMES = ("auto", "onnxruntime", "scikit-learn")


class Var:
    """The names of the variables the functions read."""

    # the served / monitored model (set per promotion)
    MODEL_NAME = "MODEL_NAME"
    MODEL_VERSION = "MODEL_VERSION"
    MODEL_PACKAGE_ARN = "MODEL_PACKAGE_ARN"
    MODEL_DATA_URL = "MODEL_DATA_URL"
    MODEL_SHA256 = "MODEL_SHA256"
    # serving
    MODEL_DIR = "MODEL_DIR"
    MODEL_WORK_DIR = "MODEL_WORK_DIR"
    CAPTURE_STREAM = "CAPTURE_STREAM"
    CAPTURE_SAMPLE_RATE = "CAPTURE_SAMPLE_RATE"
    LABELS_STREAM = "LABELS_STREAM"  # Firehose delivery stream of POST /feedback; empty = the route answers 503
    FEEDBACK_MAX_LABELS = "FEEDBACK_MAX_LABELS"
    MAX_BATCH = "MAX_BATCH"
    STRICT_CATEGORIES = "STRICT_CATEGORIES"
    SERVING_RUNTIME = "SERVING_RUNTIME"
    MODEL_RETRY_SECONDS = "MODEL_RETRY_SECONDS"
    # buckets
    DATA_BUCKET = "DATA_BUCKET"
    ARTIFACTS_BUCKET = "ARTIFACTS_BUCKET"
    CAPTURE_BUCKET = "CAPTURE_BUCKET"
    REPORTS_BUCKET = "REPORTS_BUCKET"
    # drift check
    MIN_ROWS = "MIN_ROWS"
    DRIFT_ALPHA = "DRIFT_ALPHA"
    CHECKPOINT_EVERY_FILES = "CHECKPOINT_EVERY_FILES"
    STOP_MARGIN_SECONDS = "STOP_MARGIN_SECONDS"
    DRIFT_WORKERS = "DRIFT_WORKERS"
    DRIFT_MAX_WINDOW_HOURS = "DRIFT_MAX_WINDOW_HOURS"
    DRIFT_FANOUT_MB = "DRIFT_FANOUT_MB"
    DRIFT_FANOUT_GROUP_MB = "DRIFT_FANOUT_GROUP_MB"
    DRIFT_FANOUT_STATE_MACHINE_ARN = "DRIFT_FANOUT_STATE_MACHINE_ARN"
    DRIFT_FANOUT_TIMEOUT_MINUTES = "DRIFT_FANOUT_TIMEOUT_MINUTES"
    # data-quality thresholds (drift_check.stats_compare.Thresholds), shares 0-1
    QUALITY_MISSING_INCREASE = "QUALITY_MISSING_INCREASE"
    QUALITY_OUT_OF_RANGE_SHARE = "QUALITY_OUT_OF_RANGE_SHARE"
    QUALITY_MALFORMED_SHARE = "QUALITY_MALFORMED_SHARE"
    QUALITY_FAIL_SHARE = "QUALITY_FAIL_SHARE"
    # the scheduled model-quality check (drift_check.model_quality.Settings and the windows)
    MODEL_QUALITY_WINDOW_HOURS = "MODEL_QUALITY_WINDOW_HOURS"
    MODEL_QUALITY_HORIZON_DAYS = "MODEL_QUALITY_HORIZON_DAYS"
    MODEL_QUALITY_MIN_LABELS = "MODEL_QUALITY_MIN_LABELS"
    MODEL_QUALITY_TOLERANCE = "MODEL_QUALITY_TOLERANCE"
    MODEL_QUALITY_FLOORS = "MODEL_QUALITY_FLOORS"  # JSON object, metric -> floor, e.g. {"accuracy": 0.7}
    # training pipeline steps
    EVAL_TOLERANCE = "EVAL_TOLERANCE"
    EVAL_FLOOR = "EVAL_FLOOR"
    AUTO_APPROVE = "AUTO_APPROVE"
    MAX_MISSING_RATE = "MAX_MISSING_RATE"
    IMAGE_URI = "IMAGE_URI"
    PRODUCTION_LABELS = "PRODUCTION_LABELS"  # flag: retraining adds the labelled production rows
    RECENT_SHARE = "RECENT_SHARE"  # of those rows, the most recent share kept out of training for the gate
    # batch scoring
    BATCH_PART_MB = "BATCH_PART_MB"
    BATCH_FORMAT = "BATCH_FORMAT"
    BATCH_CAPTURE_SAMPLE_RATE = "BATCH_CAPTURE_SAMPLE_RATE"
    # Powertools
    SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
    TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"


class SettingsError(RuntimeError):
    """An environment variable is missing or has a value the function cannot use; the message names it."""


def flag_value(value: bool) -> str:
    """How the stacks write a boolean setting (every reader accepts it)."""
    return "true" if value else "false"


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def text(name: str, default: str = "", env: Mapping[str, str] | None = None) -> str:
    """The value, stripped; the default when unset or blank."""
    return _env(env).get(name, "").strip() or default


def required(name: str, env: Mapping[str, str] | None = None) -> str:
    value = text(name, env=env)
    if not value:
        raise SettingsError(f"environment variable {name} is not set")
    return value


def flag(name: str, default: bool = False, env: Mapping[str, str] | None = None) -> bool:
    """True for 1/true/yes/on, False for 0/false/no/off (any case); the default when unset or anything else."""
    value = text(name, env=env).lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    return default


def integer(name: str, default: int, *, minimum: int | None = None, env: Mapping[str, str] | None = None) -> int:
    expected = "a positive integer" if minimum == 1 else "an integer" + (f" >= {minimum}" if minimum is not None else "")
    return _parsed(name, default, int, minimum, None, expected, env)


def number(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None,
           env: Mapping[str, str] | None = None) -> float:
    bounds = (f" between {minimum:g} and {maximum:g}" if minimum is not None and maximum is not None
              else f" >= {minimum:g}" if minimum is not None else f" <= {maximum:g}" if maximum is not None else "")
    return _parsed(name, default, float, minimum, maximum, f"a number{bounds}", env)


def _parsed(name: str, default: Any, convert: Callable[[str], Any], minimum: Any, maximum: Any, expected: str,
            env: Mapping[str, str] | None) -> Any:
    """The value converted and within its bounds (NaN never is); the default when unset."""
    raw = text(name, env=env)
    if not raw:
        return default
    try:
        value = convert(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected {expected}") from None
    if value != value or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise SettingsError(f"{name}={raw!r}: expected {expected}")
    return value


def choice(name: str, default: str, choices: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    value = text(name, default, env=env)
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value
