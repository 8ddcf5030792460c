"""Powertools logger and metrics shared by the serving modules, and the opt-in tracer."""
from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from contracts import env, metric_names
from contracts.env import Var

SERVICE = env.text(Var.SERVICE_NAME, "inference")

logger = Logger(service=SERVICE)
# Ephemeral: Powertools' Metrics instances share one buffer per process, so another module's
# dimensions could leak into ours (and ours into theirs) wherever they run together, as in tests.
metrics = EphemeralMetrics(namespace=metric_names.NAMESPACE, service=SERVICE)


def set_model_dimensions(model_name: str, model_version: str) -> None:
    """Every metric of this process carries the model it serves."""
    _per_value.clear()
    metrics.default_dimensions.clear()
    metrics.clear_metrics()  # another model's dimensions must not linger (a reload in tests, the bench)
    metrics.set_default_dimensions(**{
        metric_names.DIM_MODEL_NAME: model_name or "unknown",
        metric_names.DIM_MODEL_VERSION: model_version or "unknown",
    })


_per_value: dict[tuple[str, str, str], EphemeralMetrics] = {}


def count_by(name: str, dimension: str, counts: dict[str, int]) -> None:
    """One EMF blob per dimension value (EMF dimensions apply to a whole blob); the emitters are kept."""
    for value, count in counts.items():
        key = (name, dimension, str(value))
        emitter = _per_value.get(key)
        if emitter is None:
            emitter = _per_value[key] = EphemeralMetrics(namespace=metric_names.NAMESPACE)
            emitter.set_default_dimensions(**metrics.default_dimensions, **{dimension: str(value)})
        emitter.add_metric(name=name, unit=MetricUnit.Count, value=count)
        emitter.flush_metrics()


def count_error(kind: str) -> None:
    count_by(metric_names.PREDICTION_ERRORS, metric_names.DIM_ERROR_KIND, {kind: 1})


def tracing_enabled() -> bool:
    """Opt-in: the X-Ray SDK import alone adds ~0.4 s to a cold start, even with tracing disabled."""
    return not env.flag(Var.TRACE_DISABLED, default=True)


def traced(handler: Callable) -> Callable:
    """The handler under Powertools Tracer when tracing is enabled; the handler itself otherwise."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import (
        Tracer,  # imports the X-Ray SDK: only when asked for
    )

    return Tracer(service=SERVICE).capture_lambda_handler(handler, capture_response=False)
