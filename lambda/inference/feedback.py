"""POST /feedback: ground-truth labels for earlier predictions, checked against the served model and delivered
to the labels Firehose stream before the answer.

A body is one {"id": …, "label": …} object or an array of 1 to FEEDBACK_MAX_LABELS of them. Ids follow the
prediction ids' rules (inference.prediction_ids) and are distinct within a request; a label is one of the
model's classes (a string, or an integer read as its decimal string, as categories are) or, for a
regressor, a finite number. Each label becomes one contracts.ground_truth line stamped with its arrival.

A label is ground truth: unlike a capture line it must not be lost silently. The answer waits for
Firehose: 202 once every line is delivered (records Firehose rejects are sent once more), else 503 and
the caller resends, which loses nothing (a later label for the same id replaces the earlier one).
Imported by the first /feedback request only: /predict's cold start never pays for it.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from aws_lambda_powertools.metrics import MetricUnit

from contracts import metric_names
from contracts.ground_truth import GroundTruth
from inference.decoding import encode, parse_json
from inference.firehose_lines import LineStream
from inference.input_rules import ID_FIELD, LABEL_FIELD, MAX_ABS, MIN_BATCH, as_category
from inference.observability import logger, metrics
from inference.prediction_ids import duplicates, id_problem
from inference.validation import MAX_ISSUES, NON_FINITE_MSG, RANGE_MSG, Issue, Loc, NonFinite, RequestError, json_type

FIELDS = (ID_FIELD, LABEL_FIELD)
SHOWN_CLASSES = 20  # a message lists this many of the model's classes, then says how many more
FEEDBACK_OFF = ("feedback is off: this deployment has no labels stream (LABELS_STREAM is empty); deploy the serving "
                "stack, which creates it, or drop labels as CSV / JSON Lines files under labels/<model>/ in the "
                "capture bucket")
NO_MODEL = "labels cannot be checked without a model: {reason}"
UNDELIVERED = ("{lost} of {n} labels could not be delivered to the labels stream; resend the whole request: "
               "nothing is lost by resending, a later label for the same id replaces the earlier one")
_encode_line = msgspec.json.Encoder().encode
_BAD = object()  # a label that does not fit the model (its issue is recorded)


class Undelivered(Exception):
    """Labels that did not reach the labels stream: the caller's 503, the message saying to resend."""


def arrival_time() -> str:
    """Now, as the ground-truth record's time: UTC ISO-8601 with milliseconds and Z (as capture records have it)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Feedback:
    """The labels a served model accepts, and the stream they are delivered to.

    classes: the model's classes, None for a regressor. stream: a LineStream that retries rejected records.
    """

    def __init__(self, classes: list[str] | None, stream: LineStream, max_labels: int) -> None:
        self.classes = classes
        self._class_set = frozenset(classes or ())
        self.stream = stream
        self.max_labels = max_labels
        self._classes_text = _listing(classes) if classes is not None else ""

    def accept(self, body: bytes, request_id: str) -> bytes:
        """The 202 body once every label is delivered; RequestError for a 4xx, Undelivered for the 503."""
        ids, labels = self.read(body)
        now = arrival_time()
        lines = [_encode_line(GroundTruth(id=pid, label=label, time=now)) + b"\n" for pid, label in zip(ids, labels)]
        sent, lost = self.stream.deliver(lines)
        if sent:
            metrics.add_metric(name=metric_names.FEEDBACK_LABELS, unit=MetricUnit.Count, value=sent)
        if lost:
            metrics.add_metric(name=metric_names.FEEDBACK_DROPPED, unit=MetricUnit.Count, value=lost)
            logger.error("labels not delivered", extra={"lost": lost, "labels": len(lines), "request_id": request_id,
                                                          "stream": self.stream.stream})
            raise Undelivered(UNDELIVERED.format(lost=lost, n=len(lines)))
        logger.info("labels accepted", extra={"labels": len(lines), "request_id": request_id})
        return encode({"accepted": len(ids), "ids": ids, "request_id": request_id})

    def read(self, body: bytes) -> tuple[list[str], list[Any]]:
        """The ids and labels of a body (labels as stored: a class name, or the number sent); every problem named."""
        doc = parse_json(body)
        where: Callable[[int], Loc]
        if type(doc) is dict:
            items, where = [doc], _single_loc
        elif type(doc) is list:
            items, where = doc, _array_loc
        else:
            raise _invalid(Issue(("body",), f'expected an object {{"id": …, "label": …}} or an array of them, got '
                                            f"{json_type(doc)}", "type_error.object"))
        if len(items) < MIN_BATCH:
            raise _invalid(Issue(("body",), "at least one label is required", "value_error.empty"))
        if len(items) > self.max_labels:
            message = (f"{len(items)} labels exceed the limit of {self.max_labels} (FEEDBACK_MAX_LABELS): "
                       "split them into several requests")
            raise RequestError(413, [Issue(("body",), message, "value_error.too_large")], "too_large")
        ids: list[str] = []
        labels: list[Any] = []
        issues: list[Issue] = []
        for i, item in enumerate(items):
            loc = where(i)
            if type(item) is not dict:
                issues.append(Issue(loc, f'expected an object {{"id": …, "label": …}}, got {json_type(item)}',
                                    "type_error.object"))
            else:
                issues += [Issue(loc + (name,), "unexpected field", "value_error.extra") for name in item
                           if name not in FIELDS]
                issues += [Issue(loc + (name,), "field required", "missing") for name in FIELDS if name not in item]
                if ID_FIELD in item and (problem := id_problem(item[ID_FIELD], required=True)) is not None:
                    issues.append(Issue(loc + (ID_FIELD,), *problem))
                label = self._label(item[LABEL_FIELD], loc + (LABEL_FIELD,), issues) if LABEL_FIELD in item else _BAD
                ids.append(item.get(ID_FIELD))
                labels.append(label)
            if len(issues) >= MAX_ISSUES:
                break
        if not issues:
            issues = duplicates(ids, ids, lambda i: where(i) + (ID_FIELD,))
        if issues:
            raise RequestError(422, issues[:MAX_ISSUES], "validation")
        return ids, labels

    def _label(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        """The label as stored (the class name, or the number as sent), or _BAD with its issue recorded."""
        if self.classes is None:
            return _number(value, loc, issues)
        name = as_category(value)  # a string, or an integer (1, 1.0) as its decimal string; never a boolean
        if name is None:
            issues.append(Issue(loc, f"expected one of the model's classes ({self._classes_text}), got {json_type(value)}",
                                "type_error.class"))
            return _BAD
        if name not in self._class_set:
            issues.append(Issue(loc, f"{name!r} is not one of the model's classes: {self._classes_text}",
                                "value_error.class"))
            return _BAD
        return name


def _number(value: Any, loc: Loc, issues: list[Issue]) -> Any:
    """A regressor's label: a JSON number (not a boolean, not a string), finite and within ±MAX_ABS."""
    kind = type(value)
    if kind is int or kind is float:
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            number = math.inf
        if abs(number) <= MAX_ABS:
            return value
        message = RANGE_MSG if kind is int or math.isfinite(number) else NON_FINITE_MSG
        issues.append(Issue(loc, message, "value_error.number"))
    elif kind is NonFinite:
        issues.append(Issue(loc, f"{NON_FINITE_MSG} (got {value.text})", "value_error.number"))
    else:
        issues.append(Issue(loc, f"expected a number (the model is a regressor), got {json_type(value)}",
                            "type_error.number"))
    return _BAD


def _listing(classes: list[str]) -> str:
    shown = ", ".join(repr(c) for c in classes[:SHOWN_CLASSES])
    more = len(classes) - SHOWN_CLASSES
    return shown if more <= 0 else f"{shown} and {more} more (GET /model-info lists them all)"


def _single_loc(_: int) -> Loc:
    return ("body",)


def _array_loc(i: int) -> Loc:
    return ("body", i)


def _invalid(issue: Issue) -> RequestError:
    return RequestError(422, [issue], "validation")
