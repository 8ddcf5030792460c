"""The serving input rules: one table from which every check of a request body is derived.

A body is {"features": row} (POST /predict) or {"instances": [row, ...]} (POST /predict/batch,
1 to MAX_BATCH rows). A row holds every feature of the schema and no other:
- numeric features take JSON numbers (not booleans, not strings), finite and within ±MAX_ABS;
- categorical features take strings; integers (3 or 3.0) are accepted and read as their decimal
  string (category codes such as 1, 2, 3 arrive as numbers); booleans and fractions are refused;
- null is accepted only for a feature that had missing values in training (schema
  missing_rate > 0), where the model imputes it; elsewhere it is refused;
- a category not seen in training is accepted with a warning in the response (the one-hot
  encoder ignores it), or refused when STRICT_CATEGORIES is set.
A row may carry the client's prediction id: {"id": "order-123", "features": row} for /predict, and
the same pair in place of a row among the instances. The id is a string of 1 to MAX_ID_LENGTH
characters without control characters (null = none given); the ids of one request must be distinct.
An instance is such a pair exactly when its "features" member is an object: feature values never
are, so a model with a feature named "features" or "id" reads its plain rows as before.
POST /feedback takes {"id": …, "label": …} or an array of them: the same id rules, a label one of the
model's classes (integers read as their decimal string, as categories are) or a regressor's number.
This module renders the rules as JSON Schema (the OpenAPI document, the API Gateway models);
decoding.py renders them as msgspec types, validation.py checks them value by value. Nothing
but the standard library and contracts.schema is imported: the CDK app imports this module too,
and the serving cold start pays for every import.
"""
from __future__ import annotations

from typing import Any

from contracts.schema import Feature, FeatureSchema, FeatureType

SINGLE_FIELD = "features"  # {"features": row}
BATCH_FIELD = "instances"  # {"instances": [row, ...]}
ID_FIELD = "id"  # {"id": "order-123", "features": row}, also as an instance
LABEL_FIELD = "label"  # POST /feedback: {"id": "order-123", "label": "yes"}, or an array of such objects
MAX_ID_LENGTH = 128  # characters; a key a label can quote, not a payload
# Control characters (C0, DEL, C1) would break the log lines and CSV files an id travels through. A regex
# that both JSON Schema (ECMA-262) and Python read alike: searched, not anchored (Python's $ also matches
# before a final newline).
ID_CONTROL_CHARS = r"[\u0000-\u001f\u007f-\u009f]"
MIN_BATCH = 1
# No feature is measured on scales beyond this, and such values overflow a model's arithmetic.
MAX_ABS = 1e100
DRAFT4 = "http://json-schema.org/draft-04/schema#"  # API Gateway models take no later draft


class FeatureRule:
    """What one feature accepts, derived from what training saw of it."""

    # Plain slotted classes: a dataclass or NamedTuple costs a millisecond of every cold start to define.
    __slots__ = ("name", "categorical", "nullable", "categories", "allowed", "training_range")

    def __init__(self, f: Feature) -> None:
        self.name: str = f.name
        self.categorical: bool = f.type is FeatureType.CATEGORICAL
        self.nullable: bool = f.missing_rate > 0  # training saw missing values: the model imputes a null
        # Categorical: the categories seen in training, in the schema's order, and as a set for the hot path.
        self.categories: tuple[str, ...] = tuple(f.categories or ()) if self.categorical else ()
        self.allowed: frozenset[str] = frozenset(self.categories)
        known_range = not self.categorical and f.min is not None and f.max is not None
        self.training_range: tuple[float, float] | None = (f.min, f.max) if known_range else None  # docs only


class RowRules:
    """The rules of one row for one feature schema, features in schema (column) order; built once per model."""

    __slots__ = ("features", "strict_categories")

    def __init__(self, schema: FeatureSchema, strict_categories: bool = False) -> None:
        self.features: tuple[FeatureRule, ...] = tuple(map(FeatureRule, schema.features))
        self.strict_categories = strict_categories  # an unseen category is refused, not accepted with a warning

    @property
    def names(self) -> list[str]:
        return [rule.name for rule in self.features]


def as_category(value: Any) -> str | None:
    """A categorical value as the model reads it: a string, or an integer (3 or 3.0) as its decimal string."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int or (kind is float and value.is_integer()):  # JSON Schema counts 3.0 as an integer too
        return str(int(value))
    return None  # booleans, fractions, non-finite numbers and containers


def integer_codes(categories: tuple[str, ...]) -> list[int]:
    """The integers that as_category reads as one of these categories ("3", not "03" nor "+3")."""
    codes = []
    for category in categories:
        try:
            code = int(category)
        except ValueError:
            continue
        if str(code) == category:
            codes.append(code)
    return codes


# ------------------------------------------------------------------ JSON Schema renderings


def row_schema(rules: RowRules | None) -> dict[str, Any]:
    """JSON Schema of one row (draft 2020-12, as OpenAPI 3.1 takes it): exactly the values validation accepts."""
    if rules is None:  # no model loaded: any feature values, to be refused with 503 anyway
        return {"type": "object", "additionalProperties": {"type": ["number", "string", "null"]}}
    properties = {rule.name: _value_schema(rule, rules.strict_categories) for rule in rules.features}
    return {"type": "object", "properties": properties, "required": rules.names, "additionalProperties": False}


def _value_schema(rule: FeatureRule, strict_categories: bool) -> dict[str, Any]:
    if not rule.categorical:
        prop: dict[str, Any] = {"type": "number", "minimum": -MAX_ABS, "maximum": MAX_ABS}
        if rule.training_range is not None:
            prop["description"] = "training range {:g} to {:g}".format(*rule.training_range)
    elif strict_categories:
        prop = {"enum": [*rule.categories, *integer_codes(rule.categories)]}
    else:
        prop = {"type": ["string", "integer"], "description": "a category; integers are read as their decimal string",
                "examples": list(rule.categories[:10])}
    if rule.nullable:
        prop = {"anyOf": [prop, {"type": "null"}], "description": "null = missing (the model imputes it)"}
    return prop


def id_text_schema() -> dict[str, Any]:
    """JSON Schema of an id given as text: what a label must name its prediction with."""
    return {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "not": {"pattern": ID_CONTROL_CHARS}}


def id_schema() -> dict[str, Any]:
    """JSON Schema of a prediction id as a client sends it."""
    return {"anyOf": [id_text_schema(), {"type": "null"}],
            "description": "The client's id for this prediction, returned with it and kept in its capture record; "
                           "distinct within a request. Absent or null: <request_id>-<row>."}


def body_schemas(row: dict[str, Any], max_batch: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """JSON Schema of the /predict and /predict/batch bodies around a row schema: exactly what the app accepts.

    Duplicate ids within a batch are the one rule JSON Schema cannot state (uniqueItems compares whole items).
    """
    closed = {"additionalProperties": False}
    single = _envelope(SINGLE_FIELD, row) | closed
    single["properties"][ID_FIELD] = id_schema()
    instance = {"anyOf": [row, single]}  # a row, or a /predict body
    rows = {"type": "array", "items": instance, "minItems": MIN_BATCH, "maxItems": max_batch}
    return single, _envelope(BATCH_FIELD, rows) | closed


def label_schema(classes: list[str] | None, model_loaded: bool = True) -> dict[str, Any]:
    """JSON Schema of a label for the served model: one of its classes (an integer is read as its decimal
    string), or for a regressor a finite number within ±MAX_ABS."""
    if not model_loaded:  # nothing to check against: refused with 503 anyway
        return {"type": ["string", "number"]}
    if classes is None:
        return {"type": "number", "minimum": -MAX_ABS, "maximum": MAX_ABS, "description": "the true value"}
    return {"enum": [*classes, *integer_codes(tuple(classes))],
            "description": "the true class; an integer is read as its decimal string"}


def feedback_body_schema(label: dict[str, Any], max_labels: int) -> dict[str, Any]:
    """JSON Schema of the POST /feedback body: one {"id", "label"} object, or an array of 1 to max_labels.

    Duplicate ids within an array are, as for batches, the one rule JSON Schema cannot state.
    """
    item = {"type": "object", "additionalProperties": False, "required": [ID_FIELD, LABEL_FIELD], "properties": {
        ID_FIELD: id_text_schema() | {"description": "The id the prediction answered with."},
        LABEL_FIELD: label}}
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": MIN_BATCH, "maxItems": max_labels}]}


def edge_body_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """The same bodies as API Gateway models (draft 4), by shape only.

    The stack does not know the model's features, and the app names an extra field or an oversized
    batch (422, 413) where the edge could only answer 400.
    """
    row = {"type": "object"}
    return ({"$schema": DRAFT4} | _envelope(SINGLE_FIELD, row),
            {"$schema": DRAFT4} | _envelope(BATCH_FIELD, {"type": "array", "items": row}))


def _envelope(field: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {field: value}, "required": [field]}
