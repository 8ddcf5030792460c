"""The OpenAPI document: pydantic models of the bodies, and the served model's exact input schema.

The hot path never builds these models (it reads and writes JSON itself); they exist so
/openapi.json describes every body exactly, down to the served model's features. The document
is built on the first request for it, so neither this module nor FastAPI's response-model
machinery (which imports pydantic.v1) weighs on a cold start.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from contracts.schema import FeatureSchema
from inference.input_rules import RowRules, body_schemas, feedback_body_schema, label_schema, row_schema


class PredictResponse(BaseModel):
    id: str = Field(description="The prediction's id, for a label to refer to: the one sent, else <request_id>-0.")
    prediction: str | float = Field(description="The most probable class (classifiers) or the predicted value.")
    probabilities: dict[str, float] | None = Field(None, description="Class → probability (classifiers only).")
    model_version: str
    request_id: str
    warnings: list[str] | None = Field(None, description="Accepted but noteworthy input, e.g. unseen categories.")


class BatchResponse(BaseModel):
    ids: list[str] = Field(description="Per row, its prediction id: the one sent with the instance, else <request_id>-<row>.")
    predictions: list[str | float]
    probabilities: list[dict[str, float]] | None = Field(None, description="Per row, class → probability (classifiers only).")
    count: int
    model_version: str
    request_id: str
    warnings: list[str] | None = None


class FeedbackAccepted(BaseModel):
    accepted: int = Field(description="How many labels were delivered to the labels stream: all of the request's.")
    ids: list[str] = Field(description="The ids the labels were given for, in the order sent.")
    request_id: str


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description='Where: ["body", "features", name], ["body", "id"], ["body", "instances", row, name], '
                                             '["body", "instances", row, "features", name] or ["body", "instances", row, "id"]; '
                                             'for /feedback ["body", "label"] or ["body", row, "label"] (and "id").')
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: list[ValidationIssue]


class UnavailableResponse(BaseModel):
    detail: str = Field(description="Why no model is served (not promoted, refused artifact, …) and the next step; "
                                    "for /feedback also: feedback is off, or the labels were not delivered (resend).")


class HealthResponse(BaseModel):
    status: str = Field(description='"ok" or "unavailable".')
    model_loaded: bool
    model_version: str | None = None
    runtime: str | None = None
    reason: str | None = None


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model_name: str
    model_version: str
    model_package_arn: str | None
    task: str
    classes: list[str] | None
    metrics: dict[str, float]
    feature_schema: dict[str, Any]
    created_at: str
    library_versions: dict[str, str] = Field(description="Versions the model was trained with.")
    runtime: str = Field(description='"onnxruntime" or "scikit-learn": which one serves predictions.')
    runtime_version: str
    source: str = Field(description="Where the artifact was loaded from.")
    onnx: dict[str, Any]
    hyperparameters: dict[str, Any]
    training_data_sha256: str


def request_bodies(schema: FeatureSchema | None, strict_categories: bool, max_batch: int) -> tuple[dict, dict]:
    """The requestBody objects of /predict and /predict/batch."""
    row = row_schema(None if schema is None else RowRules(schema, strict_categories))
    single, batch = body_schemas(row, max_batch)
    return _required_json(single), _required_json(batch)


def _required_json(body: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": body}}}


def openapi_document(app: FastAPI, schema: FeatureSchema | None, strict_categories: bool, max_batch: int, *,
                     classes: list[str] | None = None, max_labels: int = 1000) -> dict:
    """FastAPI's document for its routes, with the prediction and feedback routes and every response body filled in.

    schema: the served model's (None: no model loaded); classes: its classes (None: a regressor).
    """
    models = [PredictResponse, BatchResponse, FeedbackAccepted, ErrorResponse, UnavailableResponse, HealthResponse,
              ModelInfo]
    refs, definitions = models_json_schema([(m, "serialization") for m in models],
                                           ref_template="#/components/schemas/{model}")

    def answer(model: type[BaseModel], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": refs[(model, "serialization")]}}}

    errors = {
        "400": answer(ErrorResponse, "The body is not JSON."),
        "413": answer(ErrorResponse, "More instances than MAX_BATCH."),
        "422": answer(ErrorResponse, "The body does not match the model's feature schema."),
        "503": answer(UnavailableResponse, "No model is loaded; the reason says why and what to do next."),
    }
    single, batch = request_bodies(schema, strict_categories, max_batch)
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                      servers=app.servers or None)
    doc["paths"]["/predict"] = {"post": {"summary": "Predict one row", "operationId": "predict", "requestBody": single,
                                         "responses": {"200": answer(PredictResponse, "The prediction.")} | errors}}
    doc["paths"]["/predict/batch"] = {"post": {
        "summary": f"Predict up to {max_batch} rows in one call", "operationId": "predict_batch", "requestBody": batch,
        "responses": {"200": answer(BatchResponse, "One prediction per instance, in order.")} | errors}}
    labels = feedback_body_schema(label_schema(classes, model_loaded=schema is not None), max_labels)
    doc["paths"]["/feedback"] = {"post": {
        "summary": "Ground-truth labels for earlier predictions, by prediction id", "operationId": "feedback",
        "description": "One {\"id\", \"label\"} object or an array of up to "
                       f"{max_labels}; delivered to the labels stream before the answer. A later label for an id "
                       "replaces the earlier one, so a request answered 503 can be resent as it is.",
        "requestBody": _required_json(labels),
        "responses": {
            "202": answer(FeedbackAccepted, "Every label was delivered."),
            "400": answer(ErrorResponse, "The body is not JSON."),
            "413": answer(ErrorResponse, "More labels than FEEDBACK_MAX_LABELS."),
            "422": answer(ErrorResponse, "A field is missing or unexpected, an id breaks the id rules or repeats, or a "
                                         "label does not fit the model (not one of its classes, not a finite number)."),
            "503": answer(UnavailableResponse, "No model is loaded, feedback is off, or the labels were not delivered: "
                                               "resend the request."),
        }}}
    doc["paths"]["/health"]["get"]["responses"] = {"200": answer(HealthResponse, "A model is loaded."),
                                                   "503": answer(HealthResponse, "No model is loaded.")}
    doc["paths"]["/model-info"]["get"]["responses"] = {"200": answer(ModelInfo, "The served model."),
                                                       "503": answer(UnavailableResponse, "No model is loaded.")}
    doc.setdefault("components", {})["schemas"] = definitions["$defs"]
    return doc
