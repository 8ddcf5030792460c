"""One loaded model answering requests: body in, JSON body and capture lines out (no web framework here)."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aws_lambda_powertools.metrics import MetricUnit

from contracts import metric_names
from contracts.artifact import Artifact
from contracts.capture_record import record_line
from inference.capture import CaptureSink
from inference.decoding import TypedBodies, encode, parse_json, unwrap
from inference.input_rules import BATCH_FIELD, ID_FIELD, MIN_BATCH, SINGLE_FIELD
from inference.model_loader import Source
from inference.observability import count_by, logger, metrics
from inference.prediction_ids import assign, default_ids
from inference.runtime import OnnxModel, Output, SklearnModel
from inference.settings import Settings
from inference.validation import MAX_ISSUES, FeatureReader, Issue, Loc, RequestError, Rows

SINGLE_LOC = ("body", SINGLE_FIELD)
BATCH_LOC = ("body", BATCH_FIELD)
UNSCORABLE = "the model's output for this input is not a finite number: values far outside the training data?"


class Predictor:
    """A verified artifact, its runtime, the compiled input checks and the capture sink."""

    def __init__(self, art: Artifact, model: OnnxModel | SklearnModel, settings: Settings, source: Source,
                 capture: CaptureSink) -> None:
        meta = art.metadata
        self.model = model
        self.capture = capture
        self.max_batch = settings.max_batch
        self.model_name = settings.model_name or meta.model_name
        self.model_version = settings.model_version or meta.model_version
        self.schema = meta.feature_schema
        self.reader = FeatureReader(meta.feature_schema, strict_categories=settings.strict_categories)
        self.bodies = TypedBodies(meta.feature_schema, settings.max_batch)
        self.classes = meta.classes if meta.task != "regression" else None
        self._class_array = np.array(self.classes, dtype=object) if self.classes else None
        self.info = {
            "model_name": self.model_name, "model_version": self.model_version,
            "model_package_arn": settings.model_package_arn or None, "task": meta.task, "classes": self.classes,
            "metrics": meta.metrics, "feature_schema": meta.feature_schema.model_dump(mode="json"),
            "created_at": meta.created_at, "library_versions": meta.library_versions,
            "runtime": model.name, "runtime_version": model.version,
            "source": f"{source.kind}: {source.location}", "onnx": meta.onnx.model_dump(mode="json"),
            "hyperparameters": meta.hyperparameters, "training_data_sha256": meta.training_data_sha256,
        }

    def predict_one(self, body: bytes, request_id: str) -> tuple[bytes, list[bytes]]:
        """POST /predict: the response body and the capture lines to send."""
        start = time.perf_counter()
        typed = self.bodies.one(body)
        if typed is not None:
            values, given = typed
            rows = self.reader.from_values(values)
            ids = _checked_ids(given, request_id, _single_id_loc)
        else:
            doc = parse_json(body)
            features = unwrap(doc, SINGLE_FIELD, dict, "an object of feature values", optional=(ID_FIELD,))
            ids, issues = assign([doc.get(ID_FIELD)], request_id, _single_id_loc)
            rows = _read(self.reader, [features], SINGLE_LOC, False, None, issues)
        return self._answer(rows, ids, batch=False, start=start, request_id=request_id)

    def predict_batch(self, body: bytes, request_id: str) -> tuple[bytes, list[bytes]]:
        """POST /predict/batch: all rows in one vectorised call."""
        start = time.perf_counter()
        typed = self.bodies.batch(body)
        if typed is not None:
            values, given = typed
            rows = self.reader.from_values(values)
            ids = default_ids(request_id, len(values)) if given is None else _checked_ids(given, request_id, _batch_id_loc)
        else:
            rows, ids = self._read_batch(body, request_id)
        return self._answer(rows, ids, batch=True, start=start, request_id=request_id)

    def _read_batch(self, body: bytes, request_id: str) -> tuple[Rows, list[str]]:
        """The lenient path: every problem of every row named."""
        instances = unwrap(parse_json(body), BATCH_FIELD, list, "an array of feature objects")
        where = BATCH_LOC
        if len(instances) < MIN_BATCH:
            raise RequestError(422, [Issue(where, "at least one instance is required", "value_error.empty")], "validation")
        if len(instances) > self.max_batch:
            message = f"{len(instances)} instances exceed the limit of {self.max_batch} (MAX_BATCH): split the batch"
            raise RequestError(413, [Issue(where, message, "value_error.too_large")], "too_large")
        if not any(_is_pair(item) for item in instances):
            return self.reader.read(instances, where, indexed=True), default_ids(request_id, len(instances))
        rows, given, locs, issues = [], [], [], []
        for i, item in enumerate(instances):
            if _is_pair(item):
                issues += [Issue(where + (i, name), "unexpected field", "value_error.extra")
                           for name in item if name != SINGLE_FIELD and name != ID_FIELD]
                rows.append(item[SINGLE_FIELD])
                given.append(item.get(ID_FIELD))
                locs.append(where + (i, SINGLE_FIELD))
            else:
                rows.append(item)
                given.append(None)
                locs.append(where + (i,))
        ids, id_issues = assign(given, request_id, _batch_id_loc)
        return _read(self.reader, rows, where, True, locs, issues + id_issues), ids

    def _answer(self, rows: Rows, ids: list[str], *, batch: bool, start: float,
                request_id: str) -> tuple[bytes, list[bytes]]:
        """Run the model, build the response body, count the metrics, pick the rows to capture."""
        out = self._run(rows, BATCH_LOC if batch else SINGLE_LOC, indexed=batch)
        labels, probabilities = self._format(out)
        if batch:
            response: dict[str, Any] = {"ids": ids, "predictions": labels}
            if probabilities is not None:
                response["probabilities"] = probabilities
            response["count"] = len(labels)
        else:
            response = {"id": ids[0], "prediction": labels[0]}
            if probabilities is not None:
                response["probabilities"] = probabilities[0]
        response["model_version"] = self.model_version
        response["request_id"] = request_id
        if rows.warnings:  # only unseen categories so far: counted in the logs (Logs Insights), not a metric
            response["warnings"] = rows.warnings
            logger.info("unseen categories accepted", extra={"count": len(rows.warnings), "request_id": request_id})
        content = encode(response)
        metrics.add_metric(name=metric_names.PREDICTION_LATENCY_MS, unit=MetricUnit.Milliseconds,
                           value=(time.perf_counter() - start) * 1000.0)
        metrics.add_metric(name=metric_names.PREDICTIONS, unit=MetricUnit.Count, value=len(labels))
        if self.classes is not None:
            counts = np.bincount(out.values, minlength=len(self.classes))
            count_by(metric_names.PREDICTIONS_BY_CLASS, metric_names.DIM_CLASS,
                     {self.classes[k]: int(counts[k]) for k in np.flatnonzero(counts)})
        return content, self._capture_lines(rows, ids, labels, probabilities, request_id)

    def _run(self, rows: Rows, prefix: tuple[str, ...], indexed: bool) -> Output:
        """The model's output; a row it cannot score (a non-finite output) is the caller's 422, not a NaN."""
        out = self.model.run(rows.X)
        scores = out.proba if out.proba is not None else out.values
        if not np.isfinite(scores).all():
            bad = np.flatnonzero(~np.isfinite(scores.reshape(len(scores), -1)).all(axis=1))
            raise RequestError(422, [Issue(prefix + ((int(i),) if indexed else ()), UNSCORABLE, "value_error.model_output")
                                     for i in bad[:MAX_ISSUES]], "validation")
        return out

    def _format(self, out: Output) -> tuple[list[Any], list[dict[str, float]] | None]:
        """Labels by one fancy-index into the classes; probabilities from one tolist(), zipped per row."""
        if self._class_array is None:
            return out.values.tolist(), None
        labels = self._class_array[out.values].tolist()
        classes = self.classes
        return labels, [dict(zip(classes, row)) for row in out.proba.tolist()]

    def _capture_lines(self, rows: Rows, ids: list[str], labels: list[Any],
                       probabilities: list[dict[str, float]] | None, request_id: str) -> list[bytes]:
        sampled = self.capture.sampled(len(labels))
        if not sampled:
            return []
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return [record_line(time=now, request_id=request_id, model_name=self.model_name,
                            model_version=self.model_version, features=rows.features(i), prediction=labels[i],
                            probability=probabilities[i] if probabilities is not None else None, id=ids[i])
                for i in sampled]


def _single_id_loc(_: int) -> Loc:
    return ("body", ID_FIELD)


def _batch_id_loc(i: int) -> Loc:
    return (*BATCH_LOC, i, ID_FIELD)


def _is_pair(item: Any) -> bool:
    """An {"id", "features"} instance rather than a row: feature values are never objects."""
    return type(item) is dict and type(item.get(SINGLE_FIELD)) is dict


def _checked_ids(given: list[str | None], request_id: str, where: Callable[[int], Loc]) -> list[str]:
    """The ids of rows the typed decoder read: a bad or repeated id is the request's only problem."""
    ids, issues = assign(given, request_id, where)
    if issues:
        raise RequestError(422, issues[:MAX_ISSUES], "validation")
    return ids


def _read(reader: FeatureReader, rows: list[Any], prefix: Loc, indexed: bool, locs: list[Loc] | None,
          issues: list[Issue]) -> Rows:
    """reader.read, the problems found before it (the envelope's, the ids') named with its own."""
    try:
        read = reader.read(rows, prefix, indexed, locs)
    except RequestError as err:
        raise RequestError(err.status, (issues + err.issues)[:MAX_ISSUES], err.kind) from None
    if issues:
        raise RequestError(422, issues[:MAX_ISSUES], "validation")
    return read
