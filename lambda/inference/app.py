"""The prediction API: `app` (FastAPI, for uvicorn) and `handler` (Mangum, for Lambda behind API Gateway).

The model is loaded once per execution environment, at import. Loading never raises:
a refused or missing model leaves the service up, answering 503 with the reason. A load that
failed for a passing reason (S3 throttled, a 5xx, a timeout) is tried again by a request at most
every MODEL_RETRY_SECONDS, so the environment heals instead of answering 503 until Lambda recycles
it; a refused artifact is never tried again. During init the download's own attempts (the S3
client's retries with backoff) are all there is room for: one more load could outlast Lambda's
10 s init (tests/reliability/test_fault_cold_start.py holds that bound).
"""
from __future__ import annotations

import os

# One request at a time per execution environment: onnxruntime never calls BLAS and scikit-learn's small
# products gain nothing from BLAS threads, while OpenBLAS starting its thread pool costs ~50 ms of a
# cold start. Set before numpy is first imported; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Next the standard-library modules that start the model's download, so it overlaps the heavy imports below.
from inference import model_loader
from inference.settings import Settings, SettingsError

try:
    _pending: model_loader.Pending | None = model_loader.begin(Settings.from_env())
except SettingsError:
    _pending = None  # load_state() gives the reason

import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from mangum import Mangum
from starlette.background import BackgroundTask
from starlette.routing import Route

from contracts import metric_names
from contracts.artifact import ArtifactError
from inference.capture import CaptureSink
from inference.input_rules import MAX_ABS, MAX_ID_LENGTH
from inference.model_loader import ModelUnavailable, NoModelPromoted, Pending, locate
from inference.observability import (
    count_error,
    logger,
    metrics,
    set_model_dimensions,
    traced,
)
from inference.runtime import open_model
from inference.service import Predictor
from inference.validation import RequestError

JSON = "application/json"
_DESCRIPTION = f"""Predictions from the promoted model.

Input rules: every feature of the schema (GET /model-info) and no other; numbers for numeric
features (finite, within ±{MAX_ABS:g}, not booleans or strings); strings for categorical ones
(integers, 3 or 3.0, are read as their decimal string); null only where training saw missing
values. Unseen categories are accepted with a warning (the one-hot encoder ignores them) unless
the deployment sets strict_categories. Errors: 400 (not JSON), 413 (batch over MAX_BATCH), 422 (schema), each
naming the field (and the row for batches); 503 when no model is loaded, with the reason and the next step.

Prediction ids: send {{"id": "order-123", "features": {{…}}}}, and in a batch any instance as such a pair, to have
a label refer to the prediction later; without an id a row gets <request_id>-<row>. Ids are strings of 1 to
{MAX_ID_LENGTH} characters without control characters, distinct within a request; each answer returns them.

Ground truth: once the true outcome is known, POST /feedback {{"id": "order-123", "label": …}} (or an array of such
objects) with the prediction's id and one of the model's classes, or the true value for a regressor. The labels are
delivered before the answer: 202 when they were, 503 when not (resend; a later label for an id replaces the earlier)."""


@dataclass(frozen=True)
class State:
    """What this execution environment serves: a predictor, or the reason there is none."""

    predictor: Predictor | None
    reason: str | None
    settings: Settings
    transient: bool = False  # the reason is a passing fault: loading again may work
    retry_at: float = 0.0  # time.monotonic() from which a request may try again


class Service:
    """The state requests are served from, loading the model again after a passing failure.

    At most one reload at a time and at most one every `settings.retry_seconds`; requests arriving
    meanwhile get the current 503 and its reason.
    """

    def __init__(self, state: State, reload: Callable[[], State] | None = None) -> None:
        self.state = state
        self._reload = reload
        self._lock = threading.Lock()

    def current(self) -> State:
        state = self.state
        if (state.predictor is None and state.transient and self._reload is not None
                and time.monotonic() >= state.retry_at and self._lock.acquire(blocking=False)):
            try:
                self.state = state = self._reload()
            finally:
                self._lock.release()
        return state


def load_state(env: dict[str, str] | None = None, pending: Pending | None = None) -> State:
    """Read the settings and load the model; every failure becomes a reason, logged once.

    pending: a download model_loader.begin() started for these settings, to wait for instead of starting one.
    """
    settings = Settings()
    transient = no_model = False
    try:
        settings = Settings.from_env(env)
        art, source = locate(settings, pending)
        model = open_model(art, settings.runtime)
        capture = CaptureSink(settings.capture_stream, settings.capture_sample_rate)
        predictor = Predictor(art, model, settings, source, capture)
    except (SettingsError, ModelUnavailable) as exc:
        reason = str(exc)
        transient = getattr(exc, "transient", False)
        no_model = isinstance(exc, NoModelPromoted)
    except ArtifactError as exc:  # LibraryMismatch and friends raised while opening the model
        reason = f"refusing the model: {exc}"
    except Exception as exc:  # a model the runtime cannot open must not crash-loop the function
        reason = f"the model cannot be loaded: {type(exc).__name__}: {exc}"
        logger.exception("model load failed")
    else:
        set_model_dimensions(predictor.model_name, predictor.model_version)
        logger.info("model loaded", extra={"model_name": predictor.model_name, "model_version": predictor.model_version,
                                           "runtime": model.name, "source": predictor.info["source"],
                                           "download": source.download or None})
        return State(predictor, None, settings)
    set_model_dimensions(settings.model_name, settings.model_version)
    if no_model:  # how every deployment starts: not an error
        logger.warning("no model configured", extra={"reason": reason})
    else:
        reason += next_step(settings, transient)
        logger.error("model refused", extra={"reason": reason, "transient": transient})
        metrics.add_metric(name=metric_names.MODEL_LOAD_FAILURES, unit=MetricUnit.Count, value=1)
    return State(None, reason, settings, transient, time.monotonic() + settings.retry_seconds)


def next_step(settings: Settings, transient: bool) -> str:
    """What the 503 body adds to a failed load's reason: when to try again, or how to serve another model."""
    if transient:
        return f" (a passing fault: loading is tried again at most every {settings.retry_seconds:g} s; retry then)"
    if settings.model_data_url:  # the promoted model cannot be served: only another deploy changes that
        name = settings.model_name or "<model-name>"
        return f"; next: promote another approved version, or roll back with `mlops rollback --model-name {name}`"
    return ""  # a development MODEL_DIR: the reason names the directory to fix


def request_id(request: Request) -> str:
    """API Gateway's request id (REST and HTTP APIs alike), else the caller's X-Request-Id, else a new one."""
    event = request.scope.get("aws.event")
    if event:
        rid = (event.get("requestContext") or {}).get("requestId")
        if rid:
            return rid
    return request.headers.get("x-request-id") or uuid.uuid4().hex


def error_response(status: int, detail: Any, kind: str) -> Response:
    count_error(kind)
    return JSONResponse({"detail": detail}, status_code=status)


def build_app(served: State | Service) -> FastAPI:
    """The FastAPI app over a loaded state, or a Service that may load it again (tests build their own)."""
    service = served if isinstance(served, Service) else Service(served)
    first = service.state.predictor
    app = FastAPI(title="Prediction API", version=first.model_version if first else "none",
                  description=_DESCRIPTION)

    def serve(method_name: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state = service.current()
            predictor = state.predictor
            if predictor is None:
                return error_response(503, state.reason, "model_unavailable")
            body = await request.body()
            try:
                content, lines = getattr(predictor, method_name)(body, request_id(request))
            except RequestError as err:
                return error_response(err.status, [i.as_dict() for i in err.issues], err.kind)
            # Mangum runs background tasks before the handler returns: captured before Lambda freezes.
            task = BackgroundTask(predictor.capture.send, lines) if lines else None
            return Response(content, media_type=JSON, background=task)
        return endpoint

    # Plain Starlette routes: FastAPI would resolve dependencies on every call (~50 µs) for nothing;
    # the OpenAPI document describes them (api_models.openapi_document).
    app.router.routes.append(Route("/predict", serve("predict_one"), methods=["POST"]))
    app.router.routes.append(Route("/predict/batch", serve("predict_batch"), methods=["POST"]))
    app.router.routes.append(Route("/feedback", feedback_endpoint(service), methods=["POST"]))

    @app.get("/health", summary="Whether a model is loaded, and which")
    async def health() -> Response:
        state = service.current()
        predictor = state.predictor
        if predictor is None:
            return JSONResponse({"status": "unavailable", "model_loaded": False, "reason": state.reason}, status_code=503)
        return JSONResponse({"status": "ok", "model_loaded": True, "model_version": predictor.model_version,
                             "runtime": predictor.model.name})

    @app.get("/model-info", summary="The served model: version, registry entry, metrics, schema, runtime")
    async def model_info() -> Response:
        state = service.current()
        predictor = state.predictor
        if predictor is None:
            return JSONResponse({"detail": state.reason}, status_code=503)
        return JSONResponse(predictor.info)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", extra={"path": request.url.path})
        return error_response(500, "internal error", "internal")

    def openapi() -> dict[str, Any]:
        state = service.current()
        if app.openapi_schema is None or app.openapi_schema.get("info", {}).get("version") != _version(state):
            # Built on first use (nothing of it at cold start), again once a model loads after a passing failure.
            from inference.api_models import openapi_document

            app.version = _version(state)
            predictor = state.predictor
            app.openapi_schema = openapi_document(app, predictor.schema if predictor else None,
                                                  state.settings.strict_categories, state.settings.max_batch,
                                                  classes=predictor.classes if predictor else None,
                                                  max_labels=state.settings.feedback_max_labels)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def feedback_endpoint(service: Service) -> Callable[[Request], Awaitable[Response]]:
    """POST /feedback (inference.feedback): its module and Firehose client are made by the first call, not at cold start."""
    built: dict[str, Any] = {}  # the Feedback of the predictor it was made for

    def feedback_for(state: State) -> Any:
        from inference.feedback import Feedback
        from inference.firehose_lines import LineStream, environment_client

        if built.get("predictor") is not state.predictor:  # the first call, or a model loaded since
            client = built.get("client") or environment_client()
            stream = LineStream(state.settings.labels_stream, client, what="label", retries=1)
            built.update(predictor=state.predictor, client=client, feedback=Feedback(
                state.predictor.classes, stream, state.settings.feedback_max_labels))
        return built["feedback"]

    async def endpoint(request: Request) -> Response:
        from inference import feedback

        state = service.current()
        if state.predictor is None:
            return error_response(503, feedback.NO_MODEL.format(reason=state.reason), "model_unavailable")
        if not state.settings.labels_stream:
            return error_response(503, feedback.FEEDBACK_OFF, "feedback_off")
        body = await request.body()
        try:
            # Delivered before the answer, in the request (not a background task): a label must not be lost unseen.
            content = feedback_for(state).accept(body, request_id(request))
        except RequestError as err:
            return error_response(err.status, [i.as_dict() for i in err.issues], err.kind)
        except feedback.Undelivered as exc:
            return error_response(503, str(exc), "feedback_undelivered")
        return Response(content, status_code=202, media_type=JSON)

    return endpoint


def _version(state: State) -> str:
    return state.predictor.model_version if state.predictor else "none"


def stage_root(app: FastAPI) -> Callable[..., Any]:
    """Set the ASGI root_path to /<stage> when the URL carries the API Gateway stage, so /docs finds its openapi.json."""
    async def with_root(scope: dict, receive: Callable, send: Callable) -> None:
        context = (scope.get("aws.event") or {}).get("requestContext") or {}
        stage = context.get("stage")
        if stage and stage != "$default" and str(context.get("domainName", "")).endswith(".amazonaws.com"):
            scope["root_path"] = f"/{stage}"
        await app(scope, receive, send)

    return with_root


def make_handler(app: FastAPI) -> Callable[[dict, Any], dict]:
    """The Lambda handler for an app: Mangum, with the request id in every log line and metrics flushed per call."""
    asgi = Mangum(stage_root(app), lifespan="off")

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict, context: Any) -> dict:
        return asgi(event, context)

    return traced(handler)


state = load_state(pending=_pending)
service = Service(state, reload=load_state)
app = build_app(service)
handler = make_handler(app)
